"""Zoo models through the coreml and metal targets, fp16 and fp32 (MobileNetV2 also int8):
parity of the MIL interpreter's execution with PyTorch eager, as the acceptance bounds say.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import numpy as np
import pytest

from edgeexport import delegates
from edgeexport.exporter import parse_input_spec
from edgeexport.pipeline import ConvertOptions, convert
from edgeexport.validate import TOLERANCES, check_runtime
from tests.conftest import MOBILENET, ZOO_SHAPES, zoo_parity_case

SMALL = [n for n in ZOO_SHAPES if n != MOBILENET]


exported = zoo_parity_case


def _convert_and_check(name: str, target: str, precision: str, tmp_path: Path,
                       model=None, tolerance: str | None = None, ios: int = 16,
                       photos_only: bool = False) -> dict:
    result, samples, expected = exported(name)
    if photos_only:  # the calibration data's distribution, as convert checks int8 artifacts
        samples, expected = samples[1:], expected[1:]
    t = delegates.load_target(target)
    ns = argparse.Namespace(precision=precision, ios=ios)
    artifact = t.emit(model or result.model, tmp_path, ns)
    tol = TOLERANCES[tolerance or precision]
    parity = check_runtime("mil-interpreter", artifact.path, samples, expected, tol,
                           timing_runs=0)
    assert parity.executed and parity.passed, (name, target, precision, parity.to_json())
    on_mac = check_runtime("coreml", artifact.path, samples[:1], expected[:1], tol,
                           timing_runs=0)
    assert not on_mac.executed and "macOS" in on_mac.reason
    assert artifact.extra["compute_units"] == ("CPU_AND_GPU" if target == "metal" else "ALL")
    return parity.to_json()


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("target", ["coreml", "metal"])
@pytest.mark.parametrize("name", list(SMALL))
def test_small_models(name: str, target: str, precision: str, tmp_path: Path) -> None:
    stats = _convert_and_check(name, target, precision, tmp_path)
    if precision == "fp32":
        assert stats["max_rel_err"] <= 1e-4
    else:
        assert stats["cosine"] >= 0.999 and stats["top1_agreement"] in (None, 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("target", ["coreml", "metal"])
def test_mobilenet_v2_pretrained_on_photos(target: str, precision: str, tmp_path: Path) -> None:
    stats = _convert_and_check(MOBILENET, target, precision, tmp_path)
    assert stats["top1_agreement"] == 1.0  # same class on every real photo


@functools.lru_cache(maxsize=None)
def quantized_mobilenet(calib_dir: str):
    """MobileNetV2 through our quantizer (int8 static, calibrated on the photos): a QDQ IR."""
    from edgeexport import quantize
    from edgeexport.zoo.photos import photo_batch

    result, _, _ = exported(MOBILENET)
    calib = Path(calib_dir) / "calib.npy"
    np.save(calib, photo_batch()[1])
    copy = argparse.Namespace(model=quantize.clone(result.model), inputs=result.inputs,
                              sample=result.sample, expected=result.expected,
                              eager=result.eager, loaded=result.loaded)
    quantize.apply(copy, "int8", str(calib), quiet=True)
    ops = {n.op_type for n in copy.model.graph}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    return copy.model


@pytest.fixture(scope="module")
def qdq_mobilenet(tmp_path_factory: pytest.TempPathFactory):
    return quantized_mobilenet(str(tmp_path_factory.mktemp("calib")))


def _weights_size(out: Path) -> int:
    return (out / "model.mlpackage/Data/com.apple.CoreML/weights/weight.bin").stat().st_size


@pytest.mark.slow
def test_mobilenet_v2_int8_weights_ios16(qdq_mobilenet, tmp_path: Path) -> None:
    """iOS 16: int8 weights as constexpr_affine_dequantize (activations float): vs PyTorch on
    the photos. (Not on random noise: the quantizer's channel scaling is exact up to twice the
    calibration data's channel maxima, and noise goes past them: cosine 0.989 there.)"""
    _convert_and_check(MOBILENET, "coreml", "fp16", tmp_path, model=qdq_mobilenet,
                       tolerance="int8", ios=16, photos_only=True)
    assert _weights_size(tmp_path) < 4_500_000  # int8: ~3.5 MB for 3.5 M parameters


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_mobilenet_v2_w8a8_ios17(qdq_mobilenet, precision: str, tmp_path: Path) -> None:
    """iOS 17: W8A8 with MIL quantize/dequantize, compared with the reference runtime on the
    same QDQ IR (the program's fidelity; the accuracy of W8A8 itself is the quantizer's)."""
    from edgeexport.runtimes import get, reference
    from edgeexport.metrics import error_stats, merge

    _, samples, _ = exported(MOBILENET)
    artifact = delegates.load_target("coreml").emit(
        qdq_mobilenet, tmp_path, argparse.Namespace(precision=precision, ios=17))
    session = get("mil-interpreter").load(artifact.path)
    stats = merge([error_stats(reference.run(qdq_mobilenet, s)["output"],
                               session.run(s)["output"]) for s in samples[:4]])
    if precision == "fp32":
        assert stats.max_rel_err <= 1e-4, stats
    else:  # fp16 moves values across quantization steps; measured cosine ~0.986
        assert stats.cosine >= 0.98, stats
    assert _weights_size(tmp_path) < 4_500_000


@pytest.mark.parametrize("ios", [15, 16, 17])
def test_static_int8_encoder(ios: int, tmp_path: Path) -> None:
    """A BERT-style encoder through static int8: its QDQ IR quantizes scalar constants too
    (the 1 of `1 - mask`, 0-d int8). Every iOS level emits it; from iOS 17 the program computes
    what the reference runtime computes on the same IR, before it activations stay float
    (Q -> DQ pairs become clips, weights int8), measured cosine 0.99982 to the IR."""
    from edgeexport import quantize
    from edgeexport.metrics import error_stats, merge
    from edgeexport.runtimes import get, reference

    result, samples, _ = exported("bert_tiny")
    copy = argparse.Namespace(model=quantize.clone(result.model), inputs=result.inputs)
    quantize.apply(copy, "int8", None, quiet=True)
    names = [v.name for v in copy.model.graph.outputs]
    artifact = delegates.load_target("coreml").emit(
        copy.model, tmp_path, argparse.Namespace(precision="fp32", ios=ios))
    session = get("mil-interpreter").load(artifact.path)
    for s in samples[:2]:
        want, got = reference.run(copy.model, s), session.run(s)
        stats = merge([error_stats(want[n], got[n]) for n in names])
        assert stats.cosine >= (0.9999 if ios >= 17 else 0.999), (ios, stats)


def test_convert_command_writes_a_bundle(tmp_path: Path) -> None:
    """The whole pipeline (as `edgeexport convert`): bundle, report, compute units."""
    opts = ConvertOptions(target="metal", input_specs=[parse_input_spec("1,3,64,64")],
                          target_options=argparse.Namespace(precision=None, ios=None),
                          timing_runs=1)
    outcome = convert("edgeexport.zoo:resnet_small", tmp_path / "out", opts)
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert outcome.passed and report["target"] == "metal"
    runtimes = {p["runtime"]: p for p in report["parity"]}
    assert runtimes["mil-interpreter"]["executed"] and runtimes["mil-interpreter"]["passed"]
    assert runtimes["mil-interpreter"]["tolerance"]["name"] == "fp16"
    assert runtimes["coreml"]["executed"] is False and "macOS" in runtimes["coreml"]["reason"]
    assert (tmp_path / "out/model.mlpackage/Manifest.json").exists()
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["compute_units"] == "CPU_AND_GPU" and manifest["artifact"] == "model.mlpackage"
