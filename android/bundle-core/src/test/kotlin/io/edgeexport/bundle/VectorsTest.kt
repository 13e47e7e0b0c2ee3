// The shared vectors (tests/vectors/*.json, made by edgeexport's Python code) hold this Kotlin
// core to the Python definitions: statistics, tolerances, merges and preprocessing.
package io.edgeexport.bundle

import org.json.JSONArray
import org.json.JSONObject
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import java.io.File

class VectorsTest {
    private fun vectors(name: String): JSONObject {
        val dir = System.getProperty("edgeexport.vectors")
            ?: error("run with -Dedgeexport.vectors=DIR (scripts/build-android-core.sh sets it)")
        return JSONObject(File(dir, name).readText())
    }

    private fun num(o: JSONObject, key: String): Double? = when {
        o.isNull(key) -> null
        o.get(key) == "inf" -> Double.POSITIVE_INFINITY
        o.get(key) == "-inf" -> Double.NEGATIVE_INFINITY
        o.get(key) == "nan" -> Double.NaN
        else -> o.getDouble(key)
    }

    private fun stats(o: JSONObject) = ErrorStats(
        num(o, "max_abs_err")!!, num(o, "max_rel_err")!!, num(o, "cosine")!!, num(o, "sqnr_db")!!,
        num(o, "top1_agreement"),
    )

    private fun assertStats(where: String, want: ErrorStats, got: ErrorStats) {
        fun close(field: String, w: Double?, g: Double?) {
            if (w == null || g == null) {
                assertEquals("$where $field", w, g)
                return
            }
            if (w.isInfinite() || g.isInfinite()) {
                assertEquals("$where $field", w, g, 0.0)
                return
            }
            assertEquals("$where $field", w, g, 1e-9 * maxOf(1.0, Math.abs(w)))
        }
        close("max_abs_err", want.maxAbsErr, got.maxAbsErr)
        close("max_rel_err", want.maxRelErr, got.maxRelErr)
        close("cosine", want.cosine, got.cosine)
        close("sqnr_db", want.sqnrDb, got.sqnrDb)
        close("top1_agreement", want.top1Agreement, got.top1Agreement)
    }

    private fun tolerances(): Map<String, Tolerance> {
        val t = vectors("statistics.json").getJSONObject("tolerances")
        return t.keys().asSequence().map { it.toString() }.associateWith { k ->
            val o = t.getJSONObject(k)
            Tolerance(o.getString("name"), num(o, "max_rel_err").takeIf { o.has("max_rel_err") },
                num(o, "min_cosine").takeIf { o.has("min_cosine") },
                num(o, "min_top1_agreement").takeIf { o.has("min_top1_agreement") })
        }
    }

    private fun strings(a: JSONArray) = List(a.length()) { a.getString(it) }

    @Test
    fun statisticsMatchPython() {
        val cases = vectors("statistics.json").getJSONArray("cases")
        assertTrue(cases.length() >= 5)
        val tols = tolerances()
        for (i in 0 until cases.length()) {
            val c = cases.getJSONObject(i)
            val shape = c.getJSONArray("shape").let { a -> IntArray(a.length()) { a.getInt(it) } }
            val got = Stats.errorStats(Manifest.doubles(c.getJSONArray("expected")), shape,
                Manifest.doubles(c.getJSONArray("actual")))
            val want = stats(c.getJSONObject("stats"))
            assertStats(c.getString("name"), want, got)
            val v = c.getJSONObject("violations")
            for ((name, tol) in tols) {
                // worded exactly as Python words them (report.json and the app show these lines)
                assertEquals("${c.getString("name")} $name", strings(v.getJSONArray(name)), tol.violations(got))
            }
        }
    }

    @Test
    fun mergesMatchPython() {
        val merges = vectors("statistics.json").getJSONArray("merges")
        for (i in 0 until merges.length()) {
            val m = merges.getJSONObject(i)
            val parts = m.getJSONArray("stats").let { a -> List(a.length()) { stats(a.getJSONObject(it)) } }
            assertStats("merge samples=${m.getBoolean("samples")}", stats(m.getJSONObject("merged")),
                Stats.merge(parts, m.getBoolean("samples")))
        }
    }

    @Test
    fun preprocessingMatchesPython() {
        val cases = vectors("preprocessing.json").getJSONArray("cases")
        assertTrue(cases.length() >= 4)
        for (i in 0 until cases.length()) {
            val c = cases.getJSONObject(i)
            val name = c.getString("name")
            val img = c.getJSONObject("image")
            val w = img.getInt("width")
            val h = img.getInt("height")
            val rgb = img.getJSONArray("rgb")
            val argb = IntArray(w * h) { p ->
                (0xff shl 24) or (rgb.getInt(3 * p) shl 16) or (rgb.getInt(3 * p + 1) shl 8) or rgb.getInt(3 * p + 2)
            }
            // the manifest's own preprocessing and inputs[] entry (bundle contract v1)
            val pp = Preprocessing.fromJson(c.getJSONObject("preprocessing"))
            val spec = Manifest.spec(c.getJSONObject("input"))

            // the 8-bit image after resize and crop: Pillow's result, bit for bit
            val sized = c.getJSONObject("sized")
            val mine = pp.resizeAndCrop(PixelImage.fromArgb(argb, w, h, pp.channels == 1))
            assertEquals("$name width", sized.getInt("width"), mine.width)
            assertEquals("$name height", sized.getInt("height"), mine.height)
            val want = sized.getJSONArray("pixels")
            var differing = 0
            for (k in 0 until want.length()) if (want.getInt(k) != mine.pixels[k]) differing++
            assertEquals("$name: pixels differing from Pillow's resize", 0, differing)

            val tensor = pp.toTensor(argb, w, h, spec).toFloats()
            val expect = c.getJSONArray("tensor")
            assertEquals(expect.length(), tensor.size)
            var maxDiff = 0.0
            for (k in tensor.indices) maxDiff = maxOf(maxDiff, Math.abs(tensor[k] - expect.getDouble(k)))
            assertTrue("$name: max |kotlin - python| = $maxDiff", maxDiff <= 1e-6)
        }
    }

    @Test
    fun preprocessingRefusesWhatItDoesNotImplement() {
        val c = vectors("preprocessing.json").getJSONArray("cases").getJSONObject(0).getJSONObject("preprocessing")
        for ((key, bad) in listOf("color" to "BGR", "layout" to "NCWH")) {
            try {
                Preprocessing.fromJson(JSONObject(c.toString()).put(key, bad))
                fail("accepted $key $bad")
            } catch (e: BundleException) {
                assertTrue(e.message!!.contains(bad))
            }
        }
    }
}
