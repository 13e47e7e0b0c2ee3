// The manifest keys being added to edgeexport's manifest (schema_version, preprocessing filled
// in, labels, per-tensor layout as the artifact takes it, int8 scale/zero point) are read when
// present; older manifests without them still load.
package io.edgeexport.bundle

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Test
import java.nio.file.Files

class ManifestTest {
    private val extended = """
    {
      "schema_version": 2, "target": "nnapi", "artifact": "model.tflite", "artifact_format": "tflite",
      "precision": "int8", "compute_units": null,
      "inputs": [{"name": "x", "shape": ["batch", 4, 6, 3], "dtype": "int8", "layout": "NHWC",
                  "quantization": {"scale": [0.5], "zero_point": [-3]}}],
      "outputs": [{"name": "logits", "shape": [1, 3], "dtype": "float32", "layout": null, "quantization": null}],
      "preprocessing": {"resize": 8, "crop": [4, 6], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
                        "layout": "nchw", "channel_order": "bgr", "value_range": [0, 1]},
      "labels": "labels.txt",
      "tolerances": {"name": "int8", "min_cosine": 0.99},
      "parity": [], "files": {"labels.txt": "00"}
    }
    """

    @Test
    fun readsTheExtendedKeys() {
        val m = Manifest.parse(extended)
        assertEquals(2, m.schemaVersion)
        assertNull(m.computeUnits)
        val x = m.inputs.single()
        assertArrayEquals(intArrayOf(-1, 4, 6, 3), x.shape)
        assertEquals("NHWC", x.layout)
        assertEquals(Quantization(0.5, -3), x.quantization)
        val p = m.preprocessing!!
        assertArrayEquals(intArrayOf(4, 6), p.crop)
        assertEquals("bgr", p.channelOrder)
        assertEquals("labels.txt", m.labelsPath)
        assertEquals(0.99, m.tolerance.minCosine!!, 0.0)
    }

    @Test
    fun photoBecomesTheQuantizedNhwcInputTheArtifactTakes() {
        val m = Manifest.parse(extended)
        val x = m.inputs.single()
        // a 12x8 image of one colour: every pixel (r, g, b) = (255, 0, 51)
        val argb = IntArray(12 * 8) { (0xff shl 24) or (255 shl 16) or 51 }
        val t = m.preprocessing!!.toTensor(argb, 12, 8, x)
        assertEquals(DType.INT8, t.dtype)
        assertArrayEquals(intArrayOf(1, 4, 6, 3), t.shape) // the input's own layout wins over "nchw"
        // bgr: channel 0 is blue 51/255 = 0.2 -> (0.2 - 0.5) / 0.25 = -1.2 -> round(-2.4) - 3 = -5;
        // green 0 -> -2 -> -7; red 1 -> 2 -> 1
        val first = t.toLongs().take(3)
        assertEquals(listOf(-5L, -7L, 1L), first)
    }

    @Test
    fun labelsComeFromTheBundleFile() {
        val dir = Files.createTempDirectory("bundle").toFile()
        try {
            dir.resolve("manifest.json").writeText(extended)
            dir.resolve("labels.txt").writeText("cat\ndog\nfox\n")
            val b = Bundle.open(dir)
            assertEquals(listOf("cat", "dog", "fox"), b.labels())
            assertEquals(listOf("labels.txt"), b.verify()) // "00" is not its sha256
        } finally {
            dir.deleteRecursively()
        }
    }

    @Test
    fun manifestOfTodayStillLoads() {
        val m = Manifest.parse("""{"format_version": 1, "target": "rpi", "artifact": "model.tflite",
            "inputs": [{"name": "x", "shape": [1, 3, 8, 8], "dtype": "float32", "layout": "NCHW", "quantization": null}],
            "outputs": [], "preprocessing": null, "tolerances": {"name": "fp32", "max_rel_err": 0.0001}, "parity": []}""")
        assertEquals(1, m.schemaVersion)
        assertNull(m.preprocessing)
        assertNull(m.labels)
        assertNull(m.inputs[0].quantization)
        assertEquals("tflite", m.artifactFormat)
    }
}
