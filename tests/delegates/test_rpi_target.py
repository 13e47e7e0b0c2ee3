"""The rpi target end to end: convert writes model.tflite, parity on LiteRT x86 and (marked qemu)
on the aarch64 LiteRT wheel under qemu-user, never reporting emulated latency as device speed.
"""

from __future__ import annotations

import argparse
import json

import pytest

from edgeexport.exporter import parse_input_spec
from edgeexport.pipeline import ConvertOptions, convert
from tests.conftest import require_runtime


def _convert(tmp_path, cpu: str = "cortex-a72", precision: str | None = None,
             model: str = "edgeexport.zoo:resnet_small", shape: str = "1,3,64,64"):
    opts = ConvertOptions(target="rpi", input_specs=[parse_input_spec(shape)],
                          target_options=argparse.Namespace(cpu=cpu, precision=precision),
                          timing_runs=1)
    return convert(model, tmp_path / "out", opts)


def test_rpi_convert_on_x86_litert(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EDGEEXPORT_NO_QEMU", "1")
    outcome = _convert(tmp_path, precision="fp16")
    report = outcome.report
    assert (tmp_path / "out" / "model.tflite").exists()
    by = {p["runtime"]: p for p in report["parity"]}
    assert by["litert"]["executed"] and by["litert"]["passed"]
    q = by["litert-aarch64-qemu"]
    assert not q["executed"] and not q["passed"] and "EDGEEXPORT_NO_QEMU" in q["reason"]
    assert report["coverage"]["fallback"] == []
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["artifact"] == "model.tflite" and manifest["precision"] == "fp16"


@pytest.mark.qemu
def test_rpi_parity_under_qemu(tmp_path) -> None:
    require_runtime("litert-aarch64-qemu")
    outcome = _convert(tmp_path, cpu="cortex-a76")
    by = {p["runtime"]: p for p in outcome.report["parity"]}
    q = by["litert-aarch64-qemu"]
    assert q["executed"] and q["passed"], q
    assert q["max_rel_err"] <= 1e-4
    assert q["details"]["emulated"] is True and q["details"]["cpu"] == "cortex-a76"
    assert "emulation" in q["device"] and "not device speed" in q["device"]


def test_per_layer_names_the_first_bad_layer(tmp_path, monkeypatch) -> None:
    """`validate --per-layer` maps LiteRT's intermediates back to IR values; when one layer of
    the IR differs from the artifact (here: a weight changed after emission) it is named."""
    import numpy as np
    import onnx

    from edgeexport.bundle import per_layer_errors as per_layer
    from edgeexport.validate.bundle import load_parity_tensors, read_manifest

    monkeypatch.setenv("EDGEEXPORT_NO_QEMU", "1")
    _convert(tmp_path)
    out = tmp_path / "out"
    manifest = read_manifest(out)
    samples, _ = load_parity_tensors(out, manifest)
    clean = per_layer(out, manifest, samples[0])["litert"]
    assert len(clean["layers"]) >= 10 and clean["first_over_tolerance"] is None
    ir_model = onnx.load(out / "ir.onnx")
    convs = [n for n in ir_model.graph.node if n.op_type == "Conv"]
    target = convs[3]
    init = next(i for i in ir_model.graph.initializer if i.name == target.input[1])
    arr = onnx.numpy_helper.to_array(init) * np.float32(1.5)
    init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
    onnx.save(ir_model, out / "ir.onnx")
    bad = per_layer(out, manifest, samples[0])["litert"]["first_over_tolerance"]
    assert bad is not None
    # the conv itself, or the activation fused into it (its output is the first one LiteRT has)
    consumers = [n.name for n in ir_model.graph.node if target.output[0] in n.input]
    assert bad["node"] in [target.name] + consumers, bad
