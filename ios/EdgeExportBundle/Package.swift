// swift-tools-version:5.7
// EdgeExportBundle: reading an edgeexport bundle, its statistics and preprocessing (the same
// definitions as edgeexport.metrics and Kotlin's bundle-core), and a CoreML runner.
import PackageDescription

let package = Package(
    name: "EdgeExportBundle",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [
        .library(name: "EdgeExportBundle", targets: ["EdgeExportBundle"]),
    ],
    targets: [
        .target(name: "EdgeExportBundle"),
        .testTarget(
            name: "EdgeExportBundleTests",
            dependencies: ["EdgeExportBundle"],
            // a generated project carries a copy of the shared vectors here; the repository
            // reads tests/vectors instead (see VectorsTests.vectorsDirectory)
            exclude: ["vectors"]
        ),
    ]
)
