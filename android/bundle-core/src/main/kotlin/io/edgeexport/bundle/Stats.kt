// The statistics and tolerances of edgeexport.metrics, with the same definitions, so that a
// number computed on the phone means what the same number in report.json means.
package io.edgeexport.bundle

import kotlin.math.abs
import kotlin.math.log10
import kotlin.math.sqrt

data class ErrorStats(
    val maxAbsErr: Double,
    /** max |expected - actual| / (max - min of expected; max |expected| if constant) */
    val maxRelErr: Double,
    val cosine: Double,
    val sqnrDb: Double,
    /** fraction of rows whose argmax over the last axis agrees; null when the last axis is 1 */
    val top1Agreement: Double?,
)

object Stats {
    /** edgeexport.metrics.error_stats: [actual] is compared in [expectedShape]. */
    fun errorStats(expected: DoubleArray, expectedShape: IntArray, actual: DoubleArray): ErrorStats {
        if (expected.size != actual.size) {
            throw BundleException("shape mismatch: expected ${expectedShape.contentToString()} " +
                "(${expected.size} values), got ${actual.size}")
        }
        val n = expected.size
        var maxAbs = 0.0
        var emax = Double.NEGATIVE_INFINITY
        var emin = Double.POSITIVE_INFINITY
        var eAbsMax = 0.0
        var ee = 0.0
        var aa = 0.0
        var ea = 0.0
        var noise = 0.0
        for (i in 0 until n) {
            val e = expected[i]
            val a = actual[i]
            val d = abs(e - a)
            if (d > maxAbs || d.isNaN()) maxAbs = if (maxAbs.isNaN()) maxAbs else d
            if (e > emax) emax = e
            if (e < emin) emin = e
            if (abs(e) > eAbsMax) eAbsMax = abs(e)
            ee += e * e
            aa += a * a
            ea += e * a
            noise += (e - a) * (e - a)
        }
        var span = if (n > 0) emax - emin else 0.0
        if (span == 0.0) span = if (n > 0) eAbsMax else 0.0
        val maxRel = when {
            span > 0 -> maxAbs / span
            maxAbs == 0.0 -> 0.0
            else -> Double.POSITIVE_INFINITY
        }
        val ne = sqrt(ee)
        val na = sqrt(aa)
        val cosine = when {
            ne == 0.0 && na == 0.0 -> 1.0
            ne == 0.0 || na == 0.0 -> 0.0
            else -> ea / (ne * na)
        }
        val signal = ee
        val sqnr = when {
            noise == 0.0 -> Double.POSITIVE_INFINITY
            signal > 0 -> 10 * log10(signal / noise)
            else -> Double.NEGATIVE_INFINITY
        }
        val last = if (expectedShape.isEmpty()) 0 else expectedShape.last()
        var top1: Double? = null
        if (expectedShape.isNotEmpty() && last > 1 && n > 0) {
            val rows = n / last
            var agree = 0
            for (r in 0 until rows) {
                if (argmax(expected, r * last, last) == argmax(actual, r * last, last)) agree++
            }
            top1 = agree.toDouble() / rows
        }
        return ErrorStats(maxAbs, maxRel, cosine, sqnr, top1)
    }

    /** First index of the largest value in [from, from+len) (numpy's argmax; NaN wins). */
    fun argmax(v: DoubleArray, from: Int, len: Int): Int {
        var best = 0
        for (i in 1 until len) {
            val x = v[from + i]
            val b = v[from + best]
            if (b.isNaN()) break
            if (x > b || x.isNaN()) best = i
        }
        return best
    }

    /**
     * edgeexport.metrics.merge: the worst case over outputs, or over the samples of one output
     * (samples = true), where top-1 agreement becomes the mean over the samples.
     */
    fun merge(stats: List<ErrorStats>, samples: Boolean = false): ErrorStats {
        require(stats.isNotEmpty()) { "merge of no statistics" }
        val tops = stats.mapNotNull { it.top1Agreement }
        val top1 = if (tops.isEmpty()) null else if (samples) tops.average() else tops.min()
        return ErrorStats(
            stats.maxOf { it.maxAbsErr }, stats.maxOf { it.maxRelErr },
            stats.minOf { it.cosine }, stats.minOf { it.sqnrDb }, top1,
        )
    }
}

/** edgeexport.metrics.Tolerance: every bound that is set must hold. */
data class Tolerance(
    val name: String,
    val maxRelErr: Double? = null,
    val minCosine: Double? = null,
    val minTop1Agreement: Double? = null,
) {
    /** The bounds [stats] breaks, worded as report.json words them (NaN breaks every bound). */
    fun violations(stats: ErrorStats): List<String> {
        val out = mutableListOf<String>()
        if (maxRelErr != null && !(stats.maxRelErr <= maxRelErr)) {
            out += "max_rel_err ${g(stats.maxRelErr, 3)} > ${g(maxRelErr, 6)}"
        }
        if (minCosine != null && !(stats.cosine >= minCosine)) {
            out += "cosine ${"%.6f".format(java.util.Locale.ROOT, stats.cosine)} < ${g(minCosine, 6)}"
        }
        val top1 = stats.top1Agreement
        if (minTop1Agreement != null && top1 != null && !(top1 >= minTop1Agreement)) {
            out += "top-1 agreement ${"%.3f".format(java.util.Locale.ROOT, top1)} < ${g(minTop1Agreement, 6)}"
        }
        return out
    }

    companion object {
        /** Python's '%.Ng' (shortest of fixed and exponent, trailing zeros dropped). */
        fun g(v: Double, digits: Int): String {
            if (v.isNaN()) return "nan"
            if (v.isInfinite()) return if (v > 0) "inf" else "-inf"
            if (v == 0.0) return "0"
            val exp = Math.floor(log10(abs(java.math.BigDecimal(v).round(java.math.MathContext(digits)).toDouble()))).toInt()
            val s = if (exp < -4 || exp >= digits) {
                val m = "%.${digits - 1}e".format(java.util.Locale.ROOT, v)
                val (mant, e) = m.split("e")
                val ev = e.toInt()
                trim(mant) + "e" + (if (ev < 0) "-" else "+") + abs(ev).toString().padStart(2, '0')
            } else {
                trim("%.${maxOf(digits - 1 - exp, 0)}f".format(java.util.Locale.ROOT, v))
            }
            return s
        }

        private fun trim(s: String): String =
            if (s.contains('.')) s.trimEnd('0').trimEnd('.') else s
    }
}
