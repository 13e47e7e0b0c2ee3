// manifest.json of an edgeexport bundle (the bundle contract, schema_version 1: see
// src/edgeexport/validate/manifest.schema.json), read with the org.json API Android has built in.
package io.edgeexport.bundle

import org.json.JSONArray
import org.json.JSONObject

data class TensorSpec(
    val name: String,
    /** -1 for a symbolic dimension ("batch") */
    val shape: IntArray,
    val dtype: String,
    /** as the artifact takes/gives the tensor: "NCHW", "NHWC" or "plain" (not an image batch) */
    val layout: String,
    /** null: real values (`quantization.quantized` false); else the int8 codes' scale/zero point */
    val quantization: Quantization?,
    /** artifact axis j holds PyTorch axis axesFromPytorch[j] */
    val axesFromPytorch: IntArray,
) {
    /** An output as real values: int8 codes dequantized (real = scale * (q - zero_point)). */
    fun real(t: Tensor): Tensor =
        if (quantization != null && (t.dtype == DType.INT8 || t.dtype == DType.UINT8)) t.castTo(DType.FLOAT32, quantization) else t
}

data class ParityEntry(
    val sample: Int, val kind: String, val tensor: String, val path: String,
    val shape: IntArray, val dtype: String,
    /** the stored tensor's axis order: always the artifact's */
    val layout: String,
    /** true: int8 codes the artifact takes (inputs with int8 I/O); false: real values */
    val quantized: Boolean,
)

/** The manifest's `labels`: [path] holds [count] class names, indexing [output] along [axis] (-1). */
data class LabelsRef(val path: String, val count: Int, val output: String, val axis: Int) {
    companion object {
        fun fromJson(o: JSONObject): LabelsRef =
            LabelsRef(o.getString("path"), o.getInt("count"), o.getString("output"), o.getInt("axis"))
    }
}

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
    /** null when the bundle was converted without --labels */
    val labels: LabelsRef?,
    val sourceModel: String?,
) {
    /** Number of parity samples (manifest `parity[].sample` runs 0 until this). */
    val sampleCount: Int get() = (parity.maxOfOrNull { it.sample } ?: -1) + 1

    fun output(name: String): TensorSpec? = outputs.firstOrNull { it.name == name }

    companion object {
        /** The bundle contract version this reader follows (manifest.schema.json). */
        const val SCHEMA_VERSION = 1

        fun parse(text: String): Manifest {
            val o = try {
                JSONObject(text)
            } catch (e: org.json.JSONException) {
                throw BundleException("manifest.json is not JSON (${e.message}); re-run edgeexport convert")
            }
            val version = if (o.has("schema_version")) o.get("schema_version") else null
            if (version != SCHEMA_VERSION) {
                throw BundleException("manifest.json has schema_version $version; this app reads $SCHEMA_VERSION: " +
                    "re-run edgeexport convert with the edgeexport this app came with")
            }
            for (key in listOf("target", "artifact", "inputs", "outputs", "parity", "tolerances")) {
                if (!o.has(key)) throw BundleException("manifest.json has no '$key'; is it from edgeexport convert?")
            }
            return try {
                read(o)
            } catch (e: org.json.JSONException) { // a key of the contract missing or of the wrong type
                throw BundleException("manifest.json does not follow the bundle contract v$SCHEMA_VERSION (${e.message}); re-run edgeexport convert")
            }
        }

        private fun read(o: JSONObject): Manifest {
            val files = mutableMapOf<String, String>()
            o.optJSONObject("files")?.let { f -> f.keys().forEach { k -> val key = k.toString(); files[key] = f.getString(key) } }
            return Manifest(
                schemaVersion = SCHEMA_VERSION,
                target = o.getString("target"),
                artifact = o.getString("artifact"),
                artifactFormat = o.getString("artifact_format"),
                precision = o.getString("precision"),
                computeUnits = optString(o, "compute_units"),
                inputs = specs(o.getJSONArray("inputs")),
                outputs = specs(o.getJSONArray("outputs")),
                preprocessing = o.optJSONObject("preprocessing")?.let { Preprocessing.fromJson(it) },
                tolerance = tolerance(o.getJSONObject("tolerances")),
                parity = parity(o.getJSONArray("parity")),
                files = files,
                labels = o.optJSONObject("labels")?.let { LabelsRef.fromJson(it) },
                sourceModel = o.optJSONObject("source")?.let { optString(it, "model") },
            )
        }

        /** A string value, or null when the key is missing or JSON null (org.json gives "null"). */
        fun optString(o: JSONObject, key: String): String? =
            if (!o.has(key) || o.isNull(key)) null else o.getString(key)

        fun doubles(a: JSONArray): DoubleArray = DoubleArray(a.length()) { a.getDouble(it) }

        fun ints(a: JSONArray): IntArray = IntArray(a.length()) { a.optInt(it, -1) }

        private fun specs(a: JSONArray): List<TensorSpec> = List(a.length()) { spec(a.getJSONObject(it)) }

        /** One inputs[]/outputs[] entry. */
        fun spec(t: JSONObject): TensorSpec = TensorSpec(
            t.getString("name"), ints(t.getJSONArray("shape")), t.getString("dtype"),
            t.getString("layout"), quantization(t.getJSONObject("quantization")), ints(t.getJSONArray("axes_from_pytorch")),
        )

        /** {quantized: false} -> null; {quantized: true, dtype, scale, zero_point} (per tensor). */
        private fun quantization(q: JSONObject): Quantization? =
            if (!q.getBoolean("quantized")) null else Quantization(q.getDouble("scale"), q.getLong("zero_point"))

        private fun tolerance(t: JSONObject): Tolerance = Tolerance(
            t.optString("name", "custom"),
            if (t.has("max_rel_err")) t.getDouble("max_rel_err") else null,
            if (t.has("min_cosine")) t.getDouble("min_cosine") else null,
            if (t.has("min_top1_agreement")) t.getDouble("min_top1_agreement") else null,
        )

        private fun parity(a: JSONArray): List<ParityEntry> = List(a.length()) { i ->
            val e = a.getJSONObject(i)
            ParityEntry(e.getInt("sample"), e.getString("kind"), e.getString("tensor"),
                e.getString("path"), ints(e.getJSONArray("shape")), e.getString("dtype"),
                e.getString("layout"), e.getBoolean("quantized"))
        }
    }
}
