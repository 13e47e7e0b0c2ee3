"""The accuracy-budget search on its own: which layers it keeps float and how many evaluations it
spends, against a model of quantization error where each layer adds its own noise (the real
models are in test_schemes.py and test_mobilenet_photos.py)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeexport.errors import UsageError
from edgeexport.quantize.budget import Budget, parse_budget, search


class NoisyLayers:
    """cosine = 1 - sum of the noise of the layers left int8; counts evaluations."""

    def __init__(self, noise: dict[str, float]) -> None:
        self.noise, self.calls = noise, 0

    def evaluate(self, keep_float: set[str]) -> float:
        self.calls += 1
        return 1.0 - sum(v for k, v in self.noise.items() if k not in keep_float)

    def rank(self) -> list[tuple[str, str]]:
        # what _rank_layers measures: the gain of each layer kept float alone
        order = sorted(self.noise, key=lambda k: -self.noise[k])
        return [(k, f"gain {self.noise[k]:.4f}") for k in order]


def test_met_without_float_layers_costs_one_evaluation() -> None:
    model = NoisyLayers({"a": 1e-4, "b": 2e-4})
    chosen, reasons, base, final = search(Budget("cosine", 0.99), model.rank, model.evaluate)
    assert chosen == set() and reasons == [] and base == final and model.calls == 1


def test_transformer_sized_search_finds_the_prefix_by_bisection() -> None:
    # 120 layers, 60 of which must stay float (the static int8 MiniLM case)
    rng = np.random.default_rng(0)
    noise = {f"layer{i}": float(v) for i, v in enumerate(rng.uniform(1e-4, 1e-3, 120))}
    model = NoisyLayers(noise)
    total = sum(noise.values())
    ranked = sorted(noise.values(), reverse=True)
    bound = 1.0 - (total - sum(ranked[:60])) - 1e-12  # exactly the 60 noisiest must go float
    chosen, reasons, base, final = search(Budget("cosine", bound), model.rank, model.evaluate)
    assert final >= bound and base < bound
    assert len(chosen) == 60 and len(reasons) == 60
    assert chosen == {k for k, _ in model.rank()[:60]}
    # 1 + doubling (7) + bisection (6) + the prune (59); adding one at a time took 1 + 60 + 59
    assert model.calls <= 1 + 7 + 6 + 59, model.calls
    assert all("sensitivity rank" in r["reason"] and "cosine" in r["reason"] for r in reasons)


def test_prune_returns_layers_the_ranking_overrated() -> None:
    # "a" looked sensitive alone but its noise is cancelled by b's when both stay int8: the
    # ranking puts it first; the prune finds that b and c float suffice
    noise = {"a": 0.05, "b": 0.04, "c": 0.03, "d": 0.001}

    class Interacting(NoisyLayers):
        def evaluate(self, keep_float: set[str]) -> float:
            self.calls += 1
            err = sum(v for k, v in self.noise.items() if k not in keep_float)
            if "a" not in keep_float and "b" in keep_float:
                err -= 0.05  # a's error only shows together with b's
            return 1.0 - err

    model = Interacting(noise)
    chosen, _, _, final = search(Budget("cosine", 0.99), model.rank, model.evaluate)
    assert final >= 0.99
    assert chosen == {"b", "c"}


def test_budget_out_of_reach_keeps_everything_float_and_says_so() -> None:
    model = NoisyLayers({"a": 0.01, "b": 0.02})
    chosen, reasons, base, final = search(Budget("cosine", 1.5), model.rank, model.evaluate)
    assert chosen == {"a", "b"} and not Budget("cosine", 1.5).holds(final)
    assert len(reasons) == 2


@pytest.mark.parametrize("text,metric,bound", [("cosine=0.995", "cosine", 0.995),
                                               ("0.99", "cosine", 0.99),
                                               ("top1>=1", "top1", 1.0),
                                               ("max-rel=0.02", "rel", 0.02)])
def test_parse_budget(text: str, metric: str, bound: float) -> None:
    assert parse_budget(text) == Budget(metric, bound)


def test_parse_budget_rejects_unknown_metrics() -> None:
    with pytest.raises(UsageError, match="cosine=0.995"):
        parse_budget("psnr=30")
