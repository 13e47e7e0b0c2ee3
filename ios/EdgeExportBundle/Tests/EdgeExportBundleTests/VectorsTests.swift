// The shared vectors (tests/vectors/*.json, made by edgeexport's Python code) hold this Swift
// core to the Python definitions, as they hold Kotlin's bundle-core.
import EdgeExportBundle
import Foundation
import XCTest

final class VectorsTests: XCTestCase {
    /// A generated project keeps a copy beside this file; the repository has tests/vectors.
    static func vectorsDirectory() -> URL {
        if let env = ProcessInfo.processInfo.environment["EDGEEXPORT_VECTORS"] { return URL(fileURLWithPath: env) }
        let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let beside = here.appendingPathComponent("vectors")
        if FileManager.default.fileExists(atPath: beside.path) { return beside }
        return here.appendingPathComponent("../../../../tests/vectors").standardized
    }

    func load(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: VectorsTests.vectorsDirectory().appendingPathComponent(name))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func number(_ v: Any?) -> Double? {
        switch v {
        case let s as String: return s == "inf" ? .infinity : (s == "-inf" ? -.infinity : .nan)
        case let n as NSNumber: return n.doubleValue
        default: return nil
        }
    }

    func stats(_ o: [String: Any]) -> ErrorStats {
        ErrorStats(maxAbsErr: number(o["max_abs_err"])!, maxRelErr: number(o["max_rel_err"])!, cosine: number(o["cosine"])!,
                   sqnrDb: number(o["sqnr_db"])!, top1Agreement: number(o["top1_agreement"]))
    }

    func assertClose(_ want: ErrorStats, _ got: ErrorStats, _ where_: String) {
        let pairs: [(String, Double?, Double?)] = [("max_abs_err", want.maxAbsErr, got.maxAbsErr), ("max_rel_err", want.maxRelErr, got.maxRelErr),
                                                   ("cosine", want.cosine, got.cosine), ("sqnr_db", want.sqnrDb, got.sqnrDb),
                                                   ("top1", want.top1Agreement, got.top1Agreement)]
        for (field, w, g) in pairs {
            guard let w = w, let g = g else { XCTAssertTrue(w == nil && g == nil, "\(where_) \(field)"); continue }
            if w.isInfinite || g.isInfinite { XCTAssertEqual(w, g, "\(where_) \(field)"); continue }
            XCTAssertEqual(w, g, accuracy: 1e-9 * max(1, abs(w)), "\(where_) \(field)")
        }
    }

    func testStatisticsMatchPython() throws {
        let v = try load("statistics.json")
        let tolerances = try XCTUnwrap(v["tolerances"] as? [String: [String: Any]]).mapValues {
            Tolerance(name: $0["name"] as? String, maxRelErr: number($0["max_rel_err"]), minCosine: number($0["min_cosine"]),
                      minTop1Agreement: number($0["min_top1_agreement"]))
        }
        let cases = try XCTUnwrap(v["cases"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(cases.count, 5)
        for c in cases {
            let name = c["name"] as! String
            let got = try Stats.errorStats(expected: (c["expected"] as! [NSNumber]).map(\.doubleValue),
                                           expectedShape: c["shape"] as! [Int],
                                           actual: (c["actual"] as! [NSNumber]).map(\.doubleValue))
            assertClose(stats(c["stats"] as! [String: Any]), got, name)
            let violations = c["violations"] as! [String: [String]]
            for (tol, lines) in violations {
                XCTAssertEqual(tolerances[tol]!.violations(got), lines, "\(name) \(tol)")
            }
        }
        for m in try XCTUnwrap(v["merges"] as? [[String: Any]]) {
            let parts = (m["stats"] as! [[String: Any]]).map(stats)
            assertClose(stats(m["merged"] as! [String: Any]), Stats.merge(parts, samples: m["samples"] as! Bool), "merge")
        }
    }

    func testPreprocessingMatchesPython() throws {
        let cases = try XCTUnwrap(try load("preprocessing.json")["cases"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(cases.count, 4)
        for c in cases {
            let name = c["name"] as! String
            let img = c["image"] as! [String: Any]
            let image = PixelImage(rgb: (img["rgb"] as! [Int]).map { UInt8($0) }, width: img["width"] as! Int, height: img["height"] as! Int)
            // the manifest's own preprocessing and inputs[] entry (bundle contract v1)
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            let pp = try decoder.decode(Preprocessing.self, from: JSONSerialization.data(withJSONObject: c["preprocessing"]!))
            let spec = try decoder.decode(TensorSpec.self, from: JSONSerialization.data(withJSONObject: c["input"]!))

            let sized = c["sized"] as! [String: Any]
            let mine = pp.resizeAndCrop(pp.channels == 1 ? image.gray() : image)
            XCTAssertEqual(mine.width, sized["width"] as? Int, name)
            XCTAssertEqual(mine.pixels.map { Int($0) }, sized["pixels"] as! [Int], "\(name): pixels differ from Pillow's resize")

            let tensor = try pp.tensor(image, input: spec).toDoubles()
            let want = (c["tensor"] as! [NSNumber]).map(\.doubleValue)
            XCTAssertEqual(tensor.count, want.count)
            let maxDiff = zip(tensor, want).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(maxDiff, 1e-6, "\(name): max |swift - python| = \(maxDiff)")
        }
    }

    func testTopKAndLatency() {
        let top = Labels.topK([0.1, 3, 3, -1, 2], 3, labels: Labels.parse("a\nb\nc\nd\r\n"))
        XCTAssertEqual(top.map(\.index), [1, 2, 4])
        XCTAssertEqual(top.map(\.label), ["b", "c", "class 4"])
        let l = Latency.of((1...10).map(Double.init).shuffled())
        XCTAssertEqual(l.medianMs, 5.5)
        XCTAssertEqual(l.p90Ms, 9)
    }
}
