// The statistics and tolerances of edgeexport.metrics (same definitions as Kotlin's bundle-core),
// so a number computed on the phone means what the same number in report.json means.
import Foundation

public struct ErrorStats: Equatable {
    public let maxAbsErr: Double
    /// max |expected - actual| / (max - min of expected; max |expected| if constant)
    public let maxRelErr: Double
    public let cosine: Double
    public let sqnrDb: Double
    /// fraction of rows whose argmax over the last axis agrees; nil when the last axis is 1
    public let top1Agreement: Double?

    public init(maxAbsErr: Double, maxRelErr: Double, cosine: Double, sqnrDb: Double, top1Agreement: Double?) {
        self.maxAbsErr = maxAbsErr; self.maxRelErr = maxRelErr; self.cosine = cosine
        self.sqnrDb = sqnrDb; self.top1Agreement = top1Agreement
    }
}

public enum Stats {
    /// edgeexport.metrics.error_stats; `actual` is compared in `expectedShape`.
    public static func errorStats(expected: [Double], expectedShape: [Int], actual: [Double]) throws -> ErrorStats {
        guard expected.count == actual.count else {
            throw BundleError("shape mismatch: expected \(expectedShape) (\(expected.count) values), got \(actual.count)")
        }
        let n = expected.count
        var maxAbs = 0.0, emax = -Double.infinity, emin = Double.infinity, eAbsMax = 0.0
        var ee = 0.0, aa = 0.0, ea = 0.0, noise = 0.0
        for i in 0..<n {
            let e = expected[i], a = actual[i]
            let d = abs(e - a)
            if d.isNaN || d > maxAbs { maxAbs = maxAbs.isNaN ? maxAbs : d }
            emax = max(emax, e); emin = min(emin, e); eAbsMax = max(eAbsMax, abs(e))
            ee += e * e; aa += a * a; ea += e * a; noise += (e - a) * (e - a)
        }
        var span = n > 0 ? emax - emin : 0
        if span == 0 { span = n > 0 ? eAbsMax : 0 }
        let maxRel = span > 0 ? maxAbs / span : (maxAbs == 0 ? 0 : Double.infinity)
        let ne = ee.squareRoot(), na = aa.squareRoot()
        let cosine: Double = (ne == 0 && na == 0) ? 1 : ((ne == 0 || na == 0) ? 0 : ea / (ne * na))
        let sqnr: Double = noise == 0 ? .infinity : (ee > 0 ? 10 * log10(ee / noise) : -.infinity)
        var top1: Double? = nil
        if let last = expectedShape.last, last > 1, n > 0 {
            let rows = n / last
            var agree = 0
            for r in 0..<rows where argmax(expected, r * last, last) == argmax(actual, r * last, last) { agree += 1 }
            top1 = Double(agree) / Double(rows)
        }
        return ErrorStats(maxAbsErr: maxAbs, maxRelErr: maxRel, cosine: cosine, sqnrDb: sqnr, top1Agreement: top1)
    }

    /// First index of the largest value (numpy's argmax; NaN wins).
    static func argmax(_ v: [Double], _ from: Int, _ len: Int) -> Int {
        var best = 0
        for i in 1..<max(len, 1) {
            if v[from + best].isNaN { break }
            if v[from + i] > v[from + best] || v[from + i].isNaN { best = i }
        }
        return best
    }

    /// edgeexport.metrics.merge: worst case over outputs, or over the samples of one output
    /// (samples: true), where top-1 agreement is the mean over the samples.
    public static func merge(_ stats: [ErrorStats], samples: Bool = false) -> ErrorStats {
        let tops = stats.compactMap(\.top1Agreement)
        let top1: Double? = tops.isEmpty ? nil : (samples ? tops.reduce(0, +) / Double(tops.count) : tops.min())
        return ErrorStats(maxAbsErr: stats.map(\.maxAbsErr).max() ?? 0, maxRelErr: stats.map(\.maxRelErr).max() ?? 0,
                          cosine: stats.map(\.cosine).min() ?? 0, sqnrDb: stats.map(\.sqnrDb).min() ?? 0,
                          top1Agreement: top1)
    }
}

/// edgeexport.metrics.Tolerance: every bound that is set must hold.
public struct Tolerance: Codable, Equatable {
    public let name: String?
    public let maxRelErr: Double?
    public let minCosine: Double?
    public let minTop1Agreement: Double?

    public init(name: String?, maxRelErr: Double? = nil, minCosine: Double? = nil, minTop1Agreement: Double? = nil) {
        self.name = name; self.maxRelErr = maxRelErr; self.minCosine = minCosine; self.minTop1Agreement = minTop1Agreement
    }

    /// The bounds `stats` breaks, worded as report.json words them (C's %g is Python's %g).
    public func violations(_ stats: ErrorStats) -> [String] {
        var out: [String] = []
        if let m = maxRelErr, !(stats.maxRelErr <= m) {
            out.append("max_rel_err \(String(format: "%.3g", stats.maxRelErr)) > \(String(format: "%g", m))")
        }
        if let m = minCosine, !(stats.cosine >= m) {
            out.append("cosine \(String(format: "%.6f", stats.cosine)) < \(String(format: "%g", m))")
        }
        if let m = minTop1Agreement, let t = stats.top1Agreement, !(t >= m) {
            out.append("top-1 agreement \(String(format: "%.3f", t)) < \(String(format: "%g", m))")
        }
        return out
    }
}
