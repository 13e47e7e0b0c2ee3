// The on-device parity check: every parity sample of the bundle through a ModelRunner, compared
// with the PyTorch outputs as edgeexport.validate.parity does (per output over samples, then
// the worst output), judged by the manifest's tolerance; and latency (median, p90).
package io.edgeexport.bundle

data class ParityOutcome(
    val runner: String,
    val perOutput: Map<String, ErrorStats>,
    /** worst case over outputs; null when no output was compared */
    val total: ErrorStats?,
    val violations: List<String>,
    val tolerance: Tolerance,
) {
    val passed: Boolean get() = total != null && violations.isEmpty()

    /** One line per output and a verdict, for logs and the app's table. */
    fun table(): String = buildString {
        appendLine("%-24s %12s %12s %10s %6s".format("output", "max_abs", "max_rel", "cosine", "top1"))
        for ((name, s) in perOutput) appendLine(row(name, s))
        total?.let { appendLine(row("(worst)", it)) }
        append(if (passed) "PASS (${tolerance.name})" else "FAIL (${tolerance.name}): ${violations.joinToString("; ")}")
    }

    private fun row(name: String, s: ErrorStats) = "%-24s %12.3e %12.3e %10.6f %6s".format(
        java.util.Locale.ROOT, name, s.maxAbsErr, s.maxRelErr, s.cosine, s.top1Agreement?.let { "%.3f".format(java.util.Locale.ROOT, it) } ?: "-",
    )
}

object ParityCheck {
    fun run(bundle: Bundle, runner: ModelRunner): ParityOutcome {
        val n = bundle.manifest.sampleCount
        if (n == 0) throw BundleException("the manifest lists no parity samples; re-run edgeexport convert")
        val perSample = LinkedHashMap<String, MutableList<ErrorStats>>()
        val missing = sortedSetOf<String>()
        for (i in 0 until n) {
            val got = runner.run(bundle.inputs(i))
            for ((name, want) in bundle.expected(i)) {
                // expected outputs are real values; an int8 output is dequantized first
                val actual = got[name]?.let { t -> bundle.manifest.output(name)?.real(t) ?: t }
                if (actual == null) {
                    missing += name
                    continue
                }
                perSample.getOrPut(name) { mutableListOf() } +=
                    Stats.errorStats(want.toDoubles(), want.shape, actual.toDoubles())
            }
        }
        val perOutput = perSample.mapValues { Stats.merge(it.value, samples = true) }
        val total = if (perOutput.isEmpty()) null else Stats.merge(perOutput.values.toList())
        val tol = bundle.manifest.tolerance
        val violations = missing.map { "output '$it' missing" } + (total?.let { tol.violations(it) } ?: emptyList())
        return ParityOutcome(runner.name, perOutput, total, violations, tol)
    }
}

data class Latency(val runs: Int, val medianMs: Double, val p90Ms: Double) {
    companion object {
        /** Median and 90th percentile (nearest rank) of [ms]. */
        fun of(ms: List<Double>): Latency {
            require(ms.isNotEmpty()) { "no timings" }
            val s = ms.sorted()
            val median = if (s.size % 2 == 1) s[s.size / 2] else (s[s.size / 2 - 1] + s[s.size / 2]) / 2
            val p90 = s[maxOf(0, Math.ceil(0.9 * s.size).toInt() - 1)]
            return Latency(s.size, median, p90)
        }

        /** [warmup] untimed runs, then [runs] timed runs of sample 0 through [runner]. */
        fun measure(bundle: Bundle, runner: ModelRunner, runs: Int, warmup: Int = 2): Latency {
            val inputs = bundle.inputs(0)
            repeat(warmup) { runner.run(inputs) }
            val times = List(runs) {
                val t = System.nanoTime()
                runner.run(inputs)
                (System.nanoTime() - t) / 1e6
            }
            return of(times)
        }
    }
}
