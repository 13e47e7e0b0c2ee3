// Class labels (labels.txt: one per line, line i is class i) and the top-k of a score vector.
package io.edgeexport.bundle

data class Prediction(val index: Int, val score: Double, val label: String)

object Labels {
    /** One label per line; a trailing empty line is not a class. */
    fun parse(text: String): List<String> = text.split("\n").map { it.trimEnd('\r') }.dropLastWhile { it.isEmpty() }

    /** The file [ref] names, read through [read]; its line count must be [LabelsRef.count]. */
    fun load(ref: LabelsRef, read: (String) -> ByteArray): List<String> {
        val labels = parse(String(read(ref.path), Charsets.UTF_8))
        if (labels.size != ref.count) {
            throw BundleException("${ref.path}: ${labels.size} labels, the manifest says ${ref.count}; copy the bundle again")
        }
        return labels
    }

    /**
     * The k best classes of [scores] (e.g. one row of logits), best first; ties keep the lower
     * index first, as a stable sort of numpy's argsort(-x) does. Unlabelled classes are "class N".
     */
    fun topK(scores: DoubleArray, k: Int, labels: List<String>?): List<Prediction> =
        scores.indices.sortedWith(compareByDescending<Int> { scores[it] }.thenBy { it })
            .take(k)
            .map { Prediction(it, scores[it], labels?.getOrNull(it) ?: "class $it") }
}
