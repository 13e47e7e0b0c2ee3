"""Quantized IR on the vulkan target: int8 QDQ graphs become ncnn's int8 Convolution /
ConvolutionDepthWise / InnerProduct, fp16 graphs fold their weight Casts back into fp16 storage.
Executed by ncnn on Vulkan (lavapipe in CI) and on the CPU, compared with PyTorch eager and with
onnxruntime on the same QDQ graph.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgeexport import delegates, quantize
from edgeexport.delegates.vulkan.ncnn_format import FLAG_FP16, FLAG_INT8
from edgeexport.exporter import parse_input_spec
from edgeexport.metrics import TOLERANCES, error_stats
from edgeexport.pipeline import ConvertOptions, convert
from edgeexport.runtimes import get
from tests.quantize._helpers import exported, fresh, run_ort
from tests.conftest import require, require_vulkan

RUNTIMES = ["ncnn-cpu", pytest.param("ncnn-vulkan", marks=pytest.mark.vulkan)]


def _needs_vulkan(runtime: str) -> None:
    if runtime == "ncnn-vulkan":
        require_vulkan()


class Image(nn.Module):
    """Conv, depthwise conv, a grouped conv with 2 outputs per group (ncnn int8 cannot: float),
    global pool and a Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
        self.grouped = nn.Conv2d(8, 8, 1, groups=4)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        x = torch.relu(self.grouped(self.dw(x)))
        return self.fc(x.mean((2, 3)))


