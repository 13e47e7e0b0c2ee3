"""Run every runtime that can execute an artifact on the sample inputs and compare each with the
expected (PyTorch) outputs. A runtime that cannot run here is reported with its reason, never as
passed.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

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


def check_runtime(name: str, artifact: Path, samples: list[dict[str, np.ndarray]],
                  expected: list[dict[str, np.ndarray]], tolerance: Tolerance, *,
                  load_options: dict[str, Any] | None = None, timing_runs: int = 3) -> ParityResult:
    """Execute one runtime on every sample and compare with the expected outputs."""
    runtime = runtimes.get(name)
    reason = runtime.unavailable_reason()
    if reason is not None:
        return ParityResult(name, False, reason, tolerance=tolerance)
    try:
        session = runtime.load(artifact, **(load_options or {}))
        outputs = [session.run(feeds) for feeds in samples]
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
    latency = _median_latency(session, samples[0], timing_runs) if timing_runs else None
    return ParityResult(name, True, None, session.device, total, stats, not violations,
                        violations, tolerance, latency, dict(getattr(session, "details", {})),
                        judged)


def judged_by(tolerance: Tolerance, rank: int, stats: ErrorStats) -> list[str]:
    """The statistics that judge an output of this rank: the bounds the tolerance sets, with
    top-1 agreement only for classifier-shaped outputs (Tolerance.top1_max_rank)."""
    out = [k for k, bound in (("max_rel_err", tolerance.max_rel_err),
                              ("cosine", tolerance.min_cosine)) if bound is not None]
    if tolerance.judges_top1(rank) and stats.top1_agreement is not None:
        out.append("top1_agreement")
    return out


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
