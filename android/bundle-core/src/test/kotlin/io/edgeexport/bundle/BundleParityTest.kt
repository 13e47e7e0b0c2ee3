// Real bundles written by `edgeexport convert` (tests/apps/test_android_core.py makes them):
// the manifest and parity tensors are read here, the .tflite runs in native LiteRT through the
// JNI bridge (NativeLiteRtRunner over libedgeexport_jni.so, the native runner's LiteRT backend)
// and its outputs go through ParityCheck. Its statistics must equal report.json's LiteRT row to
// 1e-6. Also: the shipped photos through the manifest's preprocessing.
package io.edgeexport.bundle

import org.json.JSONObject
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File

class BundleParityTest {
    private val cases: JSONObject by lazy {
        val path = System.getProperty("edgeexport.cases") ?: error("run with -Dedgeexport.cases=FILE")
        JSONObject(File(path).readText())
    }
    private val jni: File by lazy {
        File(System.getProperty("edgeexport.jni") ?: error("run with -Dedgeexport.jni=libedgeexport_jni.so"))
    }

    @Test
    fun parityStatisticsEqualReportJson() {
        val bundles = cases.getJSONArray("bundles")
        assertTrue("no bundles given", bundles.length() > 0)
        for (i in 0 until bundles.length()) {
            val case = bundles.getJSONObject(i)
            val dir = File(case.getString("bundle"))
            val bundle = Bundle.open(dir)
            assertEquals("$dir: files differing from the manifest's sha256", emptyList<String>(), bundle.verify())
            val report = JSONObject(File(dir, "report.json").readText())
            val row = (0 until report.getJSONArray("parity").length())
                .map { report.getJSONArray("parity").getJSONObject(it) }
                .first { it.getString("runtime") == case.getString("runtime") }
            val where = "${dir.name} (${bundle.manifest.target}, ${bundle.manifest.precision})"
            val outcome = NativeLiteRtRunner(File(dir, bundle.manifest.artifact), jni).use { runner ->
                // what the artifact gives (int8 codes for an int8 output), before ParityCheck
                // dequantizes it with the manifest
                val given = runner.run(bundle.inputs(0)).entries.joinToString { "${it.key}=${it.value.dtype.numpyName}" }
                println("$where: ${runner.name} outputs $given")
                ParityCheck.run(bundle, runner)
            }
            check(where, row, outcome.total!!)
            val perOutput = row.getJSONObject("per_output")
            assertEquals(where, perOutput.length(), outcome.perOutput.size)
            for ((name, s) in outcome.perOutput) check("$where $name", perOutput.getJSONObject(name), s)
            assertEquals(where, row.getBoolean("passed"), outcome.passed)
            val v = row.getJSONArray("violations")
            assertEquals(where, List(v.length()) { v.getString(it) }, outcome.violations)
            println("$where\n${outcome.table()}")
        }
        println("JNI statistics vs report.json: max |difference| = $worstDiff")
    }

    /** Largest |statistic here - report.json's| seen (printed for the log). */
    private var worstDiff = 0.0

    private fun check(where: String, want: JSONObject, got: ErrorStats) {
        val pairs = mutableListOf(want.getDouble("max_abs_err") to got.maxAbsErr,
            want.getDouble("max_rel_err") to got.maxRelErr, want.getDouble("cosine") to got.cosine)
        val top1 = got.top1Agreement
        if (!want.isNull("top1_agreement") && top1 != null) pairs.add(want.getDouble("top1_agreement") to top1)
        for ((a, b) in pairs) worstDiff = maxOf(worstDiff, Math.abs(a - b))
        assertEquals("$where max_abs_err", want.getDouble("max_abs_err"), got.maxAbsErr, 1e-6)
        assertEquals("$where max_rel_err", want.getDouble("max_rel_err"), got.maxRelErr, 1e-6)
        assertEquals("$where cosine", want.getDouble("cosine"), got.cosine, 1e-6)
        if (want.get("sqnr_db") is Number) assertEquals("$where sqnr_db", want.getDouble("sqnr_db"), got.sqnrDb, 1e-6)
        if (want.isNull("top1_agreement")) {
            assertEquals("$where top1", null, got.top1Agreement)
        } else {
            assertEquals("$where top1", want.getDouble("top1_agreement"), got.top1Agreement!!, 1e-6)
        }
    }

