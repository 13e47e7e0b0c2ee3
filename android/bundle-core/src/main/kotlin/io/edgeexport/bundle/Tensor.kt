// Tensors as the bundle stores them: raw little-endian bytes plus shape and a numpy dtype name
// (manifest `parity[].dtype`). Values are read as Double for statistics, as edgeexport.metrics does.
package io.edgeexport.bundle

import java.nio.ByteBuffer
import java.nio.ByteOrder

/** numpy dtype names the bundle uses, with their size in bytes. */
enum class DType(val numpyName: String, val bytes: Int) {
    FLOAT32("float32", 4), FLOAT16("float16", 2), FLOAT64("float64", 8),
    INT8("int8", 1), UINT8("uint8", 1), INT16("int16", 2), INT32("int32", 4),
    INT64("int64", 8), BOOL("bool", 1);

    companion object {
        fun of(name: String): DType = entries.firstOrNull { it.numpyName == name }
            ?: throw BundleException("dtype '$name' is not one edgeexport writes " +
                "(${entries.joinToString { it.numpyName }})")
    }
}

/** A dense C-order tensor. [data] is little-endian, exactly the bytes of a parity .bin file. */
class Tensor(val shape: IntArray, val dtype: DType, val data: ByteArray) {
    init {
        val want = count(shape).toLong() * dtype.bytes
        if (want != data.size.toLong()) {
            throw BundleException("tensor of shape ${shape.contentToString()} ${dtype.numpyName} " +
                "needs $want bytes, got ${data.size}")
        }
    }

    val size: Int get() = count(shape)

