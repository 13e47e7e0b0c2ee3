"""The accuracy budget: `--max-error cosine=0.995` (or top1=1.0, rel=0.02) measured against the
float model on the eval samples; the most sensitive layers stay float until the budget holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from edgeexport.errors import UsageError
from edgeexport.metrics import error_stats

_METRICS = {"cosine": "cosine", "top1": "top1_agreement", "rel": "max_rel_err",
            "max-rel": "max_rel_err"}


@dataclass(frozen=True)
class Budget:
    metric: str  # cosine | top1 | rel
    bound: float

    @property
    def higher_is_better(self) -> bool:
        return self.metric != "rel"

    def holds(self, value: float) -> bool:
        return value >= self.bound if self.higher_is_better else value <= self.bound

    def describe(self) -> str:
        return f"{self.metric} {'>=' if self.higher_is_better else '<='} {self.bound:g}"


def parse_budget(text: str | float | None) -> Budget | None:
    """'cosine=0.995', 'top1=1', 'rel=0.02'; a bare number means a cosine bound."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return Budget("cosine", float(text))
    key, sep, val = str(text).replace(">=", "=").replace("<=", "=").partition("=")
    if not sep:
        key, val = "cosine", key
    key = key.strip().lower()
    try:
        bound = float(val)
    except ValueError:
        bound = None
    if key not in _METRICS or bound is None:
        raise UsageError(f"--max-error '{text}': use cosine=0.995, top1=1.0 or rel=0.02 "
                         "(relative to the float model on the calibration/eval samples)")
    return Budget("rel" if key == "max-rel" else key, bound)


def score(budget: Budget, expected: list[dict[str, np.ndarray]],
          actual: list[dict[str, np.ndarray]]) -> float:
    """Worst case of the metric over every sample and output."""
    vals = []
    for e, a in zip(expected, actual):
        for name, want in e.items():
            s = error_stats(want, a[name])
            v = getattr(s, _METRICS[budget.metric])
            if v is None:  # top-1 of a single-logit output: fall back to cosine
                v = s.cosine
            vals.append(v)
    if budget.metric == "top1":  # agreement over the whole set, not the worst sample
        return float(np.mean(vals))
    return min(vals) if budget.higher_is_better else max(vals)


def search(budget: Budget, rank: Callable[[], list[tuple[str, str]]],
           evaluate: Callable[[set[str]], float]) -> tuple[set[str], list[dict], float, float]:
    """Layers go float in `rank()` order (most sensitive first: (layer, why)) until the budget
    holds, then each one that is not needed any more goes back to int8; every step is measured
    on the eval samples. Returns (float layers, their reasons, all-int8 score, final score)."""
    base = evaluate(set())
    if budget.holds(base):
        return set(), [], base, base
    chosen: set[str] = set()
    reasons: list[dict] = []
    current = base
    for layer, why in rank():
        chosen.add(layer)
        current = evaluate(chosen)
        reasons.append({"node": layer, "reason": (
            f"sensitivity rank {len(chosen)}: {why}; with it float the model reaches "
            f"{budget.metric} {current:.5f} (budget {budget.describe()})")})
        if budget.holds(current):
            break
    else:
        return set(chosen), reasons, base, current
    # greedy order over-shoots: try each chosen layer back in int8, least sensitive first
    for entry in reversed(list(reasons[:-1])):
        trial = chosen - {entry["node"]}
        value = evaluate(trial)
        if budget.holds(value):
            chosen, current = trial, value
            reasons.remove(entry)
    for entry in reasons:
        entry["reason"] += f"; final model {budget.metric} {current:.5f}"
    return set(chosen), reasons, base, current
