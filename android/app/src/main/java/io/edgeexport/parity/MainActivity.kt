// One screen: the bundle's parity re-run on this phone per LiteRT delegate (table + latency),
// and a picked photo classified through the manifest's preprocessing. Logic is in bundle-core.
package io.edgeexport.parity

import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.graphics.Typeface
import android.net.Uri
import android.os.Bundle as AndroidBundle
import android.widget.Button
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import androidx.activity.ComponentActivity
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts
import io.edgeexport.bundle.Labels
import io.edgeexport.bundle.Latency
import io.edgeexport.bundle.ParityCheck
import java.util.concurrent.Executors

class MainActivity : ComponentActivity() {
    private val worker = Executors.newSingleThreadExecutor()
    private lateinit var out: TextView
    private var app: AppBundle? = null
    private var lastAccelerator = Accelerator.CPU

    private val pickPhoto = registerForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri ->
        if (uri != null) worker.execute { classify(uri) }
    }

    override fun onCreate(savedInstanceState: AndroidBundle?) {
        super.onCreate(savedInstanceState)
        val column = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL; setPadding(24, 24, 24, 24) }
        out = TextView(this).apply { typeface = Typeface.MONOSPACE; textSize = 11f; setTextIsSelectable(true) }
        for (acc in Accelerator.entries) {
            column.addView(Button(this).apply {
                text = "Parity + latency: ${acc.label}"
                setOnClickListener { worker.execute { parity(acc) } }
            })
        }
        column.addView(Button(this).apply {
            text = "Classify a photo"
            setOnClickListener {
                pickPhoto.launch(PickVisualMediaRequest(ActivityResultContracts.PickVisualMedia.ImageOnly))
            }
        })
        column.addView(out)
        setContentView(ScrollView(this).apply { addView(column) })
        worker.execute { load() }
    }

    override fun onDestroy() {
        worker.shutdown()
        super.onDestroy()
    }

    private fun show(text: String) = runOnUiThread { out.append(text + "\n\n") }

    private fun load() = guarded {
        val a = AppBundle.load(this)
        app = a
        val m = a.bundle.manifest
        val bad = a.verify()
        show("${m.sourceModel ?: "model"}: ${m.artifact} for ${m.target}, ${m.precision}, " +
            "${m.inputs.size} input(s), ${m.sampleCount} parity sample(s), tolerance ${m.tolerance.name}\n" +
            if (bad.isEmpty()) "sha256 of every file matches the manifest" else "FILES CHANGED since convert: $bad")
    }

    private fun parity(acc: Accelerator) = guarded {
        val a = app ?: return@guarded
        acc.unavailableReason()?.let { show("${acc.label}: not run: $it"); return@guarded }
        LiteRtRunner(a.bundle.read(a.bundle.manifest.artifact), acc).use { runner ->
            val outcome = ParityCheck.run(a.bundle, runner)
            val lat = Latency.measure(a.bundle, runner, a.latencyRuns)
            lastAccelerator = acc
            show("${acc.label}\n${outcome.table()}\nlatency over ${lat.runs} runs: " +
                "median %.2f ms, p90 %.2f ms".format(lat.medianMs, lat.p90Ms))
        }
    }

    private fun classify(uri: Uri) = guarded {
        val a = app ?: return@guarded
        val pre = a.preprocessing
            ?: return@guarded show("no preprocessing in the manifest: regenerate with `edgeexport app android BUNDLE --preprocess imagenet`")
        val bitmap = contentResolver.openInputStream(uri).use {
            BitmapFactory.decodeStream(it, null, BitmapFactory.Options().apply { inPreferredConfig = Bitmap.Config.ARGB_8888 })
        } ?: return@guarded show("cannot decode $uri")
        val argb = IntArray(bitmap.width * bitmap.height)
        bitmap.getPixels(argb, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
        val m = a.bundle.manifest
        val input = m.inputs.first { it.name == pre.input }
        val tensor = pre.toTensor(argb, bitmap.width, bitmap.height, input)
        LiteRtRunner(a.bundle.read(m.artifact), lastAccelerator).use { runner ->
            val outs = runner.run(mapOf(input.name to tensor))
            // the labelled output (else the first), int8 codes dequantized to real scores
            val name = a.labelsOutput?.takeIf { it in outs } ?: outs.keys.first()
            val scores = (m.output(name)?.real(outs.getValue(name)) ?: outs.getValue(name)).toDoubles()
            val top = Labels.topK(scores, 5, a.labels)
            show("photo ${bitmap.width}x${bitmap.height} on ${runner.name}:\n" +
                top.joinToString("\n") { "%6.3f  %s".format(it.score, it.label) })
        }
    }

    private fun guarded(block: () -> Unit) = try {
        block()
    } catch (e: Exception) {
        show("error: ${e.message ?: e.javaClass.simpleName}")
    }
}
