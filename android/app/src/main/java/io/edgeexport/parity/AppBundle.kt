// The bundle packed into the APK's assets by `edgeexport app android`, and app.json beside it
// (app name, preprocessing given to `edgeexport app` when the manifest has none, labels).
package io.edgeexport.parity

import android.content.Context
import io.edgeexport.bundle.Bundle
import io.edgeexport.bundle.BundleException
import io.edgeexport.bundle.BundleFiles
import io.edgeexport.bundle.Labels
import io.edgeexport.bundle.LabelsRef
import io.edgeexport.bundle.Preprocessing
import org.json.JSONObject
import java.io.FileNotFoundException

class AssetFiles(private val context: Context, private val root: String) : BundleFiles {
    override fun read(path: String): ByteArray = try {
        context.assets.open("$root/$path").use { it.readBytes() }
    } catch (e: FileNotFoundException) {
        throw BundleException("assets/$root/$path is missing: regenerate the app with edgeexport app android")
    }
}

class AppBundle(val bundle: Bundle, val preprocessing: Preprocessing?, val labels: List<String>?,
                /** the output the labels index (labels.output), null without labels */
                val labelsOutput: String?, val omitted: Set<String>, val latencyRuns: Int) {

    /** sha256 of every file the app carries, against the manifest (IR and HTML report are left out). */
    fun verify(): List<String> = bundle.verify().filter { it !in omitted }

    companion object {
        fun load(context: Context): AppBundle {
            val config = try {
                JSONObject(context.assets.open("app.json").use { String(it.readBytes(), Charsets.UTF_8) })
            } catch (e: FileNotFoundException) {
                throw BundleException("no bundle in this app: create the project with `edgeexport app android BUNDLE -o DIR`")
            }
            val root = config.optString("bundle", "bundle")
            val bundle = Bundle.open(AssetFiles(context, root))
            // app.json's preprocessing/labels (given to `edgeexport app`) are in the manifest's
            // form and fill in only what the manifest lacks; its labels path is in the assets root
            val pre = bundle.manifest.preprocessing
                ?: config.optJSONObject("preprocessing")?.let { Preprocessing.fromJson(it) }
            val appLabels = config.optJSONObject("labels")?.let { LabelsRef.fromJson(it) }
            val labelsRef = bundle.manifest.labels ?: appLabels
            val labels = bundle.labels() ?: appLabels?.let { ref ->
                Labels.load(ref) { f -> context.assets.open(f).use { it.readBytes() } }
            }
            val omitted = config.optJSONArray("omitted")?.let { a -> List(a.length()) { a.getString(it) }.toSet() } ?: emptySet()
            return AppBundle(bundle, pre, labels, labelsRef?.output, omitted, config.optInt("latency_runs", 50))
        }
    }
}
