// manifest.json of an edgeexport bundle, read with the org.json API that Android has built in.
// Keys the manifest may or may not carry yet (schema_version, labels, quantization) are optional.
package io.edgeexport.bundle

import org.json.JSONArray
import org.json.JSONObject

data class TensorSpec(
    val name: String,
    /** -1 for a symbolic dimension ("batch") */
    val shape: IntArray,
    val dtype: String,
    /** as the artifact takes the tensor: "NCHW", "NHWC" or null (not an image) */
    val layout: String?,
    val quantization: Quantization?,
)

data class ParityEntry(
    val sample: Int, val kind: String, val tensor: String, val path: String,
    val shape: IntArray, val dtype: String,
)

data class Manifest(
    val schemaVersion: Int,
    val target: String,
    val artifact: String,
    val artifactFormat: String,
    val precision: String,
    /** CoreML compute units ("CPU_AND_GPU" for metal); null for other targets */
    val computeUnits: String?,
    val inputs: List<TensorSpec>,
    val outputs: List<TensorSpec>,
    val preprocessing: Preprocessing?,
    val tolerance: Tolerance,
    val parity: List<ParityEntry>,
    /** relative path -> sha256 hex */
    val files: Map<String, String>,
    /** a labels file inside the bundle, or inline labels; null when the manifest names none */
    val labelsPath: String?,
    val labels: List<String>?,
    val sourceModel: String?,
) {
    /** Number of parity samples (manifest `parity[].sample` runs 0 until this). */
    val sampleCount: Int get() = (parity.maxOfOrNull { it.sample } ?: -1) + 1

    companion object {
        fun parse(text: String): Manifest {
            val o = try {
                JSONObject(text)
            } catch (e: org.json.JSONException) {
                throw BundleException("manifest.json is not JSON (${e.message}); re-run edgeexport convert")
            }
            for (key in listOf("target", "artifact", "inputs", "outputs", "parity")) {
                if (!o.has(key)) throw BundleException("manifest.json has no '$key'; is it from edgeexport convert?")
            }
            val files = mutableMapOf<String, String>()
            o.optJSONObject("files")?.let { f -> f.keys().forEach { k -> val key = k.toString(); files[key] = f.getString(key) } }
            val labels = o.opt("labels")
            return Manifest(
                schemaVersion = if (o.has("schema_version")) o.getInt("schema_version") else o.optInt("format_version", 1),
                target = o.getString("target"),
                artifact = o.getString("artifact"),
                artifactFormat = optString(o, "artifact_format") ?: o.getString("artifact").substringAfterLast('.'),
                precision = optString(o, "precision") ?: "fp32",
                computeUnits = optString(o, "compute_units"),
                inputs = specs(o.getJSONArray("inputs")),
                outputs = specs(o.getJSONArray("outputs")),
                preprocessing = o.optJSONObject("preprocessing")?.let { Preprocessing.fromJson(it) },
                tolerance = tolerance(o.optJSONObject("tolerances") ?: JSONObject()),
                parity = parity(o.getJSONArray("parity")),
                files = files,
                labelsPath = labels as? String,
                labels = (labels as? JSONArray)?.let { a -> List(a.length()) { a.getString(it) } },
                sourceModel = o.optJSONObject("source")?.let { optString(it, "model") },
            )
        }

        /** A string value, or null when the key is missing or JSON null (org.json gives "null"). */
        fun optString(o: JSONObject, key: String): String? =
            if (!o.has(key) || o.isNull(key)) null else o.getString(key)

        fun doubles(a: JSONArray): DoubleArray = DoubleArray(a.length()) { a.getDouble(it) }

        private fun ints(a: JSONArray): IntArray = IntArray(a.length()) { a.optInt(it, -1) }

        private fun specs(a: JSONArray): List<TensorSpec> = List(a.length()) { i ->
            val t = a.getJSONObject(i)
            TensorSpec(
                t.getString("name"), ints(t.getJSONArray("shape")), optString(t, "dtype") ?: "float32",
                optString(t, "layout")?.uppercase(), quantization(t.optJSONObject("quantization")),
            )
        }

        /** {scale, zero_point} (or one-element lists, or scales/zero_points); per-tensor only. */
        private fun quantization(q: JSONObject?): Quantization? {
            if (q == null) return null
            fun first(vararg keys: String): Double? {
                for (k in keys) {
                    if (!q.has(k) || q.isNull(k)) continue
                    val v = q.get(k)
                    if (v is JSONArray) {
                        if (v.length() != 1) throw BundleException("per-channel quantization of an input/output ($k has ${v.length()} values) is not supported by the app")
                        return v.getDouble(0)
                    }
                    return q.getDouble(k)
                }
                return null
            }
            val scale = first("scale", "scales") ?: return null
            return Quantization(scale, (first("zero_point", "zero_points") ?: 0.0).toLong())
        }

        private fun tolerance(t: JSONObject): Tolerance = Tolerance(
            t.optString("name", "custom"),
            if (t.has("max_rel_err")) t.getDouble("max_rel_err") else null,
            if (t.has("min_cosine")) t.getDouble("min_cosine") else null,
            if (t.has("min_top1_agreement")) t.getDouble("min_top1_agreement") else null,
        )

        private fun parity(a: JSONArray): List<ParityEntry> = List(a.length()) { i ->
            val e = a.getJSONObject(i)
            ParityEntry(e.getInt("sample"), e.getString("kind"), e.getString("tensor"),
                e.getString("path"), ints(e.getJSONArray("shape")), e.getString("dtype"))
        }
    }
}
