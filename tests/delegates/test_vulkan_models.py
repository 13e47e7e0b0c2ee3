"""Zoo models through the vulkan target, fp32 and fp16 storage, executed by ncnn on Vulkan
(lavapipe in CI) and on the CPU and compared with PyTorch eager, with the acceptance bounds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from edgeexport import delegates
from edgeexport.exporter import parse_input_spec
from edgeexport.pipeline import ConvertOptions, convert
from edgeexport.validate import TOLERANCES, check_runtime
from tests.conftest import MOBILENET, ZOO_SHAPES, require_vulkan, zoo_parity_case

SMALL = [n for n in ZOO_SHAPES if n != MOBILENET]


def _vulkan_device() -> str | None:
    from edgeexport.runtimes.ncnn import vulkan_devices

    devices = vulkan_devices()
    return devices[0]["name"] if devices else None


exported = zoo_parity_case


def _check(name: str, precision: str, tmp_path: Path) -> dict[str, dict]:
    result, samples, expected = exported(name)
    target = delegates.load_target("vulkan")
    artifact = target.emit(result.model, tmp_path, argparse.Namespace(precision=precision))
    tol = TOLERANCES[precision]
    out = {}
    for runtime in target.runtimes:
        parity = check_runtime(runtime, artifact.path, samples, expected, tol, timing_runs=0)
        if runtime == "ncnn-vulkan" and _vulkan_device() is None:
            assert not parity.executed and "CPU" in parity.reason
            continue
        assert parity.executed and parity.passed, (name, runtime, precision, parity.to_json())
        out[runtime] = parity.to_json()
    return out


@pytest.mark.vulkan
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("name", list(SMALL))
def test_small_models(name: str, precision: str, tmp_path: Path) -> None:
    for runtime, stats in _check(name, precision, tmp_path).items():
        if precision == "fp32":
            assert stats["max_rel_err"] <= 1e-4, runtime
        else:
            assert stats["cosine"] >= 0.999 and stats["top1_agreement"] in (None, 1.0), runtime
        if runtime == "ncnn-vulkan":
            assert stats["device"] != "cpu" and stats["details"]["vulkan"] is True


@pytest.mark.slow
@pytest.mark.vulkan
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_mobilenet_v2_pretrained_on_photos(precision: str, tmp_path: Path) -> None:
    """The real photos: same class as PyTorch on every photo, on Vulkan and on the CPU."""
    for runtime, stats in _check(MOBILENET, precision, tmp_path).items():
        assert stats["top1_agreement"] == 1.0, runtime
        assert stats["cosine"] >= (0.99999 if precision == "fp32" else 0.999), runtime


@pytest.mark.vulkan
def test_convert_reports_the_vulkan_device(tmp_path: Path) -> None:
    """`edgeexport convert --target vulkan`: report.json names the device that really ran."""
    require_vulkan()
    device = _vulkan_device()
    opts = ConvertOptions(target="vulkan", input_specs=[parse_input_spec("1,3,64,64")],
                          target_options=argparse.Namespace(precision=None), timing_runs=1)
    outcome = convert("edgeexport.zoo:resnet_small", tmp_path / "out", opts)
    report = json.loads((tmp_path / "out/report.json").read_text())
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert outcome.passed and report["target"] == "vulkan"
    assert manifest["precision"] == "fp16" and manifest["artifact_format"] == "ncnn"
    entries = {p["runtime"]: p for p in report["parity"]}
    vk, cpu = entries["ncnn-vulkan"], entries["ncnn-cpu"]
    assert vk["executed"] and vk["passed"] and vk["device"] == device
    assert vk["details"]["vulkan"] is True and vk["tolerance"]["name"] == "fp16"
    assert cpu["executed"] and cpu["passed"] and cpu["device"] == "cpu"
    assert {"model.param", "model.bin", "model.io.json"} <= set(manifest["files"])


@pytest.mark.parametrize("name,blocks", [("bert_tiny", 2), ("vit_tiny", 2)])
def test_attention_blocks_become_one_ncnn_layer(name: str, blocks: int, tmp_path: Path) -> None:
    """Q/K/V projections, heads, softmax and output projection -> MultiHeadAttention."""
    result, samples, expected = exported(name)
    target = delegates.load_target("vulkan")
    art = target.emit(result.model, tmp_path, argparse.Namespace(precision="fp32"))
    text = art.path.read_text()
    assert text.count("MultiHeadAttention") == blocks
    assert "Softmax" not in text  # every softmax was inside an attention block
    parity = check_runtime("ncnn-cpu", art.path, samples, expected, TOLERANCES["fp32"],
                           timing_runs=0)
    assert parity.passed, parity.to_json()
