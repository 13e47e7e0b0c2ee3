// The bundle contract v1 (manifest.schema.json) as the Kotlin reader sees it: per-tensor layout
// and {quantized, scale, zero_point}, preprocessing, the labels entry, parity entries' layout and
// quantized flag; int8 outputs are dequantized before statistics; other schema versions refused.
package io.edgeexport.bundle

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import java.nio.file.Files

class ManifestTest {
    // as `edgeexport convert --target rpi --quantize int8 --int8-io --io-layout nhwc --preprocess
    // mean=0.5/0.5/0.5,std=0.25/0.25/0.25,resize=8,crop=4 --labels labels.txt` writes it (trimmed)
    private val int8Nhwc = """
    {
      "schema_version": 1, "format_version": 1, "target": "rpi", "artifact": "model.tflite",
      "artifact_format": "tflite", "ir": "ir.onnx", "precision": "int8",
      "target_options": {"int8_io": true, "io_layout": "nhwc"}, "quantization": {"scheme": "int8"},
      "inputs": [{"name": "x", "shape": [1, 4, 6, 3], "dtype": "int8", "layout": "NHWC",
                  "quantization": {"quantized": true, "dtype": "int8", "scale": 0.5, "zero_point": -3},
                  "axes_from_pytorch": [0, 2, 3, 1],
                  "pytorch": {"shape": [1, 3, 4, 6], "dtype": "float32", "layout": "NCHW"}}],
      "outputs": [{"name": "logits", "shape": [1, 3], "dtype": "int8", "layout": "plain",
                   "quantization": {"quantized": true, "dtype": "int8", "scale": 0.25, "zero_point": 10},
                   "axes_from_pytorch": [0, 1],
                   "pytorch": {"shape": [1, 3], "dtype": "float32", "layout": "plain"}}],
      "preprocessing": {"input": "x", "spec": "mean=0.5/0.5/0.5,std=0.25/0.25/0.25,resize=8,crop=4",
                        "color": "RGB", "pixel_range": [0, 255], "scale": 255.0,
                        "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
                        "formula": "x[c] = (pixel[c] / scale - mean[c]) / std[c]",
                        "value_range": [[-2.0, 2.0], [-2.0, 2.0], [-2.0, 2.0]],
                        "crop": {"height": 4, "width": 4, "position": "center"},
                        "size": {"height": 4, "width": 6}, "layout": "NHWC", "dtype": "int8",
                        "resize": {"shorter_side": 8, "interpolation": "bilinear"},
                        "then": "quantize: q = clamp(round(x / scale) + zero_point, -128, 127) with inputs['x'].quantization"},
      "labels": {"path": "labels.txt", "count": 3, "output": "logits", "axis": -1},
      "tolerances": {"name": "int8", "min_cosine": 0.99},
      "source": {"model": "m.pt", "kind": "torchscript", "sha256": null}, "tool_versions": {},
      "parity_samples": {"count": 1, "source": "random normal"},
      "parity": [{"sample": 0, "kind": "input", "tensor": "x", "path": "parity/sample0_input_x.bin",
                  "shape": [1, 4, 6, 3], "dtype": "int8", "layout": "NHWC", "quantized": true},
                 {"sample": 0, "kind": "expected", "tensor": "logits", "path": "parity/sample0_expected_logits.bin",
                  "shape": [1, 3], "dtype": "float32", "layout": "plain", "quantized": false}],
      "files": {"labels.txt": "00"}
    }
    """

    @Test
    fun readsTheContract() {
        val m = Manifest.parse(int8Nhwc)
        assertEquals(1, m.schemaVersion)
        assertNull(m.computeUnits)
        val x = m.inputs.single()
        assertArrayEquals(intArrayOf(1, 4, 6, 3), x.shape)
        assertEquals("NHWC", x.layout)
        assertArrayEquals(intArrayOf(0, 2, 3, 1), x.axesFromPytorch)
        assertEquals(Quantization(0.5, -3), x.quantization)
        assertEquals("plain", m.outputs.single().layout)
        val p = m.preprocessing!!
        assertEquals(4, p.cropWidth)
        assertEquals(6, p.width)
        assertEquals(8, p.resizeShorterSide)
        assertEquals("RGB", p.color)
        assertEquals(LabelsRef("labels.txt", 3, "logits", -1), m.labels)
        assertEquals(0.99, m.tolerance.minCosine!!, 0.0)
        assertEquals(listOf("NHWC" to true, "plain" to false), m.parity.map { it.layout to it.quantized })
    }

    @Test
    fun photoBecomesTheQuantizedNhwcInputTheArtifactTakes() {
        val m = Manifest.parse(int8Nhwc)
        val x = m.inputs.single()
        // a 12x8 image of one colour: every pixel (r, g, b) = (255, 0, 51)
        val argb = IntArray(12 * 8) { (0xff shl 24) or (255 shl 16) or 51 }
        val t = m.preprocessing!!.toTensor(argb, 12, 8, x)
        assertEquals(DType.INT8, t.dtype)
        assertArrayEquals(intArrayOf(1, 4, 6, 3), t.shape)
        // red 1 -> (1 - 0.5) / 0.25 = 2 -> round(4) - 3 = 1; green 0 -> -2 -> -7;
        // blue 51/255 = 0.2 -> -1.2 -> round(-2.4) - 3 = -5
        assertEquals(listOf(1L, -7L, -5L), t.toLongs().take(3))
    }

    @Test
    fun int8OutputsAreDequantizedBeforeComparing() {
        val out = Manifest.parse(int8Nhwc).outputs.single()
        val codes = Tensor.fromLongs(intArrayOf(1, 3), DType.INT8, longArrayOf(10, 14, -2))
        assertArrayEquals(doubleArrayOf(0.0, 1.0, -3.0), out.real(codes).toDoubles(), 0.0)
        val real = Tensor.fromFloats(intArrayOf(1, 3), floatArrayOf(0.5f, 1f, 2f))
        assertTrue(out.real(real) === real) // real values pass through
    }

    @Test
    fun labelsComeFromTheBundleFile() {
        val dir = Files.createTempDirectory("bundle").toFile()
        try {
            dir.resolve("manifest.json").writeText(int8Nhwc)
            dir.resolve("labels.txt").writeText("cat\ndog\nfox\n")
            val b = Bundle.open(dir)
            assertEquals(listOf("cat", "dog", "fox"), b.labels())
            assertEquals(listOf("labels.txt"), b.verify()) // "00" is not its sha256
            dir.resolve("labels.txt").writeText("cat\ndog\n")
            try {
                b.labels()
                fail("2 labels accepted where the manifest says 3")
            } catch (e: BundleException) {
                assertTrue(e.message!!.contains("2 labels, the manifest says 3"))
            }
        } finally {
            dir.deleteRecursively()
        }
    }

    @Test
    fun otherSchemaVersionsAreRefused() {
        for (v in listOf("", "\"schema_version\": 2,")) {
            try {
                Manifest.parse(int8Nhwc.replace("\"schema_version\": 1,", v))
                fail("accepted '$v'")
            } catch (e: BundleException) {
                assertTrue(e.message!!, e.message!!.contains("schema_version"))
            }
        }
        try {
            Manifest.parse(int8Nhwc.replace("\"layout\": \"plain\", \"quantized\": false", "\"quantized\": false"))
            fail("a parity entry without layout accepted")
        } catch (e: BundleException) {
            assertTrue(e.message!!, e.message!!.contains("bundle contract v1"))
        }
    }
}
