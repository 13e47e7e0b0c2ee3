"""Every op the TFLite registry claims is emitted and executed on LiteRT, and compared with
onnxruntime on the same single-node ONNX graph (inputs in NCHW, so layouts are exercised too).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeexport import ir as eir
from edgeexport.delegates.tflite import REGISTRY, emit_model
from edgeexport.errors import UnsupportedOpError
from edgeexport.validate import error_stats

RNG = np.random.default_rng(0)
F = np.float32


def _x(*shape: int, lo: float = -2, hi: float = 2) -> np.ndarray:
    return RNG.uniform(lo, hi, shape).astype(F)


# op -> list of cases: (activations {name: array}, constants {name: array}, attrs, n_outputs)
CASES: dict[str, list[tuple]] = {
    "Conv": [({"x": _x(1, 3, 9, 9)}, {"w": _x(8, 3, 3, 3), "b": _x(8)},
              {"pads": [1, 1, 1, 1], "strides": [2, 2]}, 1),
             ({"x": _x(1, 4, 8, 8)}, {"w": _x(8, 1, 3, 3)},
              {"group": 4, "pads": [1, 1, 1, 1]}, 1),
             ({"x": _x(1, 4, 8, 8)}, {"w": _x(6, 2, 3, 3)}, {"group": 2, "dilations": [2, 2]}, 1),
             ({"x": _x(1, 3, 16)}, {"w": _x(5, 3, 3)}, {"pads": [1, 1]}, 1),
             # wav2vec2's positional conv: grouped 1-D (SPLIT, a CONV_2D per group, CONCAT)
             ({"x": _x(1, 8, 20)}, {"w": _x(8, 2, 5), "b": _x(8)},
              {"group": 4, "pads": [2, 2]}, 1),
             ({"x": _x(1, 6, 17)}, {"w": _x(6, 1, 3)}, {"group": 6, "strides": [2]}, 1)],
    "ConvTranspose": [({"x": _x(1, 4, 5, 5)}, {"w": _x(4, 3, 3, 3), "b": _x(3)},
                       {"strides": [2, 2], "pads": [1, 1, 1, 1]}, 1)],
    "MatMul": [({"a": _x(2, 5, 8)}, {"b": _x(8, 3)}, {}, 1),
               ({"a": _x(2, 5, 8), "b": _x(2, 8, 3)}, {}, {}, 1)],
    "Gemm": [({"a": _x(3, 8)}, {"b": _x(4, 8), "c": _x(4)}, {"transB": 1, "alpha": 0.5}, 1)],
    "MaxPool": [({"x": _x(1, 3, 9, 9)}, {}, {"kernel_shape": [3, 3], "strides": [2, 2],
                                             "pads": [1, 1, 1, 1]}, 1),
                ({"x": _x(1, 3, 8, 8)}, {}, {"kernel_shape": [3, 3], "strides": [2, 2],
                                             "ceil_mode": 1}, 1)],
    "AveragePool": [({"x": _x(1, 3, 9)}, {}, {"kernel_shape": [3], "strides": [2],
                                              "pads": [1, 1], "count_include_pad": 1}, 1),({"x": _x(1, 3, 8, 8)}, {}, {"kernel_shape": [2, 2], "strides": [2, 2]}, 1),
                    ({"x": _x(1, 3, 8, 8)}, {}, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
                                                 "count_include_pad": 1}, 1)],
    "GlobalAveragePool": [({"x": _x(1, 3, 5, 5)}, {}, {}, 1)],
    "GlobalMaxPool": [({"x": _x(1, 3, 5, 5)}, {}, {}, 1)],
    "BatchNormalization": [({"x": _x(1, 3, 4, 4)}, {"s": _x(3), "bb": _x(3), "m": _x(3),
                                                    "v": _x(3, lo=0.5, hi=2)}, {}, 1)],
    "LayerNormalization": [({"x": _x(2, 5, 8)}, {"s": _x(8), "bb": _x(8)}, {}, 1),
                           ({"x": _x(2, 5, 8)}, {"s": _x(8), "bb": _x(8)}, {"axis": 1}, 3),
                           ({"x": _x(1, 2, 3), "s": _x(1, 2, 3), "bb": _x(1, 2, 3)}, {},
                            {"axis": 0}, 1)],
    "Relu": [({"x": _x(2, 6)}, {}, {}, 1)], "Sigmoid": [({"x": _x(2, 6)}, {}, {}, 1)],
    "Tanh": [({"x": _x(2, 6)}, {}, {}, 1)], "HardSwish": [({"x": _x(2, 6, lo=-5, hi=5)}, {}, {}, 1)],
    "LeakyRelu": [({"x": _x(2, 6)}, {}, {"alpha": 0.1}, 1)],
    "PRelu": [({"x": _x(1, 3, 4, 4)}, {"s": _x(3, 1, 1)}, {}, 1)],
    "Elu": [({"x": _x(2, 6)}, {}, {}, 1)],
    "Gelu": [({"x": _x(2, 6)}, {}, {}, 1), ({"x": _x(2, 6)}, {}, {"approximate": "tanh"}, 1)],
    "HardSigmoid": [({"x": _x(2, 6, lo=-4, hi=4)}, {}, {}, 1)],
    "Softplus": [({"x": _x(2, 6, lo=-30, hi=30)}, {}, {}, 1)],
    "Clip": [({"x": _x(2, 6, lo=-8, hi=8)}, {"lo": np.array(0, F), "hi": np.array(6, F)}, {}, 1),
             ({"x": _x(2, 6)}, {"lo": np.array(-0.5, F), "hi": np.array(1.5, F)}, {}, 1)],
    "Softmax": [({"x": _x(2, 3, 6)}, {}, {"axis": -1}, 1), ({"x": _x(2, 3, 6)}, {}, {"axis": 1}, 1)],
    "LogSoftmax": [({"x": _x(2, 6)}, {}, {}, 1)],
    "Sum": [({"a": _x(2, 3), "b": _x(2, 3), "c": _x(2, 3)}, {}, {}, 1)],
    "Mean": [({"a": _x(2, 3), "b": _x(2, 3)}, {}, {}, 1)],
    "Reciprocal": [({"x": _x(2, 6, lo=0.5, hi=3)}, {}, {}, 1)],
    "Where": [({"c": RNG.random((2, 3)) > 0.5, "a": _x(2, 3), "b": _x(2, 3)}, {}, {}, 1)],
    "Mod": [({"a": RNG.integers(-9, 9, (2, 3)).astype(np.int32)},
             {"b": np.array([2, 3, 4], np.int32)}, {}, 1)],
    "ReduceMean": [({"x": _x(2, 3, 4)}, {"axes": np.array([1], np.int64)}, {"keepdims": 0}, 1)],
    "ReduceSum": [({"x": _x(2, 3, 4)}, {"axes": np.array([-1], np.int64)}, {}, 1)],
    "ReduceMax": [({"x": _x(2, 3, 4)}, {"axes": np.array([0, 2], np.int64)}, {}, 1)],
    "ReduceMin": [({"x": _x(2, 3, 4)}, {"axes": np.array([1], np.int64)}, {}, 1)],
    "ReduceProd": [({"x": _x(2, 3, 4, lo=0.5, hi=1.5)}, {"axes": np.array([2], np.int64)}, {}, 1)],
    "ReduceL1": [({"x": _x(2, 3, 4)}, {"axes": np.array([2], np.int64)}, {}, 1)],
    "ReduceL2": [({"x": _x(2, 3, 4)}, {"axes": np.array([2], np.int64)}, {}, 1)],
    "ReduceSumSquare": [({"x": _x(2, 3, 4)}, {"axes": np.array([2], np.int64)}, {}, 1)],
    "ArgMax": [({"x": _x(2, 3, 4)}, {}, {"axis": 1}, 1)],
    "ArgMin": [({"x": _x(2, 3, 4)}, {}, {"axis": 2, "keepdims": 0}, 1)],
    "CumSum": [({"x": _x(2, 5)}, {"axis": np.array(1, np.int32)}, {}, 1)],
    "Reshape": [({"x": _x(2, 3, 4)}, {"s": np.array([6, 4], np.int64)}, {}, 1)],
    "Flatten": [({"x": _x(2, 3, 4)}, {}, {"axis": 1}, 1)],
    "Squeeze": [({"x": _x(2, 1, 4)}, {"a": np.array([1], np.int64)}, {}, 1)],
    "Unsqueeze": [({"x": _x(2, 4)}, {"a": np.array([1], np.int64)}, {}, 1)],
    "Transpose": [({"x": _x(2, 3, 4)}, {}, {"perm": [2, 0, 1]}, 1)],
    "Concat": [({"a": _x(2, 3), "b": _x(2, 5)}, {}, {"axis": 1}, 1)],
    "Split": [({"x": _x(2, 6)}, {"s": np.array([2, 4], np.int64)}, {"axis": 1}, 2)],
    "Slice": [({"x": _x(4, 6)}, {"st": np.array([1, -1], np.int64),
                                 "en": np.array([3, -7], np.int64),
                                 "ax": np.array([0, 1], np.int64),
                                 "sp": np.array([1, -2], np.int64)}, {}, 1)],
    "Gather": [({"x": _x(5, 4)}, {"i": np.array([4, 0, -1], np.int64)}, {"axis": 0}, 1),
               ({"i": np.array([[1, 3]], np.int64)}, {"x": _x(5, 4)}, {"axis": 0}, 1)],
    "GatherND": [({"x": _x(3, 4, 2)}, {"i": np.array([[[2, -1], [0, 3]]], np.int64)}, {}, 1),
                 ({"x": _x(3, 4, 2), "i": np.array([[1, 3], [2, 0], [0, 1]], np.int64)}, {},
                  {}, 1)],
    "Expand": [({"x": _x(3, 1)}, {"s": np.array([2, 3, 4], np.int64)}, {}, 1)],
    "Tile": [({"x": _x(2, 3)}, {"r": np.array([2, 1], np.int64)}, {}, 1)],
    "Pad": [({"x": _x(1, 2, 3, 3)}, {"p": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)}, {}, 1),
            ({"x": _x(1, 2, 4, 4)}, {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)},
             {"mode": "reflect"}, 1)],
    "DepthToSpace": [({"x": _x(1, 8, 2, 3)}, {}, {"blocksize": 2}, 1)],
    "SpaceToDepth": [({"x": _x(1, 2, 4, 6)}, {}, {"blocksize": 2}, 1)],
    "Resize": [({"x": _x(1, 2, 4, 4)}, {"r": np.zeros(0, F), "sc": np.array([1, 1, 2, 2], F)},
                {"mode": "linear"}, 1),
               ({"x": _x(1, 2, 4, 4)}, {"r": np.zeros(0, F), "sc": np.array([1, 1, 2, 2], F)},
                {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                 "nearest_mode": "floor"}, 1)],
    "Identity": [({"x": _x(2, 3)}, {}, {}, 1)], "Dropout": [({"x": _x(2, 3)}, {}, {}, 1)],
    "Cast": [({"x": _x(2, 3, lo=-9, hi=9)}, {}, {"to": TensorProto.INT32}, 1)],
    "Constant": [({"x": _x(2, 3)}, {}, {}, 1)],
}
_BIN = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"}
_CMP = {"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"}
for _op in _BIN | _CMP:
    CASES[_op] = [({"a": _x(2, 3, 4, lo=0.5, hi=2)}, {"b": _x(3, 1, lo=0.5, hi=2)}, {}, 1),
                  ({"a": _x(2, 3, 4, lo=0.5, hi=2), "b": _x(4, lo=0.5, hi=2)}, {}, {}, 1)]
for _op in ("And", "Or", "Xor"):
    CASES[_op] = [({"a": RNG.random((2, 3)) > 0.5, "b": RNG.random((2, 3)) > 0.5}, {}, {}, 1)]
CASES["Not"] = [({"a": RNG.random((2, 3)) > 0.5}, {}, {}, 1)]
for _op in ("Abs", "Neg", "Exp", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos"):
    CASES[_op] = [({"x": _x(2, 6)}, {}, {}, 1)]
for _op in ("Atan", "Tan", "Sinh", "Cosh", "Asinh", "Erf", "Softsign", "Mish"):
    CASES[_op] = [({"x": _x(2, 6)}, {}, {}, 1)]
for _op in ("Asin", "Acos", "Atanh"):
    CASES[_op] = [({"x": _x(2, 6, lo=-0.95, hi=0.95)}, {}, {}, 1)]
CASES["Acosh"] = [({"x": _x(2, 6, lo=1.05, hi=4)}, {}, {}, 1)]
CASES["Selu"] = [({"x": _x(2, 6)}, {}, {}, 1)]
CASES["Celu"] = [({"x": _x(2, 6)}, {}, {"alpha": 0.5}, 1)]
CASES["Elu"].append(({"x": _x(2, 6)}, {}, {"alpha": 0.3}, 1))
CASES["Gemm"].append(({"a": _x(8, 3), "b": _x(8, 4)}, {"c": _x(4)},
                      {"transA": 1, "beta": 2.0, "alpha": 0.5}, 1))
CASES["IsNaN"] = [({"x": np.array([[1, np.nan, 2]], F)}, {}, {}, 1)]
CASES["IsInf"] = [({"x": np.array([[1, np.inf, -np.inf]], F)}, {}, {}, 1),
                  ({"x": np.array([[1, np.inf, -np.inf]], F)}, {}, {"detect_positive": 0}, 1)]
CASES["Trilu"] = [({"x": _x(2, 4, 5)}, {"k": np.array(1, np.int64)}, {"upper": 0}, 1)]
CASES["ReduceLogSumExp"] = [({"x": _x(2, 3, 4, lo=-30, hi=30)}, {"axes": np.array([1], np.int64)},
                             {"keepdims": 0}, 1)]
CASES["InstanceNormalization"] = [({"x": _x(2, 3, 4, 4)}, {"s": _x(3), "bb": _x(3)}, {}, 1)]
CASES["GroupNormalization"] = [({"x": _x(2, 4, 3, 3)}, {"s": _x(2), "bb": _x(2)},
                                {"num_groups": 2}, 1)]
CASES["TopK"] = [({"x": _x(2, 7, 5)}, {"k": np.array([3], np.int64)}, {"axis": 1}, 2),
                 ({"x": _x(3, 6)}, {"k": np.array([6], np.int64)}, {"largest": 0}, 2),
                 ({"x": _x(1, 3, 4, 5)}, {"k": np.array([2], np.int64)}, {"axis": -1}, 2)]
CASES["Shape"] = [({"x": _x(2, 2)}, {}, {}, 1)]
CASES["Size"] = [({"x": _x(2, 3)}, {}, {}, 1)]
CASES["ConstantOfShape"] = [({"x": _x(2, 3)}, {"s": np.array([2, 3], np.int64)}, {}, 1)]
CASES["Range"] = [({"x": _x(1, 4)}, {"a": np.array(1, np.int64), "b": np.array(9, np.int64),
                                     "c": np.array(2, np.int64)}, {}, 1)]
for _op in ("Sqrt", "Log"):
    CASES[_op] = [({"x": _x(2, 6, lo=0.1, hi=4)}, {}, {}, 1)]


def _model(op: str, acts: dict, consts: dict, attrs: dict, n_out: int) -> onnx.ModelProto:
    """One node: activations are graph inputs, constants initializers, in the ONNX input order
    given by the dict orders (activations first unless a case lists a constant first)."""
    names = list(acts) + list(consts)
    if op in ("Gather", "GatherND") and "i" in acts:
        names = ["x", "i"]
    if op == "Mod":
        names = ["a", "b"]
    if op == "Resize":
        names = ["x", "r", "sc"]
    if op in ("Shape", "Size", "ConstantOfShape", "Range"):
        # computed at conversion time: add it to an activation so the graph has an input
        k = names[1:] if op in ("ConstantOfShape", "Range") else ["x"]
        node = helper.make_node(op, k, ["k"], **attrs)
        cast = helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT)
        add = helper.make_node("Add", ["x", "kf"], ["y0"])
        nodes = [node, cast, add]
    elif op == "Constant":
        node = helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(_x(2, 3)))
        add = helper.make_node("Add", ["x", "k"], ["y0"])
        nodes = [node, add]
    else:
        nodes = [helper.make_node(op, names, [f"y{i}" for i in range(n_out)], **attrs)]
    ins = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in acts.items()]
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items()]
    g = helper.make_graph(nodes, op, ins, [], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", eir.OPSET)])
    m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    vi = {v.name: v for v in m.graph.value_info}
    first = next(iter(acts.values()))
    m.graph.output.extend(vi.get(f"y{i}") or helper.make_tensor_value_info(  # function ops
        f"y{i}", TensorProto.FLOAT, first.shape) for i in range(n_out))
    return m


def _run_case(op: str, case: tuple, tmp_path, precision: str = "fp32") -> None:
    import onnxruntime as ort

    from edgeexport.runtimes.litert import LiteRtSession

    acts, consts, attrs, n_out = case
    proto = _model(op, acts, consts, attrs, n_out)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, acts)
    model = ir.serde.deserialize_model(proto)
    emitted = emit_model(model, precision)
    path = tmp_path / f"{op}.tflite"
    path.write_bytes(emitted.data)
    got = LiteRtSession(path).run(acts)
    for i, w in enumerate(want):
        g = got[f"y{i}"]
        assert g.shape == w.shape, (op, g.shape, w.shape)
        if w.dtype.kind in "biu":
            np.testing.assert_array_equal(g.astype(w.dtype), w, err_msg=op)
        else:
            s = error_stats(w, g)
            assert s.max_rel_err <= 1e-4 or s.max_abs_err <= 1e-5, (op, s)


@pytest.mark.parametrize("op", sorted(CASES))
def test_op_on_litert(op: str, tmp_path) -> None:
    for case in CASES[op]:
        _run_case(op, case, tmp_path)


def test_every_registered_op_has_a_case() -> None:
    """The registry claims nothing that this file does not execute on LiteRT."""
    registered = {rule.op_type for rule in REGISTRY}
    assert registered - set(CASES) <= {"QuantizeLinear", "DequantizeLinear"}, \
        sorted(registered - set(CASES))
    assert all(rule.emit is not None for rule in REGISTRY)


def test_unsupported_op_names_op_node_and_targets(tmp_path) -> None:
    proto = _model("GatherElements", {"x": _x(2, 3)}, {"i": np.zeros((2, 3), np.int64)}, {}, 1)
    model = ir.serde.deserialize_model(proto)
    with pytest.raises(UnsupportedOpError) as err:
        emit_model(model, target="rpi")
    msg = str(err.value)
    assert "GatherElements" in msg and "rpi" in msg and "supported by" in msg


def test_fp16_weights_are_dequantized_once(tmp_path) -> None:
    from edgeexport.delegates.tflite import operator_names

    case = CASES["Conv"][0]
    proto = _model("Conv", *case)
    emitted = emit_model(ir.serde.deserialize_model(proto), "fp16")
    ops = operator_names(emitted.data)
    assert ops.count("DEQUANTIZE") == 1 and "CONV_2D" in ops


def test_slice_of_a_transposed_tensor_keeps_the_other_axes_whole(tmp_path) -> None:
    """Llama's rotate_half slices the last axis of q stored as (b, s, h, d) for a logical
    (b, h, s, d): every untouched axis must run to its end in the stored order."""
    import onnxruntime as ort

    from edgeexport.runtimes.litert import LiteRtSession

    x = _x(1, 6, 4, 8)
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1, 3]),
             helper.make_node("Slice", ["t", "st", "en", "ax"], ["y0"])]
    inits = [numpy_helper.from_array(np.array(v, np.int64), k)
             for k, v in (("st", [4]), ("en", [8]), ("ax", [3]))]
    g = helper.make_graph(nodes, "slice", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         x.shape)],
                          [helper.make_tensor_value_info("y0", TensorProto.FLOAT, (1, 4, 6, 4))],
                          inits)
    proto = onnx.shape_inference.infer_shapes(
        helper.make_model(g, opset_imports=[helper.make_opsetid("", eir.OPSET)]))
    want = ort.InferenceSession(proto.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    path = tmp_path / "slice.tflite"
    path.write_bytes(emit_model(ir.serde.deserialize_model(proto), "fp32").data)
    np.testing.assert_array_equal(LiteRtSession(path).run({"x": x})["y0"], want)