    private fun buf(): ByteBuffer = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN)

    /** Every element as a Double (float16 widened exactly, bool as 0/1). */
    fun toDoubles(): DoubleArray {
        val b = buf()
        return DoubleArray(size) { i ->
            when (dtype) {
                DType.FLOAT32 -> b.getFloat(i * 4).toDouble()
                DType.FLOAT64 -> b.getDouble(i * 8)
                DType.FLOAT16 -> halfToFloat(b.getShort(i * 2)).toDouble()
                DType.INT8 -> b.get(i).toDouble()
                DType.UINT8, DType.BOOL -> (b.get(i).toInt() and 0xff).toDouble()
                DType.INT16 -> b.getShort(i * 2).toDouble()
                DType.INT32 -> b.getInt(i * 4).toDouble()
                DType.INT64 -> b.getLong(i * 8).toDouble()
            }
        }
    }

    fun toFloats(): FloatArray = toDoubles().let { d -> FloatArray(d.size) { d[it].toFloat() } }

    /** Integer elements as Long (integer dtypes only): token ids must not pass through Double. */
    fun toLongs(): LongArray {
        val b = buf()
        return LongArray(size) { i ->
            when (dtype) {
                DType.INT8 -> b.get(i).toLong()
                DType.UINT8, DType.BOOL -> (b.get(i).toInt() and 0xff).toLong()
                DType.INT16 -> b.getShort(i * 2).toLong()
                DType.INT32 -> b.getInt(i * 4).toLong()
                DType.INT64 -> b.getLong(i * 8)
                else -> throw BundleException("toLongs() on a ${dtype.numpyName} tensor")
            }
        }
    }

    /**
     * The same values in another dtype, as a runtime takes them: int64 token ids to int32,
     * float to int8/uint8 with the tensor's [quant] (q = round(x / scale) + zero_point, clamped),
     * int8 to float by dequantizing. Anything else is a plain numeric cast.
     */
    fun castTo(target: DType, quant: Quantization? = null): Tensor {
        if (target == dtype && quant == null) return this
        val floatIn = dtype == DType.FLOAT32 || dtype == DType.FLOAT64 || dtype == DType.FLOAT16
        val floatOut = target == DType.FLOAT32 || target == DType.FLOAT64 || target == DType.FLOAT16
        if (quant != null && floatIn && !floatOut) {
            return fromDoubles(shape, target, quant.quantize(toDoubles(), target))
        }
        if (quant != null && !floatIn && floatOut) {
            return fromDoubles(shape, target, quant.dequantize(toLongs()))
        }
        if (!floatIn && !floatOut) return fromLongs(shape, target, toLongs())
        return fromDoubles(shape, target, toDoubles())
    }

    companion object {
        fun count(shape: IntArray): Int = shape.fold(1) { a, d -> a * d }

        fun fromFloats(shape: IntArray, values: FloatArray): Tensor {
            val b = ByteBuffer.allocate(values.size * 4).order(ByteOrder.LITTLE_ENDIAN)
            values.forEach { b.putFloat(it) }
            return Tensor(shape, DType.FLOAT32, b.array())
        }

        fun fromDoubles(shape: IntArray, dtype: DType, values: DoubleArray): Tensor {
            val b = ByteBuffer.allocate(values.size * dtype.bytes).order(ByteOrder.LITTLE_ENDIAN)
            for (v in values) {
                when (dtype) {
                    DType.FLOAT32 -> b.putFloat(v.toFloat())
                    DType.FLOAT64 -> b.putDouble(v)
                    DType.FLOAT16 -> b.putShort(floatToHalf(v.toFloat()))
                    else -> putInteger(b, dtype, v.toLong())
                }
            }
            return Tensor(shape, dtype, b.array())
        }

        fun fromLongs(shape: IntArray, dtype: DType, values: LongArray): Tensor {
            val b = ByteBuffer.allocate(values.size * dtype.bytes).order(ByteOrder.LITTLE_ENDIAN)
            values.forEach { putInteger(b, dtype, it) }
            return Tensor(shape, dtype, b.array())
        }

        private fun putInteger(b: ByteBuffer, dtype: DType, v: Long) {
            when (dtype) {
                DType.INT8, DType.UINT8, DType.BOOL -> b.put(v.toByte())
                DType.INT16 -> b.putShort(v.toShort())
                DType.INT32 -> b.putInt(v.toInt())
                DType.INT64 -> b.putLong(v)
                DType.FLOAT32 -> b.putFloat(v.toFloat())
                DType.FLOAT64 -> b.putDouble(v.toDouble())
                DType.FLOAT16 -> b.putShort(floatToHalf(v.toFloat()))
            }
        }

        /** IEEE 754 half -> float, exact (subnormals, inf and NaN included). */
        fun halfToFloat(h: Short): Float {
            val bits = h.toInt() and 0xffff
            val sign = if (bits and 0x8000 != 0) -1f else 1f
            val exp = (bits ushr 10) and 0x1f
            val mant = bits and 0x3ff
            return when (exp) {
                0 -> sign * mant * Math.scalb(1f, -24)
                0x1f -> if (mant == 0) sign * Float.POSITIVE_INFINITY else Float.NaN
                else -> sign * (1f + mant / 1024f) * Math.scalb(1f, exp - 15)
            }
        }

        /** float -> IEEE 754 half, round to nearest even (as numpy's astype(float16)). */
        fun floatToHalf(f: Float): Short {
            val x = java.lang.Float.floatToIntBits(f)
            val sign = (x ushr 16) and 0x8000
            val absBits = x and 0x7fffffff
            if (absBits >= 0x7f800000) { // inf or NaN
                return (sign or 0x7c00 or (if (absBits > 0x7f800000) 0x200 else 0)).toShort()
            }
            if (absBits >= 0x477ff000) return (sign or 0x7c00).toShort() // rounds past 65504
            val exp = (absBits ushr 23) - 127 + 15
            if (exp <= 0) { // subnormal half: round the shifted mantissa to nearest even
                if (exp < -10) return sign.toShort()
                val mant = (absBits and 0x7fffff) or 0x800000
                val shift = 14 - exp
                var h = mant ushr shift
                val rem = mant and ((1 shl shift) - 1)
                val half = 1 shl (shift - 1)
                if (rem > half || (rem == half && (h and 1) == 1)) h++
                return (sign or h).toShort()
            }
            var h = (exp shl 10) or ((absBits ushr 13) and 0x3ff)
            val rem = absBits and 0x1fff
            if (rem > 0x1000 || (rem == 0x1000 && (h and 1) == 1)) h++ // carry may reach inf: right
            return (sign or h).toShort()
        }
    }
}

/** int8 scale / zero point of a quantized input or output (per tensor). */
data class Quantization(val scale: Double, val zeroPoint: Long) {
    fun quantize(values: DoubleArray, dtype: DType): DoubleArray {
        val (lo, hi) = when (dtype) {
            DType.INT8 -> -128.0 to 127.0
            DType.UINT8 -> 0.0 to 255.0
            DType.INT16 -> -32768.0 to 32767.0
            else -> throw BundleException("cannot quantize to ${dtype.numpyName}")
        }
        // round half to even, as numpy's round and TFLite's reference quantizer do
        return DoubleArray(values.size) { (Math.rint(values[it] / scale) + zeroPoint).coerceIn(lo, hi) }
    }

    fun dequantize(values: LongArray): DoubleArray =
        DoubleArray(values.size) { (values[it] - zeroPoint) * scale }
}

class BundleException(message: String) : RuntimeException(message)
