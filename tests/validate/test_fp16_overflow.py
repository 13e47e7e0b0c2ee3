"""fp16 overflow: a linear-attention block (ReLU kernels, division by a sum) whose normaliser
passes 65504 fails in fp16; the range analysis finds it and the model is emitted in fp32 (ncnn's
fp16 storage is global, CoreML has no per-op precision in our emitter), reported in report.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeexport.quantize.fp16_range import FP16_SAFE, fp16_hazards
from tests.conftest import REPO, require_runtime, require_vulkan, run_cli

MODEL = "tests.validate.conditioning_models:linear_attention"
RUNTIME = {"vulkan": "ncnn-vulkan", "coreml": "mil-interpreter"}


def _convert(target: str, out: Path, *extra: str):
    if target == "vulkan":
        require_vulkan()
    require_runtime(RUNTIME[target])
    return run_cli("convert", MODEL, "--allow-cwd-import", "--input-shape", "x=1,64,32",
                   "--target", target, "-o", str(out), *extra, cwd=REPO)


def test_range_analysis_finds_the_normaliser() -> None:
    from edgeexport.exporter import export
    from edgeexport.exporter.inputs import parse_input_spec

    result = export(MODEL, input_specs=[parse_input_spec("x=1,64,32")],
                    allow_cwd_import=True)
    feeds = [dict(zip([s.name for s in result.inputs], result.sample))]
    hazards = fp16_hazards(result.model, feeds)
    assert {h.op for h in hazards} >= {"MatMul"}
    assert all(h.magnitude > FP16_SAFE for h in hazards)
    # a tenth of the input keeps every value inside fp16
    small = [{k: v * np.float32(0.1) for k, v in f.items()} for f in feeds]
    assert fp16_hazards(result.model, small) == []


@pytest.mark.slow
@pytest.mark.parametrize("target", ["vulkan", "coreml"])
def test_overflow_fails_in_fp16_and_passes_in_fp32(target: str, tmp_path: Path) -> None:
    forced = _convert(target, tmp_path / "fp16", "--precision", "fp16")
    assert forced.returncode == 3, forced.stdout + forced.stderr  # without the fallback
    report = json.loads((tmp_path / "fp16" / "report.json").read_text())
    row = next(p for p in report["parity"] if p["runtime"] == RUNTIME[target])
    assert row["executed"] and not row["passed"]
    assert report["fp16_range"]["action"].startswith("kept fp16")
    assert any("fp16 overflows in" in w["text"] for w in report["warnings"])

    proc = _convert(target, tmp_path / "auto")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "auto" / "report.json").read_text())
    manifest = json.loads((tmp_path / "auto" / "manifest.json").read_text())
    assert report["fp16_range"]["action"] == "fp32" and manifest["precision"] == "fp32"
    assert any(h["op"] == "MatMul" for h in report["fp16_range"]["hazards"])
    assert any("emitted in fp32" in ln for ln in proc.stdout.splitlines())
    row = next(p for p in report["parity"] if p["runtime"] == RUNTIME[target])
    assert row["executed"] and row["passed"]
