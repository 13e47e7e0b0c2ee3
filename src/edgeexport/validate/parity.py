"""Run every runtime that can execute an artifact on the sample inputs and compare each with the
expected (PyTorch) outputs. A runtime that cannot run here is reported with its reason, never as
passed.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgeexport import runtimes
from edgeexport.metrics import ErrorStats, Tolerance, error_stats, merge


@dataclass
class ParityResult:
    runtime: str
    executed: bool
    reason: str | None = None
    device: str | None = None
    stats: ErrorStats | None = None
    per_output: dict[str, ErrorStats] = field(default_factory=dict)
    passed: bool = False
    violations: list[str] = field(default_factory=list)
    tolerance: Tolerance | None = None
    latency_ms: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    #: per output, the statistics its tolerance judged it by (see judged_by)
    judged_by: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict:
        s = self.stats.to_json() if self.stats else {}
        return {
            "runtime": self.runtime, "executed": self.executed, "reason": self.reason,
            "device": self.device,
            "max_abs_err": s.get("max_abs_err"), "max_rel_err": s.get("max_rel_err"),
            "cosine": s.get("cosine"), "sqnr_db": s.get("sqnr_db"),
            "top1_agreement": s.get("top1_agreement"),
            "passed": self.passed, "violations": self.violations,
            "verdict": ("passed" if self.passed else "failed") if self.executed
            else "not executed",
            "tolerance": self.tolerance.to_json() if self.tolerance else None,
            # "fixed" | "noise floor": which bound the runtime was judged against
            "bound": (self.tolerance.bound or "fixed") if self.tolerance else None,
            "latency_ms": self.latency_ms,
            "per_output": {k: {**v.to_json(), "judged_by": self.judged_by.get(k, [])}
                           for k, v in self.per_output.items()},
            "details": self.details,
        }


@dataclass
class EmulationCap:
    """Bounds on parity runs under emulation (rpi's qemu aarch64 runs a Whisper-tiny-sized
    encoder for minutes a sample): the first sample always runs, then only as many more as fit
    in `max_seconds` (estimated from the first) and at most `samples` in all."""
    max_seconds: float | None = None
    samples: int | None = None

    def limit(self, first_s: float, total: int) -> int:
        """How many of `total` samples to run when the first took `first_s` seconds."""
        n = total if self.samples is None else max(1, min(total, self.samples))
        if self.max_seconds is not None and first_s > 0:
            n = max(1, min(n, int(self.max_seconds // first_s)))
        return n


def add_emulation_arguments(p: Any) -> None:
    """--max-emulated-seconds / --emulated-samples for the commands that check parity."""
    p.add_argument("--max-emulated-seconds", type=float, metavar="S",
                   help="bound parity runs on emulated runtimes (qemu) to about S seconds: "
                        "the first sample runs, then as many as the estimate lets fit")
    p.add_argument("--emulated-samples", type=int, metavar="N",
                   help="check at most N parity samples on emulated runtimes")


def emulation_cap(args: Any) -> EmulationCap:
    from edgeexport.errors import UsageError

    seconds, count = getattr(args, "max_emulated_seconds", None), \
        getattr(args, "emulated_samples", None)
    if (seconds is not None and seconds <= 0) or (count is not None and count < 1):
        raise UsageError("--max-emulated-seconds and --emulated-samples must be positive")
    return EmulationCap(seconds, count)


def check_runtime(name: str, artifact: Path, samples: list[dict[str, np.ndarray]],
                  expected: list[dict[str, np.ndarray]], tolerance: Tolerance, *,
                  load_options: dict[str, Any] | None = None, timing_runs: int = 3,
                  emulation: EmulationCap | None = None,
                  progress: Callable[[str], None] | None = None) -> ParityResult:
    """Execute one runtime on every sample and compare with the expected outputs.
    `progress` sees each step's text (loading, sample i/N, the emulation estimate)."""
    step = progress or (lambda detail: None)
    runtime = runtimes.get(name)
    reason = runtime.unavailable_reason()
    if reason is not None:
        return ParityResult(name, False, reason, tolerance=tolerance)
    try:
        step("loading")
        session = runtime.load(artifact, **(load_options or {}))
        outputs, cap = _run_samples(session, samples, emulation or EmulationCap(), step,
                                    timing_runs)
        if cap is not None:
            samples, expected = samples[:len(outputs)], expected[:len(outputs)]
            timing_runs = min(timing_runs, cap["timing_runs"])
    except Exception as exc:  # a runtime that fails to run the artifact is a parity failure
        msg = str(exc).strip().splitlines()
        return ParityResult(name, True, f"failed to run: {msg[0][:300] if msg else exc!r}",
                            passed=False, violations=["runtime error"], tolerance=tolerance)
    if getattr(session, "fallback", None):  # ran elsewhere than its name says (ncnn-vulkan on CPU)
        return ParityResult(name, False, session.fallback, session.device, tolerance=tolerance,
                            details=dict(session.details))
    per_output: dict[str, list[ErrorStats]] = {}
    missing = []
    for got, want in zip(outputs, expected):
        for out_name, ref in want.items():
            if out_name not in got:
                missing.append(out_name)
                continue
            per_output.setdefault(out_name, []).append(error_stats(ref, got[out_name]))
    stats = {k: merge(v, samples=True) for k, v in per_output.items()}
    ranks = {k: np.ndim(v) for k, v in expected[0].items()}
    judged = {k: judged_by(tolerance, ranks.get(k, 0), s) for k, s in stats.items()}
    total = merge(list(stats.values())) if stats else None
    violations = [f"output '{m}' missing" for m in sorted(set(missing))]
    if total is not None:
        # top-1 agreement only from the outputs it judges (classifier logits)
        tops = [s for k, s in stats.items() if "top1_agreement" in judged[k]]
        top1 = merge(tops).top1_agreement if tops else None
        violations += tolerance.violations(replace(total, top1_agreement=top1))
    if timing_runs:
        step(f"timing ({timing_runs} runs)")
    latency = _median_latency(session, samples[0], timing_runs) if timing_runs else None
    details = dict(getattr(session, "details", {}))
    if cap is not None:
        details["emulation_cap"] = cap
        if cap["samples_checked"] < cap["samples_total"]:
            details["warnings"] = [f"{name}: parity checked on {cap['samples_checked']} of "
                                   f"{cap['samples_total']} samples under emulation (estimated "
                                   f"{cap['estimate_s']:.0f} s for all; see "
                                   "--max-emulated-seconds / --emulated-samples)"]
    return ParityResult(name, True, None, session.device, total, stats, not violations,
                        violations, tolerance, latency, details, judged)


