// Tensors as the bundle stores them: raw little-endian bytes, a shape and a numpy dtype name.
import Foundation

public enum DType: String, Codable {
    case float32, float16, float64, int8, uint8, int16, int32, int64, bool

    public var bytes: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }
}

public struct BundleError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public struct Tensor {
    public let shape: [Int]
    public let dtype: DType
    /// little-endian, C order: exactly the bytes of a parity .bin file
    public let data: Data

    public init(shape: [Int], dtype: DType, data: Data) throws {
        let want = shape.reduce(1, *) * dtype.bytes
        guard want == data.count else {
            throw BundleError("tensor \(shape) \(dtype.rawValue) needs \(want) bytes, got \(data.count)")
        }
        self.shape = shape
        self.dtype = dtype
        self.data = data
    }

    public var count: Int { shape.reduce(1, *) }

    /// Every element as a Double (float16 widened exactly, bool as 0/1).
    public func toDoubles() -> [Double] {
        let n = count
        var out = [Double](repeating: 0, count: n)
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            for i in 0..<n {
                switch dtype {
                case .float32:
                    out[i] = Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))))
                case .float64:
                    out[i] = Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)))
                case .float16:
                    out[i] = Double(Tensor.halfToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))))
                case .int8:
                    out[i] = Double(Int8(bitPattern: raw[i]))
                case .uint8, .bool:
                    out[i] = Double(raw[i])
                case .int16:
                    out[i] = Double(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: i * 2, as: Int16.self)))
                case .int32:
                    out[i] = Double(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)))
                case .int64:
                    out[i] = Double(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)))
                }
            }
        }
        return out
    }

    /// float32 tensor from values (little-endian bytes).
    public static func float32(shape: [Int], values: [Float]) -> Tensor {
        var data = Data(capacity: values.count * 4)
        for v in values {
            var le = v.bitPattern.littleEndian
            withUnsafeBytes(of: &le) { data.append(contentsOf: $0) }
        }
        // the byte count is right by construction
        return try! Tensor(shape: shape, dtype: .float32, data: data)
    }

    /// IEEE 754 half -> float, exact.
    public static func halfToFloat(_ h: UInt16) -> Float {
        let sign: Float = (h & 0x8000) != 0 ? -1 : 1
        let exp = Int((h >> 10) & 0x1f)
        let mant = Float(h & 0x3ff)
        switch exp {
        case 0: return sign * mant * powf(2, -24)
        case 0x1f: return mant == 0 ? sign * Float.infinity : Float.nan
        default: return sign * (1 + mant / 1024) * powf(2, Float(exp - 15))
        }
    }
}