    @Test
    fun manifestDescribesTheArtifact() {
        val bundles = cases.getJSONArray("bundles")
        for (i in 0 until bundles.length()) {
            val dir = File(bundles.getJSONObject(i).getString("bundle"))
            val m = Bundle.open(dir).manifest
            assertTrue(File(dir, m.artifact).isFile)
            assertEquals("tflite", m.artifactFormat)
            assertTrue(m.inputs.isNotEmpty() && m.outputs.isNotEmpty())
            for (e in m.parity) {
                val t = Bundle.open(dir).tensor(e)
                assertEquals(Tensor.count(e.shape), t.size)
            }
        }
    }

    @Test
    fun photosPreprocessLikePython() {
        val photos = cases.optJSONArray("photos") ?: return
        assertTrue(photos.length() > 0)
        for (i in 0 until photos.length()) {
            val p = photos.getJSONObject(i)
            val w = p.getInt("width")
            val h = p.getInt("height")
            val rgb = File(p.getString("rgb")).readBytes()
            val argb = argb(rgb, w, h)
            val pp = Preprocessing.fromJson(p.getJSONObject("preprocessing"))
            val spec = Manifest.spec(p.getJSONObject("input"))
            val mine = pp.toTensor(argb, w, h, spec).toFloats()
            val want = Tensor(spec.shape, DType.FLOAT32, File(p.getString("tensor")).readBytes()).toFloats()
            var maxDiff = 0.0
            for (k in mine.indices) maxDiff = maxOf(maxDiff, Math.abs((mine[k] - want[k]).toDouble()))
            println("photo ${p.getString("name")} ${w}x$h: max |kotlin - python| = $maxDiff")
            assertTrue("photo ${p.getString("name")}: max |kotlin - python| = $maxDiff > 1/255", maxDiff <= 1.0 / 255)
        }
    }

    @Test
    fun bundlePreprocessingAndLabels() {
        val bundles = cases.getJSONArray("bundles")
        var seen = 0
        for (i in 0 until bundles.length()) {
            val case = bundles.getJSONObject(i)
            val photo = case.optJSONObject("photo") ?: continue
            val dir = File(case.getString("bundle"))
            val bundle = Bundle.open(dir)
            val m = bundle.manifest
            val pp = m.preprocessing!!
            val input = m.inputs.first { it.name == pp.input }
            assertEquals(input.layout, pp.layout)
            assertEquals(input.dtype, pp.dtype)
            val w = photo.getInt("width")
            val h = photo.getInt("height")
            val mine = pp.toTensor(argb(File(photo.getString("rgb")).readBytes(), w, h), w, h, input)
            val want = Tensor(mine.shape, DType.of(input.dtype), File(photo.getString("tensor")).readBytes())
            assertEquals(DType.of(input.dtype), mine.dtype)
            val a = mine.toDoubles()
            val b = want.toDoubles()
            val maxDiff = a.indices.maxOf { Math.abs(a[it] - b[it]) }
            val unit = if (input.quantization != null) "codes" else "values"
            val labels = bundle.labels()!!
            val ref = m.labels!!
            assertEquals(ref.count, m.output(ref.output)!!.shape.last())
            println("${dir.name}: photo ${photo.getString("name")} as ${input.layout} ${input.dtype} -> " +
                "max |kotlin - python| in $unit = $maxDiff; labels ${labels.size}")
            assertTrue("${dir.name}: $maxDiff", maxDiff <= if (input.quantization != null) 1.0 else 1.0 / 255)
            seen++
        }
        assertTrue("no bundle with preprocessing given", seen > 0)
    }

    private fun argb(rgb: ByteArray, w: Int, h: Int) = IntArray(w * h) { k ->
        (0xff shl 24) or ((rgb[3 * k].toInt() and 0xff) shl 16) or ((rgb[3 * k + 1].toInt() and 0xff) shl 8) or (rgb[3 * k + 2].toInt() and 0xff)
    }
}