class Audio(nn.Module):
    """A 1-D front end (conv, depthwise conv) and a Linear over every time step (ncnn's batched
    int8 InnerProduct)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 5, stride=2, padding=2)
        self.dw = nn.Conv1d(8, 8, 3, padding=1, groups=8)
        self.proj = nn.Linear(8, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw(torch.relu(self.conv(x)))
        return self.proj(nn.functional.gelu(x).transpose(1, 2))


def image() -> nn.Module:
    torch.manual_seed(0)
    return Image().eval()


def audio() -> nn.Module:
    torch.manual_seed(0)
    return Audio().eval()


MODELS = {"image": (f"{__name__}:image", "1,3,16,16", 3, 1),
          "audio": (f"{__name__}:audio", "1,4,40", 3, 0)}


def _quantized(name: str, scheme: str, tmp_path: Path):
    factory, shape, _, _ = MODELS[name]
    r = exported(factory, shape)
    q = fresh(r)
    rng = np.random.default_rng(1)
    calib = tmp_path / "calib.npy"
    np.save(calib, rng.standard_normal((16, *r.sample[0].shape[1:])).astype(np.float32))
    quantize.apply(q, scheme, str(calib) if scheme == "int8" else None, quiet=True)
    return r, q


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("name", list(MODELS))
def test_int8_layers_match_the_qdq_graph(name: str, runtime: str, tmp_path: Path) -> None:
    _needs_vulkan(runtime)
    _, _, n_int8, n_float = MODELS[name]
    r, q = _quantized(name, "int8", tmp_path)
    target = delegates.load_target("vulkan")
    cov = target.coverage(q.model)
    assert cov.delegated_ops == cov.total_ops, cov
    assert f"{n_int8} of {n_int8 + n_float} quantized" in cov.notes[0]
    assert sum("runs float: grouped convolution" in n for n in cov.notes) == n_float
    art = target.emit(q.model, tmp_path, argparse.Namespace(precision="fp32"))
    assert art.path.read_text().count(" 8=1") == n_int8
    data = art.files[1].read_bytes()
    assert data.count(np.uint32(FLAG_INT8).tobytes()) >= n_int8
    rng = np.random.default_rng(7)
    feeds = [{r.inputs[0].name: rng.standard_normal(r.sample[0].shape).astype(np.float32)}
             for _ in range(4)]
    session = get(runtime).load(art.path)
    assert session.details["vulkan"] is (runtime == "ncnn-vulkan")
    got = np.concatenate([session.run(f)[q.model.graph.outputs[0].name] for f in feeds])
    qdq = np.concatenate([o[0] for o in run_ort(q.model, feeds)])
    ref = np.concatenate([o[0] for o in run_ort(r.model, feeds)])
    # ncnn's symmetric input quantization differs from the IR's asymmetric one: both are int8
    # approximations of the float model, of the same quality
    vs_qdq, vs_float, qdq_float = (error_stats(a, b) for a, b in
                                   ((qdq, got), (ref, got), (ref, qdq)))
    assert vs_qdq.cosine >= 0.999, vs_qdq
    assert vs_float.cosine >= min(0.999, qdq_float.cosine - 0.002), (vs_float, qdq_float)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_fp16_weights_are_stored_fp16(runtime: str, tmp_path: Path) -> None:
    """--quantize fp16 on a small zoo model: the Casts fold away, the weights stay fp16."""
    _needs_vulkan(runtime)
    opts = ConvertOptions(target="vulkan", input_specs=[parse_input_spec("1,3,32,32")],
                          quantize="fp16", target_options=argparse.Namespace(precision=None),
                          timing_runs=0)
    outcome = convert("edgeexport.zoo:resnet_small", tmp_path / "out", opts)
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert outcome.passed, report["parity"]
    entry = next(p for p in report["parity"] if p["runtime"] == runtime)
    assert entry["executed"] and entry["passed"] and entry["tolerance"]["name"] == "fp16"
    assert entry["cosine"] >= 0.999
    text = (tmp_path / "out/model.param").read_text()
    assert "MemoryData" not in text  # no weight left behind as a float constant
    data = (tmp_path / "out/model.bin").read_bytes()
    assert data.count(np.uint32(FLAG_FP16).tobytes()) == text.count("Convolution") + \
        text.count("InnerProduct")


@pytest.mark.slow
@pytest.mark.vulkan
def test_mobilenet_v2_int8_on_real_photos(tmp_path: Path) -> None:
    """Pretrained MobileNetV2, calibrated on real photo crops: int8 bounds on both runtimes,
    checked on 4 calibration crops and the 8 real photos."""
    from edgeexport.zoo.photos import calibration_crops, photo_batch

    calib, photos = tmp_path / "crops.npy", tmp_path / "photos.npy"
    try:
        np.save(calib, calibration_crops(100))
        np.save(photos, photo_batch()[1])
        opts = ConvertOptions(target="vulkan", input_specs=[parse_input_spec("1,3,224,224")],
                              quantize="int8", calibration_data=str(calib), samples=str(photos),
                              target_options=argparse.Namespace(precision=None), timing_runs=0)
        outcome = convert("edgeexport.zoo:mobilenet_v2_pretrained", tmp_path / "out", opts)
    except ImportError as exc:  # the weights package is an optional extra
        require(f"pretrained MobileNetV2 unavailable: {exc}")
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert outcome.passed, report["parity"]
    notes = report["coverage"]["notes"]
    assert any("53 of 53 quantized" in n for n in notes), notes
    for entry in report["parity"]:
        assert entry["executed"] and entry["passed"], entry
        assert entry["tolerance"]["min_cosine"] == TOLERANCES["int8"].min_cosine  # (+ its bound)
        # measured: min cosine 0.99605 (vulkan) / 0.99511 (cpu) over the 12 samples; 0.9885 /
        # 0.9905 on the photos before one-sided input ranges were centred (quant.input_scale)
        assert entry["cosine"] >= 0.994, entry
    assert (tmp_path / "out/model.param").read_text().count(" 8=1") == 53


@pytest.mark.slow
@pytest.mark.vulkan
def test_mobilenet_v2_fp16_on_photos(tmp_path: Path) -> None:
    """Pretrained MobileNetV2 quantized fp16 (weights fp16 + Cast in the IR): the Casts fold
    into fp16 weight storage; the fp16 bounds hold on the 8 real photos on both runtimes."""
    import types

    from edgeexport.validate import check_runtime
    from tests.conftest import MOBILENET, zoo_parity_case

    result, samples, expected = zoo_parity_case(MOBILENET)
    q = types.SimpleNamespace(model=quantize.clone(result.model), inputs=result.inputs,
                              sample=result.sample)
    quantize.apply(q, "fp16", None)
    target = delegates.load_target("vulkan")
    art = target.emit(q.model, tmp_path, argparse.Namespace(precision=None))
    assert "MemoryData" not in art.path.read_text()
    for runtime in target.runtimes:
        parity = check_runtime(runtime, art.path, samples, expected, TOLERANCES["fp16"],
                               timing_runs=0)
        assert parity.executed and parity.passed, (runtime, parity.to_json())
        assert parity.stats.cosine >= 0.999 and parity.stats.top1_agreement == 1.0


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_bert_tiny_int8_with_int8_embedding_tables(runtime: str, tmp_path: Path) -> None:
    """Static int8 BERT: int8 InnerProducts for the projections, the int8 embedding tables
    (Gather -> per-column DequantizeLinear) held dequantized by Embed, int8 bounds vs PyTorch."""
    import types

    from edgeexport.validate import check_runtime
    from tests.conftest import zoo_parity_case

    _needs_vulkan(runtime)
    result, samples, expected = zoo_parity_case("bert_tiny")
    q = types.SimpleNamespace(model=quantize.clone(result.model), inputs=result.inputs,
                              sample=result.sample)
    quantize.apply(q, "int8", None, quiet=True)
    assert any(n.op_type == "Gather" and n.outputs[0].uses()
               and next(iter(n.outputs[0].uses())).node.op_type == "DequantizeLinear"
               for n in q.model.graph)
    target = delegates.load_target("vulkan")
    cov = target.coverage(q.model)
    assert cov.delegated_ops == cov.total_ops, cov.fallback
    art = target.emit(q.model, tmp_path, argparse.Namespace(precision=None))
    n_int8 = art.path.read_text().count(" 8=1")
    assert n_int8 >= 12 and f"{n_int8} of " in cov.notes[0]
    parity = check_runtime(runtime, art.path, samples, expected, TOLERANCES["int8"],
                           timing_runs=0)
    assert parity.executed and parity.passed, parity.to_json()
