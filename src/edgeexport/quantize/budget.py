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
    """The smallest prefix of `rank()` (most sensitive first: (layer, why)) that, kept float,
    meets the budget: prefixes of 1, 2, 4, ... layers until one holds, then bisection between
    the last that failed and the first that held (2 log2(k) evaluations where adding layers one
    at a time took k). Then each chosen layer, least sensitive first, goes back to int8 if the
    budget still holds without it: layers ranked one at a time miss interactions (static int8
    all-MiniLM-L6-v2, cosine 0.99: the prefix is ~112 layers, the prune leaves 53; pruning in
    8 blocks instead left 83). Every step is measured on the eval samples. Returns (float
    layers, their reasons, all-int8 score, final score)."""
    base = evaluate(set())
    if budget.holds(base):
        return set(), [], base, base
    ranked = rank()
    if not ranked:
        return set(), [], base, base
    scores: dict[int, float] = {}

    def prefix_holds(n: int) -> bool:
        scores[n] = evaluate({layer for layer, _ in ranked[:n]})
        return budget.holds(scores[n])

    failed, n = 0, 1
    while not prefix_holds(n):
        failed = n
        if n == len(ranked):  # every layer float and still over budget: report it as is
            return ({layer for layer, _ in ranked}, _reasons(budget, ranked, scores[n]), base,
                    scores[n])
        n = min(2 * n, len(ranked))
    held = n
    while held - failed > 1:
        mid = (failed + held) // 2
        if prefix_holds(mid):
            held = mid
        else:
            failed = mid
    chosen = ranked[:held]
    current = scores[held]
    for entry in reversed(ranked[:held - 1]):  # (the last one met the budget: it stays)
        trial = [c for c in chosen if c != entry]
        value = evaluate({layer for layer, _ in trial})
        if budget.holds(value):
            chosen, current = trial, value
    return {layer for layer, _ in chosen}, _reasons(budget, chosen, current, ranked), base, \
        current


def _reasons(budget: Budget, chosen: list[tuple[str, str]], final: float,
             ranked: list[tuple[str, str]] | None = None) -> list[dict]:
    order = {layer: i + 1 for i, (layer, _) in enumerate(ranked or chosen)}
    return [{"node": layer, "reason": f"sensitivity rank {order[layer]}: {why}; with the "
                                      f"{len(chosen)} layer(s) float the model reaches "
                                      f"{budget.metric} {final:.5f} (budget "
                                      f"{budget.describe()})"}
            for layer, why in chosen]
