// ModelRunner over CoreML: the bundle's .mlpackage compiled on the device, loaded with the
// compute units the manifest names (metal = CPU_AND_GPU), fed and read as MLMultiArrays.
#if canImport(CoreML)
import CoreML
import Foundation

public final class CoreMLRunner: ModelRunner {
    public let name: String
    public let model: MLModel

    /// "CPU_ONLY" | "CPU_AND_GPU" | "CPU_AND_NE" | "ALL" (the manifest's compute_units).
    public static func computeUnits(_ s: String?) -> MLComputeUnits {
        switch s?.uppercased() {
        case "CPU_ONLY": return .cpuOnly
        case "CPU_AND_GPU": return .cpuAndGPU
        case "CPU_AND_NE": return .cpuAndNeuralEngine
        default: return .all
        }
    }

    public init(bundle: EdgeBundle, computeUnits: MLComputeUnits? = nil) throws {
        let units = computeUnits ?? CoreMLRunner.computeUnits(bundle.manifest.computeUnits)
        let compiled = try MLModel.compileModel(at: bundle.url(bundle.manifest.artifact))
        let config = MLModelConfiguration()
        config.computeUnits = units
        model = try MLModel(contentsOf: compiled, configuration: config)
        name = "coreml-" + CoreMLRunner.unitName(units)
    }

    static func unitName(_ u: MLComputeUnits) -> String {
        switch u {
        case .cpuOnly: return "cpu"
        case .cpuAndGPU: return "cpu+gpu"
        case .cpuAndNeuralEngine: return "cpu+ne"
        default: return "all"
        }
    }

    public func run(_ inputs: [String: Tensor]) throws -> [String: Tensor] {
        var features: [String: MLFeatureValue] = [:]
        for (name, desc) in model.modelDescription.inputDescriptionsByName {
            guard let t = inputs[name] else { throw BundleError("no value for the model's input '\(name)'") }
            let type = desc.multiArrayConstraint?.dataType ?? .float32
            features[name] = MLFeatureValue(multiArray: try CoreMLRunner.multiArray(t, type))
        }
        let out = try model.prediction(from: MLDictionaryFeatureProvider(dictionary: features))
        var result: [String: Tensor] = [:]
        for name in out.featureNames {
            guard let a = out.featureValue(for: name)?.multiArrayValue else { continue }
            let shape = a.shape.map(\.intValue)
            result[name] = Tensor.float32(shape: shape, values: CoreMLRunner.values(a).map { Float($0) })
        }
        return result
    }

    /// A tensor as the MLMultiArray type the model asks for (int64 token ids -> int32, ...).
    public static func multiArray(_ t: Tensor, _ type: MLMultiArrayDataType) throws -> MLMultiArray {
        let a = try MLMultiArray(shape: t.shape.map { NSNumber(value: $0) }, dataType: type)
        let v = t.toDoubles()
        let strides = a.strides.map(\.intValue)
        for i in 0..<v.count {
            var rem = i, offset = 0
            for d in stride(from: t.shape.count - 1, through: 0, by: -1) {
                offset += (rem % t.shape[d]) * strides[d]
                rem /= t.shape[d]
            }
            switch type {
            case .double: a.dataPointer.assumingMemoryBound(to: Double.self)[offset] = v[i]
            case .float32: a.dataPointer.assumingMemoryBound(to: Float.self)[offset] = Float(v[i])
            case .int32: a.dataPointer.assumingMemoryBound(to: Int32.self)[offset] = Int32(v[i])
            default: a[i] = NSNumber(value: v[i]) // float16: a new MLMultiArray is contiguous
            }
        }
        return a
    }

    /// Every element in C order, following the array's strides (GPU outputs may be padded).
    public static func values(_ a: MLMultiArray) -> [Double] {
        let shape = a.shape.map(\.intValue), strides = a.strides.map(\.intValue)
        let n = shape.reduce(1, *)
        var out = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var rem = i, offset = 0
            for d in stride(from: shape.count - 1, through: 0, by: -1) {
                offset += (rem % shape[d]) * strides[d]
                rem /= shape[d]
            }
            switch a.dataType {
            case .double: out[i] = a.dataPointer.assumingMemoryBound(to: Double.self)[offset]
            case .float32: out[i] = Double(a.dataPointer.assumingMemoryBound(to: Float.self)[offset])
            case .int32: out[i] = Double(a.dataPointer.assumingMemoryBound(to: Int32.self)[offset])
            case .float16: out[i] = Double(Tensor.halfToFloat(a.dataPointer.assumingMemoryBound(to: UInt16.self)[offset]))
            default: out[i] = a[offset].doubleValue
            }
        }
        return out
    }
}
#endif
