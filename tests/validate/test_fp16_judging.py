"""fp16 artifacts are judged by top-1 agreement only on classifier outputs: a segmentation map
[1, classes, H, W] whose cosine is >= 0.999 passes on vulkan and coreml even where a near-tied
pixel flips, and an fp16 artifact with wrong weights still fails.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeexport.validate import Tolerance, check_runtime
from edgeexport.validate.bundle import load_parity_tensors
from tests.conftest import REPO, require_runtime, require_vulkan, run_cli

SEG = "tests.validate.conditioning_models:segmenter"


def _convert(target: str, out: Path):
    return run_cli("convert", SEG, "--allow-cwd-import", "--input-shape", "x=1,3,64,64",
                   "--target", target, "-o", str(out), cwd=REPO)


@pytest.fixture(scope="module")
def vulkan_bundle(tmp_path_factory) -> tuple:
    require_vulkan()
    out = tmp_path_factory.mktemp("seg") / "vulkan"
    return _convert("vulkan", out), out


def _assert_judged_by_cosine(proc, out: Path, runtimes: tuple[str, ...]) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["precision"] == "fp16" and manifest["tolerances"]["top1_max_rank"] == 2
    rows = {p["runtime"]: p for p in report["parity"]}
    for name in runtimes:
        row = rows[name]
        assert row["executed"] and row["passed"], row
        assert row["cosine"] >= 0.999
        # not top-1 (a segmentation map); max_rel_err since the fp16 floor is measured
        assert row["per_output"]["output"]["judged_by"] == ["max_rel_err", "cosine"]
    assert report["verdict"] == "passed"


@pytest.mark.slow
def test_fp16_segmentation_passes_on_vulkan(vulkan_bundle) -> None:
    proc, out = vulkan_bundle
    _assert_judged_by_cosine(proc, out, ("ncnn-vulkan", "ncnn-cpu"))


@pytest.mark.slow
def test_fp16_segmentation_passes_on_coreml(tmp_path: Path) -> None:
    require_runtime("mil-interpreter")
    out = tmp_path / "coreml"
    _assert_judged_by_cosine(_convert("coreml", out), out, ("mil-interpreter",))
    # and the same segmenter with one class's classifier weights negated fails
    from tests.validate.test_fp16_floor import broken_artifact_fails

    broken_artifact_fails(out, "segmenter_broken", "coreml", tmp_path, ("mil-interpreter",),
                          shape="1,3,64,64")


@pytest.mark.slow
def test_broken_fp16_artifact_still_fails(vulkan_bundle, tmp_path: Path) -> None:
    """The first convolution's fp16 weights negated in model.bin (sign bits flipped)."""
    _, out = vulkan_bundle
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    data = bytearray((broken / "model.bin").read_bytes())
    # a 4-byte fp16 tag, then the first conv's 16*3*3*3 fp16 weights: flip each sign bit
    for i in range(4 + 1, 4 + 2 * 16 * 27, 2):
        data[i] ^= 0x80
    (broken / "model.bin").write_bytes(bytes(data))
    manifest = json.loads((out / "manifest.json").read_text())
    samples, expected = load_parity_tensors(out, manifest)
    tolerance = Tolerance(**manifest["tolerances"])
    for runtime in ("ncnn-vulkan", "ncnn-cpu"):
        bad = check_runtime(runtime, broken / "model.param", samples, expected, tolerance)
        assert bad.executed and not bad.passed
        assert any(v.startswith("cosine") for v in bad.violations), bad.violations
        assert np.isfinite(bad.stats.cosine) and bad.stats.cosine < 0.999
