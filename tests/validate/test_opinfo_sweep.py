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
    # measured 94.8% (2026-12-03, 155 cases, seed 0); the misses are ops outside the edge
    # profile (NonZero, ScatterElements, GridSample)
    # and a torch.onnx fallback that parity catches (training-mode batch_norm)
    assert fraction >= 0.80, table
    # edgeexport's own lowering is held to more: whatever it takes, it computes what PyTorch does
    direct = [r for r in results if r.lowering == "direct"]
    assert len(direct) >= 130, table
    wrong = [(r.op, r.sample, r.detail) for r in direct if r.status != "passed"]
    assert not wrong, wrong


def test_sweep_catches_a_wrong_lowering() -> None:
    # torch.onnx exports training-mode batch_norm with the running statistics: the sweep must
    # report the mismatch, not pass it
    results = sweep(None, samples_per_op=1, ops=["_native_batch_norm_legit"])
    assert results and results[0].status == "mismatch", results
    assert results[0].lowering.startswith("torch.onnx"), results


@pytest.mark.slow
def test_tflite_opinfo_sweep_floor() -> None:
    # the same cases emitted as .tflite for the rpi target and run on LiteRT; measured 92.3%
    # (2026-11-23): besides the exporter's misses, 3-D pooling has no TFLite op, training-mode
    # batch_norm has no constant statistics and LiteRT's tan is 2.6e-4 off near its poles
    results = sweep("rpi", samples_per_op=2)
    table, fraction = summarize(results)
    print(table)
    assert len(results) >= 150, table
    assert fraction >= 0.85, table


def test_lowerings_built_from_opinfo_misses_run_on_litert() -> None:
    # each of these once fell back to torch.onnx (EyeLike, ScatterND, ceil-mode divisors), was
    # outside the profile (TopK) or could not be emitted (a constant output): OpInfo's own
    # samples, on LiteRT, against eager
    ops = ["diagonal", "select_scatter", "slice_scatter", "nn.functional.avg_pool2d",
           "full_like", "scalar_tensor", "maximum", "topk", "sort"]
    results = sweep("rpi", samples_per_op=3, ops=ops)
    assert {r.op for r in results} == set(ops)
    wrong = [(r.op, r.sample, r.status, r.detail) for r in results if r.status != "passed"]
    assert not wrong, wrong


def test_sweep_draws_the_same_cases_whatever_ran_before() -> None:
    import torch

    torch.manual_seed(123)
    first = sweep(None, samples_per_op=2, ops=["nn.functional.avg_pool2d", "diagonal"])
    state = torch.random.get_rng_state()
    torch.manual_seed(7)
    second = sweep(None, samples_per_op=2, ops=["nn.functional.avg_pool2d", "diagonal"])
    assert first == second
    torch.manual_seed(123)
    sweep(None, samples_per_op=1, ops=["diagonal"])
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's generator is untouched
