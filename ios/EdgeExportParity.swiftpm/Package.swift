// swift-tools-version: 5.8
// The sample app as an app package (opens in Xcode 14+ like a project; no .xcodeproj to keep in
// sync). `edgeexport app ios` puts the bundle in Resources/ and sets the name and identifier.
import PackageDescription
import AppleProductTypes

let package = Package(
    name: "EdgeExportParity",
    platforms: [
        .iOS("16.0"),
    ],
    products: [
        .iOSApplication(
            name: "EdgeExport Parity",
            targets: ["AppModule"],
            bundleIdentifier: "io.edgeexport.parity",
            displayVersion: "1.0",
            bundleVersion: "1",
            appIcon: .placeholder(icon: .leaf),
            accentColor: .presetColor(.blue),
            supportedDeviceFamilies: [
                .pad,
                .phone,
            ],
            supportedInterfaceOrientations: [
                .portrait,
                .landscapeRight,
                .landscapeLeft,
            ]
        ),
    ],
    dependencies: [
        .package(path: "../EdgeExportBundle"),
    ],
    targets: [
        .executableTarget(
            name: "AppModule",
            dependencies: [
                .product(name: "EdgeExportBundle", package: "EdgeExportBundle"),
            ],
            path: ".",
            // copied as is: the .mlpackage is compiled on the device (MLModel.compileModel)
            resources: [
                .copy("Resources"),
            ]
        ),
    ]
)
