"""The ncnn files the vulkan target writes: .param text, .bin buffers (fp16 tag, alignment),
byte-identical output for the same input, and clear errors for what ncnn cannot express.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeexport.delegates import load_target
from edgeexport.delegates.vulkan.ncnn_format import (FLAG_FP16, Layer, format_params,
                                                     param_text, weight_bytes)
from edgeexport.errors import UnsupportedOpError, UsageError
from edgeexport.runtimes import artifact_format, get

RNG = np.random.default_rng(1)


def _conv_model(batch: int = 1, op: str = "Relu") -> ir.Model:
    w = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node(op, ["c"], ["y"], name="act")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (batch, 3, 6, 6))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (batch, 4, 6, 6))],
        [numpy_helper.from_array(w, "w")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    from onnx import shape_inference

    return ir.serde.deserialize_model(shape_inference.infer_shapes(proto))


def test_param_values_fit_ncnn_reader() -> None:
    # ncnn reads each value into 16 bytes: floats keep 9 significant digits and stay exact
    text = format_params({0: 3, 1: 1e-12, 2: -3.4028234663852886e38, 3: [1, 2], 4: [0.5, 6.0]})
    for token in text.split():
        key, value = token.split("=", 1)
        for item in value.split(","):
            assert len(item) <= 15, token
    assert "-23303=2,1,2" in text and "-23304=2,5.00000000e-01,6.00000000e+00" in text
    assert np.float32(float(text.split()[1].split("=")[1])) == np.float32(1e-12)


def test_bin_buffers_are_tagged_and_aligned() -> None:
    w = np.arange(3, dtype=np.float32)
    layer = Layer("Convolution", "c", ["a"], ["b"], weights=[(w, True), (w, False)])
    fp16 = weight_bytes([layer], fp16=True)
    assert struct.unpack("<I", fp16[:4])[0] == FLAG_FP16
    assert np.array_equal(np.frombuffer(fp16[4:10], "<f2"), w)
    assert fp16[10:12] == b"\0\0" and len(fp16) % 4 == 0  # 3 halves padded to 4 bytes
    assert np.array_equal(np.frombuffer(fp16[12:], "<f4"), w)  # raw float32, no tag
    fp32 = weight_bytes([layer], fp16=False)
    assert struct.unpack("<I", fp32[:4])[0] == 0 and len(fp32) == 4 + 12 + 12


def test_emit_writes_param_bin_io_and_is_deterministic(tmp_path: Path) -> None:
    target = load_target("vulkan")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = target.emit(_conv_model(), tmp_path / "a")
    b = target.emit(_conv_model(), tmp_path / "b")
    assert [f.name for f in a.files] == ["model.param", "model.bin", "model.io.json"]
    for fa, fb in zip(a.files, b.files):
        assert fa.read_bytes() == fb.read_bytes(), fa.name
    text = a.path.read_text()
    assert text.startswith("7767517\n") and artifact_format(a.path) == "ncnn"
    # the Relu is fused into the convolution: activation_type 1, one layer fewer
    assert "ReLU" not in text and " 9=1" in text
    assert a.extra["precision"] == "fp16" and target.precision(None) == "fp16"


def test_fp32_option_changes_storage(tmp_path: Path) -> None:
    import argparse

    target = load_target("vulkan")
    (tmp_path / "h").mkdir()
    (tmp_path / "f").mkdir()
    half = target.emit(_conv_model(), tmp_path / "h", argparse.Namespace(precision=None))
    full = target.emit(_conv_model(), tmp_path / "f", argparse.Namespace(precision="fp32"))
    assert full.files[1].stat().st_size > half.files[1].stat().st_size
    assert target.precision(argparse.Namespace(precision="fp32")) == "fp32"
    x = {"x": RNG.standard_normal((1, 3, 6, 6)).astype(np.float32)}
    y16 = get("ncnn-cpu").load(half.path).run(x)["y"]
    y32 = get("ncnn-cpu").load(full.path).run(x)["y"]
    assert np.abs(y16 - y32).max() < 0.05 and y32.shape == (1, 4, 6, 6)


def test_unsupported_op_names_op_node_and_other_targets(tmp_path: Path) -> None:
    model = _conv_model(op="Sinh")  # no ncnn layer for it
    with pytest.raises(UnsupportedOpError) as err:
        load_target("vulkan").emit(model, tmp_path)
    msg = str(err.value)
    assert "Sinh" in msg and "'act'" in msg and "vulkan" in msg
    assert "onnx" in err.value.supported_by
    assert not (tmp_path / "model.param").exists()
    cov = load_target("vulkan").coverage(model)
    assert cov.delegated_ops == 1 and cov.fallback[0].op == "Sinh"


def test_batch_above_one_is_refused_clearly(tmp_path: Path) -> None:
    model = _conv_model(batch=2)
    reason = load_target("vulkan").registry.why_not(model.graph.node(0))
    assert reason is not None and "batch must be 1" in reason
    with pytest.raises((UnsupportedOpError, UsageError), match="batch"):
        load_target("vulkan").emit(model, tmp_path)


def test_param_text_counts_layers_and_blobs() -> None:
    layers = [Layer("Input", "in", [], ["x"], {0: 4}), Layer("ReLU", "r", ["x"], ["y"])]
    assert param_text(layers).splitlines()[1] == "2 2"
