"""Every op the vulkan registry claims is emitted as ncnn layers, executed by ncnn on the CPU and
on Vulkan (lavapipe in CI), and compared with onnxruntime on the same single-node ONNX graph.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeexport.delegates.vulkan import REGISTRY
from edgeexport.delegates.vulkan.emit import emit_model
from edgeexport.runtimes import get
from edgeexport.validate import error_stats
from tests.conftest import require_vulkan

RNG = np.random.default_rng(0)
F = np.float32


def _x(*shape: int, lo: float = -2, hi: float = 2) -> np.ndarray:
    return RNG.uniform(lo, hi, shape).astype(F)


def _i(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def _masked_rows(*shape: int, lowest_in_part: bool = True) -> np.ndarray:
    """Rows filled with float32's lowest value (a masked attention row) in whole and, when
    `lowest_in_part`, in part (log(softmax) gives -inf for those, onnxruntime ~-3.4e38)."""
    x = _x(*shape)
    x[..., 1, :] = np.finfo(F).min
    if lowest_in_part:
        x[..., 2, ::2] = np.finfo(F).min
    return x


U = {"x": _x(1, 3, 4, 5)}  # a default NCHW activation for unary ops
# op -> cases: (activations {name: array}, constants {name: array}, attrs, n_outputs)
CASES: dict[str, list[tuple]] = {
    "Conv": [({"x": _x(1, 3, 9, 9)}, {"w": _x(8, 3, 3, 3), "b": _x(8)},
              {"pads": [1, 1, 1, 1], "strides": [2, 2]}, 1),
             ({"x": _x(1, 4, 8, 8)}, {"w": _x(4, 1, 3, 3)}, {"group": 4, "pads": [1, 0, 1, 2]}, 1),
             ({"x": _x(1, 4, 8, 8)}, {"w": _x(6, 2, 3, 3)}, {"group": 2, "dilations": [2, 2]}, 1),
             ({"x": _x(1, 3, 7, 7)}, {"w": _x(4, 3, 3, 3)}, {"auto_pad": "SAME_UPPER",
                                                            "strides": [2, 2]}, 1),
             # 1-D (audio front ends): plain, depthwise, grouped, SAME padding
             ({"x": _x(1, 4, 33)}, {"w": _x(8, 4, 5), "b": _x(8)},
              {"pads": [2, 1], "strides": [2]}, 1),
             ({"x": _x(1, 6, 20)}, {"w": _x(6, 1, 3)}, {"group": 6, "pads": [1, 1]}, 1),
             ({"x": _x(1, 4, 20)}, {"w": _x(6, 2, 3), "b": _x(6)},
              {"group": 2, "dilations": [2]}, 1),
             ({"x": _x(1, 3, 17)}, {"w": _x(4, 3, 4)}, {"auto_pad": "SAME_UPPER",
                                                       "strides": [3]}, 1)],
    "ConvTranspose": [({"x": _x(1, 4, 5, 5)}, {"w": _x(4, 3, 3, 3), "b": _x(3)},
                       {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}, 1),
                      ({"x": _x(1, 4, 5, 5)}, {"w": _x(4, 1, 2, 2)},
                       {"strides": [2, 2], "group": 4}, 1)],
    "MatMul": [({"a": _x(1, 5, 8)}, {"b": _x(8, 3)}, {}, 1),
               ({"a": _x(1, 2, 5, 8), "b": _x(1, 2, 8, 3)}, {}, {}, 1),
               ({"a": _x(1, 2, 5, 8)}, {"b": _x(2, 8, 3)}, {}, 1)],
    "Gemm": [({"a": _x(1, 8)}, {"b": _x(4, 8), "c": _x(4)}, {"transB": 1, "alpha": 0.5}, 1),
             ({"a": _x(3, 8)}, {"b": _x(8, 4), "c": _x(1, 4)}, {"beta": 2.0}, 1)],
    "MaxPool": [({"x": _x(1, 3, 9, 9)}, {}, {"kernel_shape": [3, 3], "strides": [2, 2],
                                             "pads": [1, 1, 1, 1]}, 1),
                ({"x": _x(1, 3, 8, 8)}, {}, {"kernel_shape": [3, 3], "strides": [2, 2],
                                             "ceil_mode": 1}, 1)],
    "AveragePool": [({"x": _x(1, 3, 8, 8)}, {}, {"kernel_shape": [2, 2], "strides": [2, 2]}, 1),
                    ({"x": _x(1, 3, 8, 8)}, {}, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
                                                 "count_include_pad": 1}, 1)],
    "GlobalAveragePool": [({"x": _x(1, 3, 5, 5)}, {}, {}, 1)],
    "GlobalMaxPool": [({"x": _x(1, 3, 5, 5)}, {}, {}, 1)],
    "BatchNormalization": [({"x": _x(1, *shape)}, {"s": _x(3), "bb": _x(3), "m": _x(3),
                                                   "v": _x(3, lo=0.5, hi=2)}, {}, 1)
                           for shape in ((3, 4, 4), (3,), (3, 7))],
    # GPT-2's causal mask (constant condition, lowest-float fill), both values computed, a
    # computed condition, and broadcasting of every operand
    "Where": [({"a": _x(1, 2, 6, 6)}, {"c": np.tril(np.ones((6, 6), bool)),
                                       "b": np.array(np.finfo(F).min, F)}, {}, 1),
              ({"a": _x(1, 3, 5), "b": _x(1, 3, 5)}, {"c": RNG.uniform(size=(3, 1)) > 0.5}, {}, 1),
              ({"c": RNG.uniform(size=(1, 3, 5)) > 0.5, "a": _x(1, 3, 5)},
               {"b": np.array(-1e4, F)}, {}, 1),
              ({"c": RNG.uniform(size=(1, 1, 5)) > 0.5, "a": _x(1, 3, 1), "b": _x(1, 1, 5)},
               {}, {}, 1),
              ({"b": _x(1, 2, 4)}, {"c": RNG.uniform(size=(2, 4)) > 0.5, "a": _x(4)}, {}, 1)],
    "LayerNormalization": [({"x": _x(1, 5, 8)}, {"s": _x(8), "bb": _x(8)}, {}, 1),
                           ({"x": _x(1, 3, 4, 6)}, {"s": _x(4, 6)}, {"axis": 2}, 1)],
    "InstanceNormalization": [({"x": _x(1, 3, 4, 4)}, {"s": _x(3), "bb": _x(3)}, {}, 1),
                              ({"x": _x(1, 3, 10)}, {"s": _x(3), "bb": _x(3)}, {}, 1)],
    # wav2vec2's feature extractor: GroupNorm(512, 512) on (1, C, L)
    "GroupNormalization": [({"x": _x(1, 4, 3, 3)}, {"s": _x(2), "bb": _x(2)},
                            {"num_groups": 2}, 1),
                           ({"x": _x(1, 4, 12)}, {"s": _x(4), "bb": _x(4)},
                            {"num_groups": 4}, 1)],
    "Relu": [(U, {}, {}, 1)], "Sigmoid": [(U, {}, {}, 1)], "Tanh": [(U, {}, {}, 1)],
    "HardSwish": [({"x": _x(1, 6, lo=-5, hi=5)}, {}, {}, 1)],
    "LeakyRelu": [(U, {}, {"alpha": 0.1}, 1)],
    "PRelu": [({"x": _x(1, 3, 4, 4)}, {"s": _x(3, 1, 1)}, {}, 1),
              ({"x": _x(1, 6)}, {"s": np.array([0.2], F)}, {}, 1)],
    "Elu": [(U, {}, {"alpha": 0.7}, 1)], "Celu": [(U, {}, {"alpha": 1.5}, 1)],
    "Selu": [(U, {}, {}, 1)], "Mish": [(U, {}, {}, 1)], "Erf": [(U, {}, {}, 1)],
    "Gelu": [(U, {}, {}, 1), (U, {}, {"approximate": "tanh"}, 1)],
    "HardSigmoid": [({"x": _x(1, 6, lo=-4, hi=4)}, {}, {"alpha": 0.3, "beta": 0.4}, 1)],
    "Softplus": [({"x": _x(1, 6, lo=-10, hi=10)}, {}, {}, 1)],
    "Clip": [({"x": _x(1, 6, lo=-8, hi=8)}, {"lo": np.array(0, F), "hi": np.array(6, F)}, {}, 1)],
    "Softmax": [({"x": _x(1, 4, 7)}, {}, {}, 1), ({"x": _x(1, 3, 4, 5)}, {}, {"axis": 1}, 1),
                # masked attention rows: filled with float32's lowest value, in part and whole
                # (DeBERTa's query mask; the Vulkan Softmax's running max starts at -1e8)
                ({"x": _masked_rows(1, 2, 4, 7)}, {}, {}, 1)],
    "LogSoftmax": [({"x": _x(1, 4, 7)}, {}, {}, 1),
                   ({"x": _masked_rows(1, 4, 7, lowest_in_part=False)}, {}, {}, 1)],
    "Add": [({"a": _x(1, 3, 4, 5), "b": _x(1, 3, 4, 5)}, {}, {}, 1),
            ({"a": _x(1, 3, 4, 5)}, {"b": _x(5)}, {}, 1),
            ({"a": _x(1, 1, 1, 5), "b": _x(1, 3, 4, 5)}, {}, {}, 1)],
    "Sub": [({"a": _x(1, 3, 4, 5)}, {"b": np.array(1.5, F)}, {}, 1),
            ({"b": _x(1, 3, 4, 5)}, {"a": np.array(1.5, F)}, {}, 1)],
    "Mul": [({"a": _x(1, 3, 4, 5)}, {"b": _x(3, 1, 1)}, {}, 1)],
    "Div": [({"a": _x(1, 2, 5), "b": _x(1, 2, 1, lo=1, hi=2)}, {}, {}, 1),
            ({"b": _x(1, 2, 5, lo=1, hi=2)}, {"a": _x(1, 1, 5)}, {}, 1)],
    "Pow": [({"a": _x(1, 2, 5, lo=0.5, hi=2)}, {"b": np.array(2.0, F)}, {}, 1)],
    "Max": [({"a": _x(1, 2, 5), "b": _x(1, 2, 5)}, {}, {}, 1)],
    "Min": [({"a": _x(1, 2, 5)}, {"b": _x(1, 5)}, {}, 1)],
    **{op: [({"x": _x(1, 2, 6, lo=lo, hi=hi)}, {}, {}, 1)] for op, lo, hi in (
        ("Abs", -2, 2), ("Neg", -2, 2), ("Floor", -3, 3), ("Ceil", -3, 3), ("Sqrt", 0.1, 4),
        ("Exp", -2, 2), ("Log", 0.1, 4), ("Sin", -3, 3), ("Cos", -3, 3), ("Tan", -1, 1),
        ("Asin", -0.9, 0.9), ("Acos", -0.9, 0.9), ("Atan", -3, 3), ("Reciprocal", 0.5, 2),
        ("Round", -3.3, 3.3))},
    "Sum": [({"a": _x(1, 3, 4), "b": _x(1, 3, 4), "c": _x(1, 1, 4)}, {}, {}, 1),
            ({"a": _x(1, 3, 4)}, {"b": _x(4)}, {}, 1)],
    "Mean": [({"a": _x(1, 3, 4), "b": _x(1, 3, 4)}, {}, {}, 1)],
    "Softsign": [(U, {}, {}, 1)],
    "CumSum": [({"x": _x(1, 3, 4)}, {"axis": np.array(2, np.int64)}, {}, 1),
               ({"x": _x(1, 3, 4, 5)}, {"axis": np.array(1, np.int64)}, {}, 1)],
    "Tile": [({"x": _x(1, 2, 3)}, {"r": _i(1, 2, 3)}, {}, 1)],
    "Expand": [({"x": _x(1, 3, 1)}, {"s": _i(1, 3, 4)}, {}, 1),
               ({"x": _x(4)}, {"s": _i(1, 2, 3, 4)}, {}, 1)],
    "DepthToSpace": [({"x": _x(1, 8, 2, 3)}, {}, {"blocksize": 2, "mode": "DCR"}, 1),
                     ({"x": _x(1, 8, 2, 3)}, {}, {"blocksize": 2, "mode": "CRD"}, 1)],
    "SpaceToDepth": [({"x": _x(1, 2, 4, 6)}, {}, {"blocksize": 2}, 1)],
    "Identity": [(U, {}, {}, 1)], "Dropout": [(U, {}, {}, 1)],
    "Cast": [({"x": _x(1, 6)}, {}, {"to": TensorProto.FLOAT}, 1)],
    **{op: [({"x": _x(1, 3, 4, 5)}, {"axes": _i(1)}, {"keepdims": 1}, 1),
            ({"x": _x(1, 3, 4, 5, lo=0.5, hi=1.5)}, {"axes": _i(2, 3)}, {"keepdims": 0}, 1)]
       for op in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                  "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp")},
    "Reshape": [({"x": _x(1, 3, 4, 5)}, {"shape": _i(1, 12, 5)}, {}, 1),
                ({"x": _x(1, 32, 4, 4)}, {"shape": _i(1, 2, 16, 1, 4, 4)}, {}, 1)],
    "Flatten": [({"x": _x(1, 3, 4, 5)}, {}, {"axis": 1}, 1)],
    "Squeeze": [({"x": _x(1, 3, 1, 5)}, {"axes": _i(2)}, {}, 1)],
    "Unsqueeze": [({"x": _x(1, 3, 5)}, {"axes": _i(1)}, {}, 1)],
    "Transpose": [({"x": _x(1, 3, 4, 5)}, {}, {"perm": [0, 2, 3, 1]}, 1),
                  ({"x": _x(1, 4, 6)}, {}, {"perm": [0, 2, 1]}, 1),
                  ({"x": _x(1, 2, 3, 4, 5)}, {}, {"perm": [0, 4, 2, 1, 3]}, 1)],
    "Concat": [({"a": _x(1, 2, 4), "b": _x(1, 3, 4)}, {}, {"axis": 1}, 1),
               ({"a": _x(1, 2, 4)}, {"b": _x(1, 2, 3)}, {"axis": -1}, 1)],
    "Split": [({"x": _x(1, 6, 4)}, {"split": _i(2, 4)}, {"axis": 1}, 2),
              ({"x": _x(1, 3, 6)}, {}, {"axis": 2, "num_outputs": 3}, 3)],
    "Slice": [({"x": _x(1, 6, 8)}, {"starts": _i(1, 2), "ends": _i(5, 100), "axes": _i(1, 2)},
               {}, 1),
              # Swin's patch merging x[:, 1::2, 0::2, :], LeViT's subsample, an odd axis whose
              # tail row is dropped, a step-1 crop beside a strided axis
              ({"x": _x(1, 8, 8, 6)}, {"starts": _i(1, 0), "ends": _i(100, 100), "axes": _i(1, 2),
                                       "steps": _i(2, 2)}, {}, 1),
              ({"x": _x(1, 7, 9)}, {"starts": _i(2, 1), "ends": _i(7, 8), "axes": _i(1, 2),
                                    "steps": _i(3, 2)}, {}, 1),
              ({"x": _x(1, 3, 12, 5)}, {"starts": _i(1, 1), "ends": _i(3, 12), "axes": _i(1, 2),
                                        "steps": _i(1, 4)}, {}, 1)],
    "Gather": [({"x": _x(1, 5, 8)}, {"i": np.array(2, np.int64)}, {"axis": 1}, 1),
               ({"x": _x(1, 3, 2, 8)}, {"i": np.array(1, np.int64)}, {"axis": 1}, 1)],
    "Pad": [({"x": _x(1, 2, 4, 5)}, {"pads": _i(0, 0, 1, 2, 0, 0, 2, 1),
                                     "v": np.array(0.5, F)}, {}, 1),
            ({"x": _x(1, 2, 4, 5)}, {"pads": _i(0, 0, 1, 1, 0, 0, 1, 1)}, {"mode": "reflect"}, 1),
            ({"x": _x(1, 2, 4, 5)}, {"pads": _i(0, 1, 1, 0, 0, 1, 0, 2)}, {"mode": "edge"}, 1)],
    "Resize": [({"x": _x(1, 2, 4, 5)}, {"roi": np.zeros(0, F), "scales": np.array([1, 1, 2, 2], F)},
                {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                 "nearest_mode": "floor"}, 1),
               ({"x": _x(1, 2, 4, 5)}, {"roi": np.zeros(0, F), "scales": np.array([1, 1, 2, 2], F)},
                {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}, 1),
               ({"x": _x(1, 2, 4, 5)}, {"roi": np.zeros(0, F), "scales": np.array([1, 1, 2, 2], F)},
                {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, 1)],
}
# the embedding form of Gather reads int64 ids from a model input
EMBED_CASE = ({"ids": np.array([[3, 0, 7, 7, 1]], np.int64)}, {"table": _x(10, 4)}, {}, 1)

#: inputs whose order in the ONNX node differs from (activations + constants)
_ORDER = {"Sub": ["a", "b"], "Slice": ["x", "starts", "ends", "axes", "steps"], "Div": ["a", "b"], "Where": ["c", "a", "b"],
          "Gather": ["table", "x", "ids", "i"], "Resize": ["x", "roi", "scales"],
          "Pad": ["x", "pads", "v"]}


def _model(op: str, acts: dict, consts: dict, attrs: dict, n_out: int) -> ir.Model:
    names = list(acts) + list(consts)
    if op in _ORDER:
        names = [n for n in _ORDER[op] if n in names]
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype),
                                            a.shape) for n, a in acts.items()]
    outs = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, names, outs, name=f"{op.lower()}_node", **attrs)
    graph = helper.make_graph([node], op, inputs,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                               for o in outs],
                              [numpy_helper.from_array(c, n) for n, c in consts.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    # output shapes from onnxruntime (shape inference does not cover every op, e.g. GroupNorm)
    results = _ort(proto, acts)
    proto.graph.ClearField("output")
    proto.graph.output.extend(helper.make_tensor_value_info(o, TensorProto.FLOAT, results[o].shape)
                        for o in outs)
    proto = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    return ir.serde.deserialize_model(proto)


def _ort(proto: onnx.ModelProto, feeds: dict) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def _cases() -> list:
    params = []
    for op, cases in CASES.items():
        for i, case in enumerate(cases):
            params.append(pytest.param(op, case, id=f"{op}-{i}"))
    params.append(pytest.param("Gather", EMBED_CASE, id="Gather-embed"))
    return params


#: GLSL leaves asin/acos precision to the driver: lavapipe's is ~2e-4 of the output range
VULKAN_TOLERANCE = {"Asin": 5e-4, "Acos": 5e-4}
RUNTIMES = ["ncnn-cpu", pytest.param("ncnn-vulkan", marks=pytest.mark.vulkan)]


def _needs_vulkan(runtime: str) -> None:
    if runtime == "ncnn-vulkan":
        require_vulkan()


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("op,case", _cases())
def test_op_matches_onnxruntime(op: str, case: tuple, runtime: str, tmp_path) -> None:
    _needs_vulkan(runtime)
    acts, consts, attrs, n_out = case
    model = _model(op, acts, consts, attrs, n_out)
    assert REGISTRY.why_not(model.graph.node(0)) is None
    emit_model(model, tmp_path, "model.param", "fp32")
    session = get(runtime).load(tmp_path / "model.param")
    got = session.run(acts)
    want = _ort(ir.serde.serialize_model(model), acts)
    for name, ref in want.items():
        assert got[name].shape == ref.shape, name
        stats = error_stats(ref, got[name])
        limit = VULKAN_TOLERANCE.get(op, 1e-4) if runtime == "ncnn-vulkan" else 1e-4
        assert stats.max_rel_err <= limit, (op, name, stats)


#: tested as int8 layers of QDQ graphs in test_vulkan_quant.py (a lone Q or DQ is no model)
QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}


def test_every_registered_op_is_tested() -> None:
    from tests.delegates.test_vulkan_logic import CASES as LOGIC_CASES  # bool-typed, own file

    claimed = {rule.op_type for rule in REGISTRY}
    logic = {name.split("-")[0] for name in LOGIC_CASES}
    assert claimed - set(CASES) - QDQ_OPS - logic == set()
    for rule in REGISTRY:
        assert callable(rule.emit), rule.op_type


def test_unsupported_node_is_refused_with_the_reason() -> None:
    model = _model("Gather", {"x": _x(1, 5, 8)}, {"i": np.array([0, 2], np.int64)},
                   {"axis": 1}, 1)
    reason = REGISTRY.why_not(model.graph.node(0))
    assert reason is not None and "contiguous" in reason


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_more_axes_than_ncnn_holds_pass_through_reshape_and_transpose(runtime, tmp_path) -> None:
    """MobileViT's unfold: (1,C,H,W) -> 6-D -> permute -> 4-D; ncnn gets 4-D block swaps."""
    _needs_vulkan(runtime)
    x = _x(1, 8, 6, 6)
    nodes = [helper.make_node("Reshape", ["x", "s1"], ["v"]),
             helper.make_node("Transpose", ["v"], ["t"], perm=[0, 3, 5, 2, 4, 1]),
             helper.make_node("Reshape", ["t", "s2"], ["y"])]
    graph = helper.make_graph(
        nodes, "unfold", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 4, 9, 8))],
        [numpy_helper.from_array(_i(1, 8, 3, 2, 3, 2), "s1"),
         numpy_helper.from_array(_i(1, 4, 9, 8), "s2")])
    proto = onnx.shape_inference.infer_shapes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]))
    emit_model(ir.serde.deserialize_model(proto), tmp_path, "model.param", "fp32")
    got = get(runtime).load(tmp_path / "model.param").run({"x": x})["y"]
    want = x.reshape(1, 8, 3, 2, 3, 2).transpose(0, 3, 5, 2, 4, 1).reshape(1, 4, 9, 8)
    np.testing.assert_array_equal(got, want)
    assert "Permute" in (tmp_path / "model.param").read_text()
