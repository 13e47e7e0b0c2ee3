"""The fp16 noise floor: an fp16 artifact is judged against max(fixed fp16 bound, k x PyTorch's
own float16-vs-float64 error on the parity inputs), never below FP16_LOWEST_COSINE, with a warning
naming --samples and --precision fp32 when PyTorch's fp16 output is itself unstable; an artifact
with one weight off still fails on ncnn-vulkan, ncnn-cpu and the MIL interpreter.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgeexport.metrics import (FP16_LOWEST_COSINE, FP16_MIN_REL_ERR, NOISE_K, TOLERANCES,
                                ErrorStats, Tolerance)
from edgeexport.validate import check_runtime
from edgeexport.validate.bundle import load_parity_tensors
from edgeexport.validate.noise import NoiseFloor, judge_fp16, judge_with, measure, untied_fraction
from tests.conftest import REPO, require_runtime, require_vulkan, run_cli
from tests.validate import conditioning_models as cm

FP16 = TOLERANCES["fp16"]
MODELS = "tests.validate.conditioning_models"


def _floor(cos: float, rel: float = 1e-3, untied: dict | None = None) -> NoiseFloor:
    return NoiseFloor({"y": ErrorStats(0.0, rel, cos, 0.0, None)}, precision="fp16",
                      top1_untied=untied or {})


def test_fp16_floor_bounds() -> None:
    # well-conditioned in fp16: the fixed bound, no warning
    tol, warning = judge_fp16(FP16, _floor(1 - 1e-8))
    assert (tol.min_cosine, tol.min_top1_agreement, tol.bound, warning) == (0.999, 1.0, "fixed",
                                                                            None)
    # not cosine alone: an output scaled by a constant has cosine 1
    assert tol.max_rel_err == FP16_MIN_REL_ERR
    assert tol.violations(ErrorStats(0.7, 0.48, 1 - 1e-12, 0.0, None)) == [
        "max_rel_err 0.48 > 0.05"]
    assert judge_fp16(FP16, _floor(1 - 1e-8, rel=0.02))[0].max_rel_err == NOISE_K * 0.02
    # PyTorch's fp16 within the fixed bound, k^2 x its 1 - cosine beyond it: widened, silently
    tol, warning = judge_fp16(FP16, _floor(1 - 2e-5))
    assert tol.min_cosine == pytest.approx(1 - NOISE_K ** 2 * 2e-5) and warning is None
    assert tol.bound == "fp16 noise floor"
    # unstable in fp16: never below the lowest bound, however bad PyTorch's own fp16 is
    for cos in (0.9975, 0.49):
        tol, warning = judge_fp16(FP16, _floor(cos))
        assert tol.min_cosine == FP16_LOWEST_COSINE and tol.bound == "fp16 noise floor"
        assert "float16 output 'y' is unstable" in warning
        assert "--samples" in warning and "--precision fp32" in warning
    # an fp16 overflow in PyTorch itself (inf/NaN): no floor at all
    tol, warning = judge_fp16(FP16, _floor(float("nan"), float("inf")))
    assert tol == FP16 and "not finite" in warning
    # the fp32 path (judge_with) dispatches an fp16 floor here
    assert judge_with(FP16, _floor(0.9975), TOLERANCES["fp32"])[0].min_cosine == 0.99


def test_top1_excuses_only_rows_fp16_noise_ties() -> None:
    # classifier logits, a quarter of whose rows are near-tied in fp16
    tol, warning = judge_fp16(FP16, _floor(1 - 1e-8, untied={"y": (2, 0.75)}))
    assert tol.min_top1_agreement == 0.75 and tol.min_cosine == 0.999
    assert tol.bound == "fp16 noise floor" and warning is None  # ties alone: no warning
    block = _floor(1 - 1e-8, untied={"y": (2, 0.75)}).to_json(tol)
    assert block["per_output"]["y"]["top1_untied"] == 0.75 and block["min_top1_agreement"] == 0.75
    # with an unstable output, the warning says it too
    _, warning = judge_fp16(FP16, _floor(0.99, untied={"y": (2, 0.0)}))
    assert "100% of the rows of 'y'" in warning and "not judged" in warning
    # a segmentation map's ties do not matter: top-1 does not judge rank-4 outputs
    tol, warning = judge_fp16(FP16, _floor(1 - 1e-8, untied={"y": (4, 0.5)}))
    assert tol.min_top1_agreement == 1.0 and warning is None


def test_untied_fraction() -> None:
    rows = np.array([[0.0, 1.0, 5.0], [0.0, 2.0, 2.001], [3.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    # noise 1e-3: a row is untied when its top-2 margin exceeds 2 k x 1e-3 = 0.02
    assert untied_fraction(rows, 1e-3) == 0.5
    assert untied_fraction(rows, 0.0) == 0.75  # an exact tie is always tied
    assert untied_fraction(rows, 1.0) == 0.0


def test_fp16_floor_is_pytorch_in_half() -> None:
    """measure() for an fp16 artifact runs the program in float16: its floor is the half copy's
    error (cosine ~0.9975 on this net), where the float32 floor is ~1e-10."""
    model = cm.fp16_unstable()
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    fp16 = measure(model, [[x]], [{"output": want}], "fp16")
    fp32 = measure(model, [[x]], [{"output": want}], "fp32")
    assert fp16.precision == "fp16" and fp16.unavailable is None
    assert 0.99 < fp16.per_output["output"].cosine < 0.999
    assert fp32.per_output["output"].cosine > 1 - 1e-9
    assert "float16" in fp16.to_json(FP16)["what"] and "float32" in fp32.to_json(FP16)["what"]
    # int8 and dynamic-int8 keep the float32 floor
    assert measure(model, [[x]], [{"output": want}], "int8").precision == "fp32"


def _convert(factory: str, target: str, out: Path, shape: str = "1,3,16,16"):
    return run_cli("convert", f"{MODELS}:{factory}", "--allow-cwd-import", "--input-shape",
                   f"x={shape}", "--target", target, "-o", str(out), cwd=REPO)


def _passes_by_floor(proc, out: Path, runtimes: tuple[str, ...], below_fixed: str) -> dict:
    """The bundle passes, every runtime judged by the fp16 floor; `below_fixed` would have
    FAILED the fixed fp16 bound (cosine < 0.999)."""
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["noise_floor"]["precision"] == "fp16"
    assert report["noise_floor"]["bound"] == "fp16 noise floor"
    rows = {p["runtime"]: p for p in report["parity"]}
    for name in runtimes:
        assert rows[name]["executed"] and rows[name]["passed"], rows[name]
        assert rows[name]["bound"] == "fp16 noise floor"
    assert rows[below_fixed]["cosine"] < FP16.min_cosine
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["precision"] == "fp16"
    assert manifest["tolerances"]["bound"] == "fp16 noise floor"
    assert FP16_LOWEST_COSINE <= manifest["tolerances"]["min_cosine"] < FP16.min_cosine
    return report


def broken_artifact_fails(out: Path, broken_factory: str, target: str, tmp: Path,
                          runtimes: tuple[str, ...], shape: str = "1,3,16,16") -> None:
    """The artifact of the same model with a wrong weight, judged against the good bundle's
    parity tensors and its (maybe widened) tolerance, fails on every runtime."""
    broken = tmp / "broken"
    proc = _convert(broken_factory, target, broken, shape)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    samples, expected = load_parity_tensors(out, manifest)
    tolerance = Tolerance(**manifest["tolerances"])
    artifact = broken / manifest["artifact"]
    for runtime in runtimes:
        bad = check_runtime(runtime, artifact, samples, expected, tolerance, timing_runs=0)
        assert bad.executed and not bad.passed, (runtime, bad.stats)
        assert any(v.startswith("cosine") for v in bad.violations), bad.violations
        assert np.isfinite(bad.stats.cosine) and bad.stats.cosine < FP16_LOWEST_COSINE


@pytest.mark.slow
def test_fp16_sensitive_model_passes_on_vulkan_and_broken_fails(tmp_path: Path) -> None:
    """ncnn-vulkan computes in fp16 (arithmetic, not only storage): cosine ~0.9936 on this net,
    where PyTorch's half copy reaches 0.99929; within the floor's bound, below the fixed one."""
    require_vulkan()
    out = tmp_path / "vulkan"
    _passes_by_floor(_convert("fp16_sensitive", "vulkan", out), out,
                     ("ncnn-vulkan", "ncnn-cpu"), below_fixed="ncnn-vulkan")
    broken_artifact_fails(out, "fp16_sensitive_broken", "vulkan", tmp_path, ("ncnn-vulkan", "ncnn-cpu"))


@pytest.mark.slow
def test_fp16_unstable_model_passes_on_coreml_and_broken_fails(tmp_path: Path) -> None:
    """The MIL interpreter rounds to fp16 between ops like PyTorch's half copy: cosine ~0.9975,
    equal to the floor; passed against it, with the warning naming --samples / --precision fp32.
    """
    require_runtime("mil-interpreter")
    out = tmp_path / "coreml"
    proc = _convert("fp16_unstable", "coreml", out)
    report = _passes_by_floor(proc, out, ("mil-interpreter",), below_fixed="mil-interpreter")
    texts = [w["text"] for w in report["warnings"]]
    assert any("float16 output 'output' is unstable" in t and "--samples" in t
               and "--precision fp32" in t for t in texts), texts
    assert "WARNING: the model's own float16 output" in proc.stdout
    broken_artifact_fails(out, "fp16_unstable_broken", "coreml", tmp_path, ("mil-interpreter",))


class _CachedBias(torch.nn.Module):
    """HF LeViT's pattern: a float tensor cached in a plain dict on the first eval call."""

    def __init__(self) -> None:
        super().__init__()
        self.lin, self.cache = torch.nn.Linear(4, 4), {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if "bias" not in self.cache:
            self.cache["bias"] = torch.ones(4, 4) * 0.5
        return self.lin(x) @ self.cache["bias"]


def test_floor_casts_tensors_cached_outside_parameters() -> None:
    model = _CachedBias().eval()
    x = np.ones((2, 4), np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()  # fills the cache in float32
    for precision in ("fp32", "fp16"):
        floor = measure(model, [[x]], [{"y": want}], precision)
        assert floor.unavailable is None and floor.per_output["y"].cosine > 0.999, floor
