// manifest.json of an edgeexport bundle (Codable). Keys the manifest may not carry yet
// (schema_version, labels, quantization, preprocessing) are optional.
import Foundation

/// A dimension is an Int, or a name ("batch") for a symbolic one, read as -1.
public struct Dims: Codable, Equatable {
    public let values: [Int]

    public init(_ values: [Int]) { self.values = values }

    public init(from decoder: Decoder) throws {
        var c = try decoder.unkeyedContainer()
        var out: [Int] = []
        while !c.isAtEnd {
            if let v = try? c.decode(Int.self) { out.append(v) } else { _ = try c.decode(String.self); out.append(-1) }
        }
        values = out
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.unkeyedContainer()
        try c.encode(contentsOf: values)
    }
}

/// Per-tensor int8 scale / zero point ({scale, zero_point}, either may be a one-element list).
public struct Quantization: Codable, Equatable {
    public let scale: Double
    public let zeroPoint: Int

    enum CodingKeys: String, CodingKey { case scale, zeroPoint }

    public init(scale: Double, zeroPoint: Int) { self.scale = scale; self.zeroPoint = zeroPoint }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        scale = try (try? c.decode(Double.self, forKey: .scale)) ?? c.decode([Double].self, forKey: .scale)[0]
        zeroPoint = (try? c.decode(Int.self, forKey: .zeroPoint)) ?? (try? c.decode([Int].self, forKey: .zeroPoint))?.first ?? 0
    }
}

public struct TensorSpec: Codable {
    public let name: String
    public let shape: Dims
    public let dtype: String?
    /// as the artifact takes the tensor: "NCHW", "NHWC" or nil
    public let layout: String?
    public let quantization: Quantization?

    public init(name: String, shape: Dims, dtype: String?, layout: String?, quantization: Quantization?) {
        self.name = name; self.shape = shape; self.dtype = dtype; self.layout = layout; self.quantization = quantization
    }
}

public struct ParityEntry: Codable {
    public let sample: Int
    public let kind: String
    public let tensor: String
    public let path: String
    public let shape: [Int]
    public let dtype: DType
}

/// Labels are a file in the bundle or an inline list.
public enum LabelsRef: Codable {
    case file(String)
    case inline([String])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { self = .file(s) } else { self = .inline(try c.decode([String].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .file(let s): try c.encode(s)
        case .inline(let l): try c.encode(l)
        }
    }
}

public struct Source: Codable {
    public let model: String?
}

public struct Manifest: Codable {
    public let schemaVersion: Int?
    public let formatVersion: Int?
    public let target: String
    public let artifact: String
    public let artifactFormat: String?
    public let precision: String?
    /// CoreML compute units: "CPU_ONLY", "CPU_AND_GPU" (metal), "CPU_AND_NE", "ALL"
    public let computeUnits: String?
    public let inputs: [TensorSpec]
    public let outputs: [TensorSpec]
    public let preprocessing: Preprocessing?
    public let tolerances: Tolerance
    public let parity: [ParityEntry]
    // `files` (sha256 by path) is not decoded: .convertFromSnakeCase would rewrite the
    // underscores in its keys, which are file names
    public let labels: LabelsRef?
    public let source: Source?

    public var sampleCount: Int { (parity.map(\.sample).max() ?? -1) + 1 }

    public static func decode(_ data: Data) throws -> Manifest {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try d.decode(Manifest.self, from: data)
        } catch {
            throw BundleError("manifest.json cannot be read (\(error)); re-run edgeexport convert")
        }
    }
}

/// A bundle folder (in the app's resources, or anywhere on disk for tests).
public struct EdgeBundle {
    public let root: URL
    public let manifest: Manifest

    public init(root: URL) throws {
        self.root = root
        manifest = try Manifest.decode(Data(contentsOf: root.appendingPathComponent("manifest.json")))
    }

    /// DESIGN: no path from a manifest is followed outside its folder.
    public func url(_ path: String) throws -> URL {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        if path.isEmpty || path.hasPrefix("/") || path.contains("\\") || parts.contains("..") {
            throw BundleError("manifest path '\(path)' points outside the bundle; the manifest is damaged")
        }
        return root.appendingPathComponent(path)
    }

    public func tensor(_ e: ParityEntry) throws -> Tensor {
        try Tensor(shape: e.shape, dtype: e.dtype, data: Data(contentsOf: url(e.path)))
    }

    public func inputs(_ sample: Int) throws -> [String: Tensor] { try select(sample, "input") }
    public func expected(_ sample: Int) throws -> [String: Tensor] { try select(sample, "expected") }

    private func select(_ sample: Int, _ kind: String) throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for e in manifest.parity where e.sample == sample && e.kind == kind { out[e.tensor] = try tensor(e) }
        return out
    }

    public func labels() throws -> [String]? {
        switch manifest.labels {
        case .none: return nil
        case .inline(let l): return l
        case .file(let p): return Labels.parse(try String(contentsOf: url(p), encoding: .utf8))
        }
    }
}
