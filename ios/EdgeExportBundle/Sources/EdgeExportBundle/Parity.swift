// The on-device parity check (every parity sample through a ModelRunner, compared as
// edgeexport.validate.parity does), latency (median, p90) and top-k with labels.
import Foundation

public protocol ModelRunner {
    var name: String { get }
    /// Inputs by name; outputs by name as the artifact gives them (int8 codes for an int8
    /// output: TensorSpec.real dequantizes them).
    func run(_ inputs: [String: Tensor]) throws -> [String: Tensor]
}

public struct ParityOutcome {
    public let runner: String
    public let perOutput: [(String, ErrorStats)]
    public let total: ErrorStats?
    public let violations: [String]
    public let tolerance: Tolerance
    public var passed: Bool { total != nil && violations.isEmpty }
}

public enum ParityCheck {
    public static func run(_ bundle: EdgeBundle, _ runner: ModelRunner) throws -> ParityOutcome {
        let n = bundle.manifest.sampleCount
        guard n > 0 else { throw BundleError("the manifest lists no parity samples; re-run edgeexport convert") }
        var perSample: [String: [ErrorStats]] = [:]
        var order: [String] = []
        var missing = Set<String>()
        for i in 0..<n {
            let got = try runner.run(bundle.inputs(i))
            for (name, want) in try bundle.expected(i).sorted(by: { $0.key < $1.key }) {
                guard let raw = got[name] else { missing.insert(name); continue }
                // expected outputs are real values; an int8 output is dequantized first
                let actual = bundle.manifest.output(name)?.real(raw) ?? raw
                if perSample[name] == nil { order.append(name) }
                perSample[name, default: []].append(try Stats.errorStats(
                    expected: want.toDoubles(), expectedShape: want.shape, actual: actual.toDoubles()))
            }
        }
        let perOutput = order.map { ($0, Stats.merge(perSample[$0]!, samples: true)) }
        let total = perOutput.isEmpty ? nil : Stats.merge(perOutput.map { $0.1 })
        let tol = bundle.manifest.tolerances
        let violations = missing.sorted().map { "output '\($0)' missing" } + (total.map { tol.violations($0) } ?? [])
        return ParityOutcome(runner: runner.name, perOutput: perOutput, total: total, violations: violations, tolerance: tol)
    }
}

public struct Latency {
    public let runs: Int
    public let medianMs: Double
    public let p90Ms: Double

    /// Median and 90th percentile (nearest rank).
    public static func of(_ ms: [Double]) -> Latency {
        let s = ms.sorted()
        let median = s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        let p90 = s[max(0, Int((0.9 * Double(s.count)).rounded(.up)) - 1)]
        return Latency(runs: s.count, medianMs: median, p90Ms: p90)
    }

    public static func measure(_ bundle: EdgeBundle, _ runner: ModelRunner, runs: Int, warmup: Int = 2) throws -> Latency {
        let inputs = try bundle.inputs(0)
        for _ in 0..<warmup { _ = try runner.run(inputs) }
        var times: [Double] = []
        for _ in 0..<runs {
            let t = DispatchTime.now().uptimeNanoseconds
            _ = try runner.run(inputs)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e6)
        }
        return of(times)
    }
}

public struct Prediction {
    public let index: Int
    public let score: Double
    public let label: String
}

public enum Labels {
    public static func parse(_ text: String) -> [String] {
        var lines = text.components(separatedBy: "\n").map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }
        while lines.last == "" { lines.removeLast() }
        return lines
    }

    /// The file `ref` names, read through `read`; its line count must be `ref.count`.
    public static func load(_ ref: LabelsRef, _ read: (String) throws -> Data) throws -> [String] {
        let data = try read(ref.path)
        let labels = parse(String(decoding: data, as: UTF8.self))
        guard labels.count == ref.count else {
            throw BundleError("\(ref.path): \(labels.count) labels, the manifest says \(ref.count); copy the bundle again")
        }
        return labels
    }

    /// Best first; ties keep the lower index first.
    public static func topK(_ scores: [Double], _ k: Int, labels: [String]?) -> [Prediction] {
        scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
            .prefix(k)
            .map { i in Prediction(index: i, score: scores[i], label: (labels.flatMap { i < $0.count ? $0[i] : nil }) ?? "class \(i)") }
    }
}