def judged_by(tolerance: Tolerance, rank: int, stats: ErrorStats) -> list[str]:
    """The statistics that judge an output of this rank: the bounds the tolerance sets, with
    top-1 agreement only for classifier-shaped outputs (Tolerance.top1_max_rank)."""
    out = [k for k, bound in (("max_rel_err", tolerance.max_rel_err),
                              ("cosine", tolerance.min_cosine)) if bound is not None]
    if tolerance.judges_top1(rank) and stats.top1_agreement is not None:
        out.append("top1_agreement")
    return out


def _run_samples(session: Any, samples: list[dict[str, np.ndarray]], cap: EmulationCap,
                 step: Callable[[str], None], timing_runs: int
                 ) -> tuple[list[dict[str, np.ndarray]], dict[str, Any] | None]:
    """Every sample's outputs; under emulation the first sample's time gives an estimate of
    the rest (shown, and bounded by `cap`), returned as the record for report.json."""
    emulated = bool(getattr(session, "details", {}).get("emulated"))
    total, outputs, record, note = len(samples), [], None, ""
    t0 = time.perf_counter()
    for i, feeds in enumerate(samples):
        step(f"sample {i + 1}/{total}{note}")
        outputs.append(session.run(feeds))
        if i == 0 and emulated:
            first = time.perf_counter() - t0
            n = cap.limit(first, total)
            timing = timing_runs if cap.max_seconds is None else \
                max(0, min(timing_runs, int(cap.max_seconds // max(first, 1e-9)) - n))
            record = {"first_sample_s": round(first, 3), "samples_total": total,
                      "samples_checked": n, "estimate_s": round(first * (total + timing_runs), 1),
                      "max_seconds": cap.max_seconds, "max_samples": cap.samples,
                      "timing_runs": timing}
            # the estimate stays on the line while the remaining samples run
            note = (f" (emulated {first:.1f} s each, all {total}: ~{record['estimate_s']:.0f} s"
                    + (f", capped at {n})" if n < total else ")"))
            step(f"sample 1/{total}{note}")
            total = n
        if i + 1 >= total:
            break
    return outputs, record


#: a row within tolerance whose inputs cannot verify the artifact (see decide_verdict)
UNVERIFIED_ROW = "within tolerance, but only on inputs that cannot verify this artifact"


def decide_verdict(rows: list[dict[str, Any]], unverified: str | None = None
                   ) -> tuple[str, str | None]:
    """The overall verdict of parity rows (ParityResult.to_json()) and why, when not passed:
    "failed" when an executed runtime is outside its tolerance; "unverified" when nothing
    executed, or every executed row passed on inputs that cannot show the artifact works
    (`unverified` says why; those rows are marked unverified, no longer passed); else "passed".
    """
    executed = [p for p in rows if p["executed"]]
    failed = [p for p in executed if not p["passed"]]
    if failed:
        return "failed", "; ".join(f"{p['runtime']}: " + ("; ".join(p["violations"])
                                                         or p["reason"] or "failed")
                                   for p in failed)
    if not executed:
        return "unverified", "no runtime could execute the artifact here"
    if unverified:
        for p in executed:
            p.update(passed=False, verdict="unverified", reason=UNVERIFIED_ROW)
        return "unverified", unverified
    return "passed", None


def _median_latency(session: Any, feeds: dict[str, np.ndarray], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        session.run(feeds)
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 3)
