// manifest.json of an edgeexport bundle (Codable): the bundle contract, schema_version 1
// (src/edgeexport/validate/manifest.schema.json); other versions are refused.
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

/// Per-tensor int8 scale / zero point: real = scale * (q - zeroPoint).
public struct Quantization: Codable, Equatable {
    public let scale: Double
    public let zeroPoint: Int

    public init(scale: Double, zeroPoint: Int) { self.scale = scale; self.zeroPoint = zeroPoint }
}

/// inputs[]/outputs[].quantization: {quantized: false} or {quantized: true, dtype, scale, zero_point}.
public struct TensorQuantization: Codable {
    public let quantized: Bool
    public let dtype: String?
    public let scale: Double?
    public let zeroPoint: Int?

    /// nil when the tensor holds real values.
    public var params: Quantization? {
        guard quantized, let s = scale, let z = zeroPoint else { return nil }
        return Quantization(scale: s, zeroPoint: z)
    }
}

public struct TensorSpec: Codable {
    public let name: String
    public let shape: Dims
    public let dtype: String
    /// as the artifact takes/gives the tensor: "NCHW", "NHWC" or "plain"
    public let layout: String
    public let quantization: TensorQuantization
    /// artifact axis j holds PyTorch axis axesFromPytorch[j]
    public let axesFromPytorch: [Int]

    /// An output as real values: int8 codes dequantized (real = scale * (q - zero_point)).
    public func real(_ t: Tensor) -> Tensor {
        guard let q = quantization.params, t.dtype == .int8 || t.dtype == .uint8 else { return t }
        return Tensor.float32(shape: t.shape, values: t.toDoubles().map { Float(($0 - Double(q.zeroPoint)) * q.scale) })
    }
}

public struct ParityEntry: Codable {
    public let sample: Int
    public let kind: String
    public let tensor: String
    public let path: String
    public let shape: [Int]
    public let dtype: DType
    /// the stored tensor's axis order: always the artifact's
    public let layout: String
    /// true: int8 codes the artifact takes; false: real values (expected outputs always)
    public let quantized: Bool
}

/// manifest `labels`: `path` holds `count` class names indexing `output` along its last axis.
public struct LabelsRef: Codable {
    public let path: String
    public let count: Int
    public let output: String
    public let axis: Int
}

public struct Source: Codable {
    public let model: String?
}

public struct Manifest: Codable {
    /// The bundle contract version this reader follows (manifest.schema.json).
    public static let supportedSchemaVersion = 1

    public let schemaVersion: Int
    public let target: String
    public let artifact: String
    public let artifactFormat: String
    public let precision: String
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

    public func output(_ name: String) -> TensorSpec? { outputs.first { $0.name == name } }

    public static func decode(_ data: Data) throws -> Manifest {
        struct Version: Decodable { let schemaVersion: Int? }
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        let version = (try? d.decode(Version.self, from: data))?.schemaVersion
        guard version == supportedSchemaVersion else {
            throw BundleError("manifest.json has schema_version \(version.map { "\($0)" } ?? "none"); this app reads " +
                              "\(supportedSchemaVersion): re-run edgeexport convert with the edgeexport this app came with")
        }
        do {
            return try d.decode(Manifest.self, from: data)
        } catch {
            throw BundleError("manifest.json does not follow the bundle contract v1 (\(error)); re-run edgeexport convert")
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

    /// The manifest's labels (the file `labels.path` names), nil without labels.
    public func labels() throws -> [String]? {
        try manifest.labels.map { ref in try Labels.load(ref) { try Data(contentsOf: url($0)) } }
    }
}
