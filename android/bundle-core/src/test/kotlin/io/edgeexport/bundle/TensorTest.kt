// Tensor decoding, dtype casts and int8 quantization, labels/top-k, latency and manifest safety.
package io.edgeexport.bundle

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class TensorTest {
    @Test
    fun halfFloatRoundTripsEveryValue() {
        for (bits in 0 until 0x10000) {
            val h = bits.toShort()
            val f = Tensor.halfToFloat(h)
            if (f.isNaN()) continue
            assertEquals("half 0x%04x".format(bits), bits, Tensor.floatToHalf(f).toInt() and 0xffff)
        }
        assertEquals(0x3c00, Tensor.floatToHalf(1f).toInt()) // 1.0
        assertEquals(0x3c00, Tensor.floatToHalf(1.00048828125f).toInt()) // tie rounds to even
        assertEquals(0x7c00, Tensor.floatToHalf(65520f).toInt()) // past the largest half: inf
    }

    @Test
    fun int64TokenIdsCastToInt32Exactly() {
        val ids = Tensor.fromLongs(intArrayOf(1, 3), DType.INT64, longArrayOf(101, 2023, 30521))
        val t = ids.castTo(DType.INT32)
        assertEquals(DType.INT32, t.dtype)
        assertArrayEquals(longArrayOf(101, 2023, 30521), t.toLongs())
    }

    @Test
    fun quantizeRoundsHalfToEvenAndClamps() {
        val x = Tensor.fromFloats(intArrayOf(5), floatArrayOf(0.25f, 0.75f, -100f, 100f, 0f))
        val q = x.castTo(DType.INT8, Quantization(0.5, -3))
        // 0.25/0.5 = 0.5 -> 0 (even) -> -3; 0.75/0.5 = 1.5 -> 2 -> -1; clamped; 0 -> zero point
        assertArrayEquals(longArrayOf(-3, -1, -128, 127, -3), q.toLongs())
        val back = q.castTo(DType.FLOAT32, Quantization(0.5, -3)).toDoubles()
        assertArrayEquals(doubleArrayOf(0.0, 1.0, -62.5, 65.0, 0.0), back, 0.0)
    }

    @Test
    fun wrongByteCountIsRefused() {
        try {
            Tensor(intArrayOf(2, 2), DType.FLOAT32, ByteArray(12))
            fail("accepted 12 bytes for 4 floats")
        } catch (e: BundleException) {
            assertTrue(e.message!!.contains("needs 16 bytes"))
        }
    }

    @Test
    fun topKIsBestFirstWithStableTies() {
        val top = Labels.topK(doubleArrayOf(0.1, 3.0, 3.0, -1.0, 2.0), 3, Labels.parse("a\nb\nc\nd\r\n"))
        assertEquals(listOf(1, 2, 4), top.map { it.index })
        assertEquals(listOf("b", "c", "class 4"), top.map { it.label })
    }

    @Test
    fun latencyMedianAndP90() {
        val l = Latency.of((1..10).map { it.toDouble() }.shuffled(java.util.Random(1)))
        assertEquals(5.5, l.medianMs, 0.0)
        assertEquals(9.0, l.p90Ms, 0.0)
        assertEquals(3.0, Latency.of(listOf(3.0)).p90Ms, 0.0)
    }

    @Test
    fun manifestPathsStayInsideTheBundle() {
        for (bad in listOf("../model.tflite", "/etc/passwd", "parity/../../x", "a\\b", "")) {
            try {
                Bundle.checkInside(bad)
                fail("accepted '$bad'")
            } catch (e: BundleException) {
                assertTrue(e.message!!.contains("outside the bundle"))
            }
        }
        Bundle.checkInside("parity/sample0_input_x.bin")
    }

    @Test
    fun violationsFormatLikePython() {
        assertEquals("0.0001", Tolerance.g(1e-4, 6))
        assertEquals("1e-05", Tolerance.g(1e-5, 6))
        assertEquals("0.142", Tolerance.g(0.14246361885191972, 3))
        assertEquals("1.26", Tolerance.g(1.2550301236351633, 3))
        assertEquals("1", Tolerance.g(1.0, 6))
        assertEquals("1.23e+06", Tolerance.g(1234567.0, 3))
    }
}
