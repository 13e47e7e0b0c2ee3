"""OpInfo sweep of the exporter: core ATen ops with float32 samples, exported and run on the
reference runtime and onnxruntime, compared with PyTorch eager."""

from __future__ import annotations

import pytest

from edgeexport.validate.opinfo import summarize, sweep


@pytest.mark.slow
def test_exporter_opinfo_sweep_floor() -> None:
    results = sweep(None, samples_per_op=2)
    table, fraction = summarize(results)
    print(table)
    assert len(results) >= 150, table
    # measured 84% (2026-11-22, 159 cases); the misses are ops outside the edge profile (TopK,
    # NonZero, scatter, GridSample, EyeLike), random ops, and torch.onnx fallbacks that parity
    # catches (training-mode batch_norm)
    assert fraction >= 0.80, table
    # edgeexport's own lowering is held to more: whatever it takes, it computes what PyTorch does
    direct = [r for r in results if r.lowering == "direct"]
    assert len(direct) >= 120, table
    wrong = [(r.op, r.sample, r.detail) for r in direct if r.status != "passed"]
    assert not wrong, wrong


def test_sweep_catches_a_wrong_lowering() -> None:
    # torch.onnx exports training-mode batch_norm with the running statistics: the sweep must
    # report the mismatch, not pass it
    results = sweep(None, samples_per_op=1, ops=["_native_batch_norm_legit"])
    assert results and results[0].status == "mismatch", results
    assert results[0].lowering.startswith("torch.onnx"), results
