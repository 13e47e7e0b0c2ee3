"""Conditioning-aware parity: a model whose own float32 output is unstable on the parity inputs
is judged against its noise floor (PyTorch float64 vs float32), with a warning naming --samples,
and not FAILED; an artifact with a wrong weight still fails under that bound.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgeexport.metrics import NOISE_K, TOLERANCES, ErrorStats, Tolerance, widen_to_noise
from edgeexport.validate import check_runtime
from edgeexport.validate.bundle import load_parity_tensors
from edgeexport.validate.parity import judged_by
from tests.conftest import REPO, run_cli

ILL = "tests.validate.conditioning_models:ill_conditioned"


def _floor(rel: float, cos: float) -> ErrorStats:
    return ErrorStats(0.0, rel, cos, 0.0, None)


def test_widen_to_noise() -> None:
    fp32 = TOLERANCES["fp32"]
    # a well-conditioned model: the fixed bound stays
    assert widen_to_noise(fp32, _floor(1e-7, 1 - 1e-14)) == Tolerance(
        "fp32", 1e-4, 0.99999, bound="fixed")
    # an unstable one: k x its max_rel_err, k^2 x its 1 - cosine
    wide = widen_to_noise(fp32, _floor(6e-4, 1 - 1e-6))
    assert wide.bound == "noise floor"
    assert wide.max_rel_err == pytest.approx(NOISE_K * 6e-4)
    assert wide.min_cosine == pytest.approx(1 - NOISE_K ** 2 * 1e-6)
    # fp16 has no max_rel_err bound to widen
    assert widen_to_noise(TOLERANCES["fp16"], _floor(1e-3, 1.0)).max_rel_err is None


def test_top1_judges_only_classifier_outputs() -> None:
    fp16, stats = TOLERANCES["fp16"], ErrorStats(0, 0, 1.0, 0, 0.9)
    assert judged_by(fp16, 2, stats) == ["cosine", "top1_agreement"]
    assert judged_by(fp16, 4, stats) == ["cosine"]  # a segmentation map
    # a tolerance from a bundle written before top1_max_rank: every output, as before
    old = Tolerance("fp16", min_cosine=0.999, min_top1_agreement=1.0)
    assert judged_by(old, 4, stats) == ["cosine", "top1_agreement"]
    assert judged_by(TOLERANCES["fp32"], 2, stats) == ["max_rel_err", "cosine"]


@pytest.fixture(scope="module")
def ill_bundle(tmp_path_factory) -> tuple:
    out = tmp_path_factory.mktemp("ill") / "bundle"
    proc = run_cli("convert", ILL, "--allow-cwd-import", "--input-shape", "x=1,3,16,16",
                   "--target", "onnx", "-o", str(out), cwd=REPO)
    return proc, out


def test_noisy_model_is_judged_against_its_noise_floor(ill_bundle) -> None:
    proc, out = ill_bundle
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    floor = report["noise_floor"]
    # PyTorch's own float32 output is off float64 by more than the fixed fp32 bound (1e-4)
    assert floor["per_output"]["output"]["max_rel_err"] > 1e-4
    assert floor["bound"] == "noise floor" and floor["max_rel_err"] > 1e-4
    for row in report["parity"]:
        assert row["executed"] and row["passed"] and row["bound"] == "noise floor"
        assert row["max_rel_err"] > 1e-4  # would have FAILED under the fixed bound
        assert row["per_output"]["output"]["judged_by"] == ["max_rel_err", "cosine"]
    assert any("unstable" in w["text"] and "--samples" in w["text"] for w in report["warnings"])
    assert any("WARNING: the model's own float32 output" in ln for ln in proc.stdout.splitlines())
    assert any(ln.split()[0] == "onnxruntime" and "noise floor" in ln
               for ln in proc.stdout.splitlines() if ln.startswith("  "))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tolerances"]["bound"] == "noise floor"
    assert manifest["tolerances"]["max_rel_err"] == floor["max_rel_err"]


def test_wrong_weight_still_fails_under_the_noise_floor(ill_bundle, tmp_path: Path) -> None:
    """A real conversion error (the last convolution's weight 10% off) is far above the floor
    (2% off gives max_rel_err 2.8e-3: under the widened bound 5.7e-3, the price of the floor)."""
    _, out = ill_bundle
    manifest = json.loads((out / "manifest.json").read_text())
    samples, expected = load_parity_tensors(out, manifest)
    model = onnx.load(out / "model.onnx")
    last_conv = [n for n in model.graph.node if n.op_type == "Conv"][-1]
    weight = next(t for t in model.graph.initializer if t.name == last_conv.input[1])
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * np.float32(1.1),
                                            weight.name))
    onnx.save(model, tmp_path / "broken.onnx")
    tolerance = Tolerance(**manifest["tolerances"])
    for runtime in ("onnxruntime", "reference"):
        good = check_runtime(runtime, out / "model.onnx", samples, expected, tolerance)
        bad = check_runtime(runtime, tmp_path / "broken.onnx", samples, expected, tolerance)
        assert good.passed, good.violations
        assert not bad.passed and bad.violations[0].startswith("max_rel_err")
        assert bad.stats.max_rel_err > 2 * tolerance.max_rel_err
