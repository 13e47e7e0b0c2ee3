"""The reference runtime's two liberties, checked against onnxruntime: Relu/Clip fused into the
Conv before or after them (only where the value between them has no other use), and conv
outputs held channels-last (kernels/_layout.py) flowing into every kind of consumer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx.helper as oh
import pytest

from edgeexport import ir as eir
from edgeexport.runtimes.reference import Interpreter
from tests.conftest import require_module

ort = require_module("onnxruntime")

RNG = np.random.default_rng(0)
F32 = onnx.TensorProto.FLOAT


def _f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _model(nodes: list[onnx.NodeProto], inputs: dict[str, np.ndarray], outputs: list[str],
           initializers: dict[str, np.ndarray], tmp_path: Path) -> tuple[Interpreter, Path]:
    elem = oh.np_dtype_to_tensor_dtype
    graph = oh.make_graph(
        nodes, "g", [oh.make_tensor_value_info(n, elem(a.dtype), a.shape)
                     for n, a in inputs.items()],
        [oh.make_tensor_value_info(o, 0, None) for o in outputs],
        [onnx.numpy_helper.from_array(a, n) for n, a in initializers.items()])
    proto = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 20)])
    proto.ir_version = 10
    path = tmp_path / "model.onnx"
    onnx.save(onnx.shape_inference.infer_shapes(proto, strict_mode=True), path)
    return Interpreter(eir.load(path)), path


def _check(interpreter: Interpreter, path: Path, feeds: dict[str, np.ndarray],
           rtol: float = 1e-4, atol: float = 1e-5) -> dict[str, np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    theirs = dict(zip(names, session.run(names, feeds)))
    ours = interpreter.run(feeds)
    every = interpreter.run(feeds, keep_all=True)
    for name, want in theirs.items():
        assert ours[name].flags.c_contiguous and every[name].flags.c_contiguous, name
        np.testing.assert_allclose(ours[name], want, rtol=rtol, atol=atol, err_msg=name)
        # fused or not, the same numbers
        np.testing.assert_array_equal(ours[name], every[name], err_msg=name)
    return every


def _conv(x: str, w: str, b: str, y: str, **attrs) -> onnx.NodeProto:
    return oh.make_node("Conv", [x, w, b], [y], **attrs)


BOUNDS = {"lo": np.array(0, np.float32), "hi": np.array(6, np.float32)}


@pytest.mark.parametrize("kind", ["pointwise", "depthwise_s2", "im2col"])
@pytest.mark.parametrize("act", ["Relu", "Clip"])
def test_activation_fuses_into_conv(tmp_path: Path, kind: str, act: str) -> None:
    w = {"pointwise": _f32(16, 8, 1, 1), "depthwise_s2": _f32(8, 1, 3, 3),
         "im2col": _f32(16, 8, 3, 3)}[kind]
    attrs = {"pointwise": {}, "depthwise_s2": dict(group=8, strides=[2, 2], pads=[1] * 4),
             "im2col": dict(pads=[1, 0, 2, 1])}[kind]
    clip = oh.make_node("Clip", ["c", "lo", "hi"], ["y"]) if act == "Clip" \
        else oh.make_node("Relu", ["c"], ["y"])
    interpreter, path = _model(
        [_conv("x", "w", "b", "c", **attrs), clip], {"x": _f32(2, 8, 9, 11)}, ["y"],
        {"w": w, "b": _f32(w.shape[0]), **BOUNDS}, tmp_path)
    assert [s.node.op_type for s in interpreter._steps] == ["Conv"]  # fused
    x = 3 * _f32(2, 8, 9, 11)
    every = _check(interpreter, path, {"x": x})
    # with every intermediate asked for, the Conv output is its own, not clipped in place
    assert every["c"].min() < 0 and every["y"].min() == 0
    np.testing.assert_array_equal(every["y"], np.clip(every["c"], 0, 6 if act == "Clip"
                                                      else None))


def test_activation_fuses_into_the_depthwise_conv_after_it(tmp_path: Path) -> None:
    # 1x1 -> Clip -> depthwise -> Relu -> 1x1: the Clip runs as the depthwise conv's prologue
    # (while it copies its input), the Relu as its epilogue
    interpreter, path = _model(
        [_conv("x", "w1", "b1", "c"), oh.make_node("Clip", ["c", "lo", "hi"], ["a"]),
         _conv("a", "w2", "b2", "d", group=12, pads=[1, 2, 0, 1]),
         oh.make_node("Relu", ["d"], ["r"]), _conv("r", "w3", "b3", "y")],
        {"x": _f32(2, 4, 7, 9)}, ["y"],
        {"w1": _f32(12, 4, 1, 1), "b1": _f32(12), "w2": _f32(12, 1, 3, 3), "b2": _f32(12),
         "w3": _f32(5, 12, 1, 1), "b3": _f32(5), **BOUNDS}, tmp_path)
    assert len(interpreter._steps) == 3
    every = _check(interpreter, path, {"x": 3 * _f32(2, 4, 7, 9)})
    assert every["c"].min() < 0 and every["a"].min() == 0 and every["d"].min() < 0


def test_activation_fuses_into_a_conv_with_weights_given_at_run_time(tmp_path: Path) -> None:
    feeds = {"x": _f32(1, 4, 6, 6), "w": _f32(4, 1, 3, 3)}
    interpreter, path = _model(
        [_conv("x", "w", "b", "c", group=4, pads=[1] * 4), oh.make_node("Relu", ["c"], ["y"])],
        feeds, ["y"], {"b": _f32(4)}, tmp_path)
    assert len(interpreter._steps) == 1
    _check(interpreter, path, feeds)


def test_no_fusion_when_the_conv_output_has_another_use(tmp_path: Path) -> None:
    interpreter, path = _model(
        [_conv("x", "w", "b", "c", pads=[1] * 4), oh.make_node("Clip", ["c", "lo", "hi"], ["r"]),
         oh.make_node("Add", ["c", "r"], ["y"])],
        {"x": _f32(1, 4, 6, 6)}, ["y"], {"w": _f32(4, 4, 3, 3), "b": _f32(4), **BOUNDS},
        tmp_path)
    assert len(interpreter._steps) == 3
    _check(interpreter, path, {"x": 3 * _f32(1, 4, 6, 6)})


def test_no_prologue_when_the_activation_input_is_read_later(tmp_path: Path) -> None:
    # the Clip's input is also read after the Clip: it cannot move into the depthwise conv
    interpreter, path = _model(
        [oh.make_node("Clip", ["x", "lo", "hi"], ["a"]),
         _conv("a", "w", "b", "d", group=4, pads=[1] * 4), oh.make_node("Add", ["d", "x"], ["y"])],
        {"x": 3 * _f32(1, 4, 6, 6)}, ["y"], {"w": _f32(4, 1, 3, 3), "b": _f32(4), **BOUNDS},
        tmp_path)
    assert len(interpreter._steps) == 3
    _check(interpreter, path, {"x": 3 * _f32(1, 4, 6, 6)})


def test_no_fusion_into_a_graph_output_or_with_runtime_bounds(tmp_path: Path) -> None:
    interpreter, path = _model(
        [_conv("x", "w", "b", "c"), oh.make_node("Relu", ["c"], ["y"]),
         _conv("x", "w", "b", "d"), oh.make_node("Clip", ["d", "lo"], ["z"])],
        {"x": _f32(1, 4, 5, 5), "lo": np.array(0.5, np.float32)}, ["c", "y", "z"],
        {"w": _f32(6, 4, 1, 1), "b": _f32(6)}, tmp_path)
    assert len(interpreter._steps) == 4
    every = _check(interpreter, path, {"x": _f32(1, 4, 5, 5), "lo": np.array(0.5, np.float32)})
    assert every["c"].min() < 0


def test_float16_fusion_rounds_before_the_activation(tmp_path: Path) -> None:
    x = (4 * _f32(1, 6, 7, 7)).astype(np.float16)
    interpreter, path = _model(
        [_conv("x", "w", "b", "c", group=6, pads=[1] * 4),
         oh.make_node("Clip", ["c", "lo", "hi"], ["y"])], {"x": x}, ["y"],
        {"w": _f32(6, 1, 3, 3).astype(np.float16), "b": _f32(6).astype(np.float16),
         "lo": np.array(0, np.float16), "hi": np.array(1, np.float16)}, tmp_path)
    assert len(interpreter._steps) == 1
    _check(interpreter, path, {"x": x}, rtol=1e-2, atol=1e-2)


def test_channels_last_outputs_flow_into_other_ops(tmp_path: Path) -> None:
    # conv outputs (channels-last) read by ops that reshape, transpose, pool, concatenate and
    # broadcast them against channels-first inputs
    nodes = [
        _conv("x", "w1", "b1", "a"),                                     # 1x1
        _conv("a", "w2", "b2", "d", group=8, pads=[1] * 4),              # depthwise
        oh.make_node("Add", ["d", "x2"], ["s"]),                         # with a graph input
        oh.make_node("MaxPool", ["s"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        oh.make_node("Transpose", ["a"], ["t"], perm=[0, 2, 3, 1]),
        oh.make_node("Concat", ["a", "d"], ["k"], axis=1),
        oh.make_node("Flatten", ["p"], ["f"]),
        oh.make_node("MatMul", ["f", "m"], ["y"]),
        oh.make_node("ReduceMean", ["k", "axes"], ["r"], keepdims=0),
    ]
    inits = {"w1": _f32(8, 3, 1, 1), "b1": _f32(8), "w2": _f32(8, 1, 3, 3), "b2": _f32(8),
             "m": _f32(8 * 3 * 4, 5), "axes": np.array([2, 3], np.int64)}
    feeds = {"x": _f32(2, 3, 6, 8), "x2": _f32(2, 8, 6, 8)}
    interpreter, path = _model(nodes, feeds, ["y", "t", "k", "r"], inits, tmp_path)
    _check(interpreter, path, feeds)
