"""OpInfo sweep of the exporter: core ATen ops with float32 samples, exported and run on the
reference runtime and onnxruntime, compared with PyTorch eager."""

from __future__ import annotations

import pytest

from edgeexport.validate.opinfo import summarize, sweep


@pytest.mark.slow
def test_exporter_opinfo_sweep_floor() -> None:
    results = sweep(None, samples_per_op=1)
    table, fraction = summarize(results)
    print(table)
    assert len(results) >= 90, table
    # measured 85% (2026-11-22); the misses are ops outside the edge profile (TopK, NonZero,
    # scatter, GridSample) and torch.onnx lowering bugs that parity catches (avg_pool2d's
    # divisor_override, training-mode batch_norm)
    assert fraction >= 0.80, table


def test_sweep_catches_a_wrong_lowering() -> None:
    # torch.onnx drops avg_pool2d's divisor_override: the sweep must report it, not pass it
    results = sweep(None, samples_per_op=1, ops=["nn.functional.avg_pool2d"])
    assert results and results[0].status == "mismatch", results
