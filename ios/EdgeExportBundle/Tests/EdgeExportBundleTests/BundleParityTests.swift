// On a Mac (CoreML exists there): a coreml/metal bundle's parity re-run with CoreML must pass
// its manifest's tolerance. EDGEEXPORT_BUNDLE names the bundle folder; without it the test skips.
import EdgeExportBundle
import Foundation
import XCTest

final class BundleParityTests: XCTestCase {
    func testBundleParityWithCoreML() throws {
        #if canImport(CoreML)
        guard let path = ProcessInfo.processInfo.environment["EDGEEXPORT_BUNDLE"] else {
            throw XCTSkip("set EDGEEXPORT_BUNDLE to a bundle written by edgeexport convert --target coreml|metal")
        }
        let bundle = try EdgeBundle(root: URL(fileURLWithPath: path))
        let outcome = try ParityCheck.run(bundle, try CoreMLRunner(bundle: bundle))
        XCTAssertTrue(outcome.passed, "\(outcome.violations)")
        #else
        throw XCTSkip("CoreML is not available on this platform")
        #endif
    }
}
