"""Every op the coreml emitter maps, alone in a graph: emitted to an ML Program, executed by the
MIL interpreter and compared with the reference runtime (fp32 and fp16 programs).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeexport.delegates.coreml import REGISTRY, TARGET
from edgeexport.delegates.coreml.package import check_package
from edgeexport.runtimes import get as get_runtime
from edgeexport.runtimes import reference
from edgeexport.metrics import error_stats

F = TensorProto.FLOAT
RNG = np.random.default_rng(7)


@dataclass
class Case:
    """One op in a graph: runtime inputs (arrays), constant inputs, attributes."""

    op: str
    inputs: list[tuple[str, np.ndarray, bool]]  # (name, value, is_constant)
    attrs: dict[str, Any] = field(default_factory=dict)
    n_outputs: int = 1
    ios: int = 16
    fp16: bool = True
    tag: str = ""
    #: nodes run before the op (they produce some of its inputs), e.g. a QuantizeLinear
    pre: list[onnx.NodeProto] = field(default_factory=list)
    #: the op's input names when they differ from `inputs` (with `pre`)
    node_inputs: list[str] | None = None
    #: fp32 bound on max_rel_err when the mapping is deliberately inexact
    rel: float = 1e-5

    @property
    def id(self) -> str:
        return self.op + (f"-{self.tag}" if self.tag else "")


def build_model(case: Case) -> ir.Model:
    """An IR model holding one node of `case`, shapes inferred by onnx."""
    inputs, inits = [], []
    for name, arr, const in case.inputs:
        if name == "":
            continue
        if const:
            inits.append(numpy_helper.from_array(arr, name))
        else:
            dtype = helper.np_dtype_to_tensor_dtype(arr.dtype)
            inputs.append(helper.make_tensor_value_info(name, dtype, arr.shape))
    outs = [f"y{i}" for i in range(case.n_outputs)]
    names = case.node_inputs or [n for n, _, _ in case.inputs]
    while names and names[-1] == "":
        names.pop()
    node = helper.make_node(case.op, names, outs, name="n0",
                            **case.attrs)
    graph = helper.make_graph([*case.pre, node], "g", inputs,
                              [helper.make_tensor_value_info(o, 0, None) for o in outs], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    proto = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    for out in proto.graph.output:  # declared types from inference, for the emitter's checks
        for vi in proto.graph.value_info:
            if vi.name == out.name:
                out.CopyFrom(vi)
    return ir.serde.deserialize_model(proto)


def feeds_of(case: Case) -> dict[str, np.ndarray]:
    return {n: a for n, a, const in case.inputs if n and not const}


def emit(model: ir.Model, out: Path, precision: str, ios: int = 16) -> Path:
    ns = argparse.Namespace(precision=precision, ios=ios)
    out.mkdir(parents=True, exist_ok=True)
    return TARGET.emit(model, out, ns).path


def run_both(model: ir.Model, feeds: dict[str, np.ndarray], path: Path
             ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    want = reference.run(model, feeds)
    got = get_runtime("mil-interpreter").load(path).run(feeds)
    return want, got


def _x(*shape: int, lo: float = -2.0, hi: float = 2.0) -> np.ndarray:
    return RNG.uniform(lo, hi, shape).astype(np.float32)


def _c(arr: Any, dtype: Any = np.float32) -> np.ndarray:
    return np.asarray(arr, dtype=dtype)


def _unary(op: str, lo: float = -2.0, hi: float = 2.0, **attrs: Any) -> Case:
    return Case(op, [("x", _x(2, 3, 5, lo=lo, hi=hi), False)], attrs)


def _binary(op: str, lo: float = -2.0) -> Case:
    return Case(op, [("a", _x(2, 3, 4, lo=lo), False), ("b", _x(3, 1, lo=lo), False)])


def _reduce(op: str, keep: int, lo: float = -2.0) -> Case:
    return Case(op, [("x", _x(2, 3, 4, lo=lo), False), ("axes", _c([1], np.int64), True)],
                {"keepdims": keep}, tag=f"keep{keep}")


CASES: list[Case] = [
    Case("Conv", [("x", _x(1, 4, 9, 9), False), ("w", _x(6, 4, 3, 3), True),
                  ("b", _x(6), True)], {"pads": [1, 0, 2, 1], "strides": [2, 1]}),
    Case("Conv", [("x", _x(1, 4, 9, 9), False), ("w", _x(4, 1, 3, 3), True)],
         {"group": 4, "dilations": [2, 2], "auto_pad": "SAME_UPPER"}, tag="depthwise"),
    Case("ConvTranspose", [("x", _x(1, 4, 5, 6), False), ("w", _x(4, 3, 3, 2), True),
                           ("b", _x(3), True)],
         {"strides": [2, 3], "pads": [1, 0, 0, 1], "dilations": [1, 2]}),
    Case("ConvTranspose", [("x", _x(1, 4, 5, 5), False), ("w", _x(4, 2, 4, 4), True)],
         {"strides": [2, 2], "pads": [1, 1, 1, 1], "group": 2}, tag="grouped"),
    Case("MaxPool", [("x", _x(1, 3, 9, 9), False)],
         {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}),
    Case("AveragePool", [("x", _x(1, 3, 9, 9), False)],
         {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    Case("AveragePool", [("x", _x(1, 3, 8, 8), False)],
         {"kernel_shape": [2, 3], "pads": [0, 1, 0, 1], "count_include_pad": 1}, tag="incl"),
    Case("GlobalAveragePool", [("x", _x(1, 3, 5, 6), False)]),
    Case("GlobalMaxPool", [("x", _x(1, 3, 5, 6), False)]),
    Case("MatMul", [("a", _x(2, 5, 7), False), ("b", _x(7, 3), True)]),
    Case("MatMul", [("a", _x(2, 5, 7), False), ("b", _x(2, 7, 3), False)], tag="runtime"),
    Case("Gemm", [("a", _x(2, 7), False), ("b", _x(5, 7), True), ("c", _x(5), True)],
         {"transB": 1, "alpha": 0.5, "beta": 2.0}),
    Case("Gemm", [("a", _x(7, 2), False), ("b", _x(7, 5), False), ("c", _x(5), True)],
         {"transA": 1, "alpha": 1.5}, tag="runtime"),
    *[_unary(op) for op in ("Relu", "Sigmoid", "Tanh", "Softplus", "Softsign", "HardSwish",
                            "Abs", "Exp", "Erf", "Floor", "Ceil", "Sin", "Cos", "Sign", "Neg")],
    _unary("LeakyRelu", alpha=0.1),
    _unary("Elu", alpha=0.7),
    _unary("HardSigmoid", alpha=0.3, beta=0.4),
    _unary("Gelu"),
    Case("Gelu", [("x", _x(2, 3, 5), False)], {"approximate": "tanh"}, tag="tanh"),
    _unary("Softmax", axis=1),
    # HF's masked_fill(mask, finfo(float32).min): -inf in fp16 unless it saturates, and a
    # fully masked row (the second) would be NaN
    Case("Softmax", [("x", _x(2, 5), False),
                     ("m", _c([[0, -3.4028235e38, 0, 0, -3.4028235e38], [-3.4028235e38] * 5]),
                      True)], {"axis": -1}, tag="finfo_min_mask",
         pre=[helper.make_node("Add", ["x", "m"], ["xm"])], node_inputs=["xm"]),
    _unary("Sqrt", lo=0.1),
    _unary("Log", lo=0.1),
    _unary("Reciprocal", lo=0.5),
    Case("Clip", [("x", _x(2, 3, 5, lo=-8, hi=8), False), ("lo", _c(0.0), True),
                  ("hi", _c(6.0), True)], tag="relu6"),
    Case("Clip", [("x", _x(2, 3, 5), False), ("lo", _c(-1.0), True), ("hi", _c(0.5), True)]),
    Case("Clip", [("x", _x(2, 3, 5), False), ("lo", _c(-0.5), True)], tag="min"),
    *[_binary(op) for op in ("Add", "Sub", "Mul", "Div", "Max", "Min")],
    _binary("Pow", lo=0.2),
    Case("LayerNormalization", [("x", _x(2, 5, 8), False), ("s", _x(8), True),
                                ("b", _x(8), True)], {"axis": -1, "epsilon": 1e-5}),
    # BERT's epsilon (0 in fp16) on rows of equal values (DeiT's zero class tokens): no 0 / 0
    Case("LayerNormalization", [("x", np.repeat(_x(2, 5, 1), 8, -1), False), ("s", _x(8), True),
                                ("b", _x(8), True)], {"axis": -1, "epsilon": 1e-12},
         tag="tiny_eps_flat_rows"),
    Case("BatchNormalization", [("x", _x(1, 3, 4, 4), False), ("s", _x(3), True),
                                ("b", _x(3), True), ("m", _x(3), True),
                                ("v", _x(3, lo=0.5), True)], {"epsilon": 1e-3}),
    Case("InstanceNormalization", [("x", _x(1, 3, 4, 4), False), ("s", _x(3), True),
                                   ("b", _x(3), True)]),
    *[_reduce(op, k) for op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin",
                                "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp")
      for k in (0, 1)],
    _reduce("ReduceProd", 1, lo=0.5),
    Case("Reshape", [("x", _x(2, 3, 4), False), ("s", _c([0, -1], np.int64), True)]),
    Case("Transpose", [("x", _x(2, 3, 4), False)], {"perm": [2, 0, 1]}),
    Case("Flatten", [("x", _x(2, 3, 4, 5), False)], {"axis": 2}),
    Case("Squeeze", [("x", _x(2, 1, 4), False), ("a", _c([1], np.int64), True)]),
    Case("Unsqueeze", [("x", _x(2, 4), False), ("a", _c([0, -1], np.int64), True)]),
    Case("Concat", [("a", _x(2, 3), False), ("b", _x(2, 1), False), ("c", _x(2, 2), True)],
         {"axis": 1}),
    Case("Gather", [("x", _x(5, 4), True), ("i", _c([[0, 4], [2, 1]], np.int64), False)],
         {"axis": 0}, tag="embedding"),
    Case("Gather", [("x", _x(2, 5, 4), False), ("i", _c([-1, 0, 3], np.int64), True)],
         {"axis": 1}),
    Case("Gather", [("x", _x(2, 5, 4), False), ("i", _c(2, np.int64), True)], {"axis": 1},
         tag="scalar"),
    Case("Slice", [("x", _x(4, 6, 5), False), ("st", _c([1, -1], np.int64), True),
                   ("en", _c([100, 0], np.int64), True), ("ax", _c([0, 1], np.int64), True),
                   ("sp", _c([2, -2], np.int64), True)]),
    Case("Split", [("x", _x(2, 6), False), ("s", _c([2, 4], np.int64), True)], {"axis": 1},
         n_outputs=2),
    *[_unary(op, lo=-0.9, hi=0.9) for op in ("Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh",
                                             "Atanh", "Mish")],
    _unary("Selu"),
    _unary("Celu", alpha=0.8),
    _unary("LogSoftmax", axis=-1),
    Case("PRelu", [("x", _x(2, 3, 4), False), ("s", _x(3, 1, lo=0.0, hi=0.5), True)]),
    Case("Sum", [("a", _x(2, 3), False), ("b", _x(3), False), ("c", _x(2, 1), True)]),
    Case("Mean", [("a", _x(2, 3), False), ("b", _x(2, 3), False)]),
    *[Case(op, [("a", RNG.integers(0, 3, (2, 3)).astype(np.float32), False),
                ("b", RNG.integers(0, 3, (3,)).astype(np.float32), False)])
      for op in ("Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual")],
    *[Case(op, [("a", RNG.integers(0, 2, (2, 3)).astype(bool), False),
                ("b", RNG.integers(0, 2, (2, 3)).astype(bool), False)])
      for op in ("And", "Or", "Xor")],
    Case("Not", [("a", RNG.integers(0, 2, (2, 3)).astype(bool), False)]),
    Case("Where", [("c", RNG.integers(0, 2, (2, 3)).astype(bool), False),
                   ("a", _x(2, 3), False), ("b", _x(3), True)]),
    Case("ArgMax", [("x", _x(2, 5, 3), False)], {"axis": 1, "keepdims": 0}, fp16=False),
    Case("ArgMin", [("x", _x(2, 5, 3), False)], {"axis": -1}, fp16=False),
    Case("TopK", [("x", _x(2, 7, 3), False), ("k", _c([3], np.int64), True)], {"axis": 1},
         n_outputs=2, fp16=False),
    Case("TopK", [("x", _x(3, 6), False), ("k", _c([6], np.int64), True)], {"largest": 0},
         n_outputs=2, fp16=False, tag="smallest"),
    Case("CumSum", [("x", _x(2, 5), False), ("a", _c(1, np.int64), True)]),
    Case("CumSum", [("x", _x(2, 5), False), ("a", _c(-1, np.int64), True)],
         {"exclusive": 1, "reverse": 1}, tag="exclusive_reverse"),
    Case("Expand", [("x", _x(3, 1), False), ("s", _c([2, 1, 4], np.int64), True)]),
    Case("Tile", [("x", _x(2, 3), False), ("r", _c([2, 1], np.int64), True)]),
    Case("Pad", [("x", _x(1, 2, 3, 4), False), ("p", _c([0, 0, 1, 2, 0, 0, 2, 1], np.int64),
                                                        True), ("v", _c(0.5), True)]),
    Case("Pad", [("x", _x(1, 2, 4, 5), False), ("p", _c([0, 0, 1, 2, 0, 0, 2, 1], np.int64),
                                                        True)], {"mode": "reflect"}, tag="reflect"),
    Case("Pad", [("x", _x(1, 2, 4, 5), False), ("p", _c([0, 0, 1, 2, 0, 0, 2, 1], np.int64),
                                                        True)], {"mode": "edge"}, tag="edge"),
    Case("Resize", [("x", _x(1, 2, 3, 4), False), ("", None, True),
                    ("sc", _c([1, 1, 2, 3]), True)],
         {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
          "nearest_mode": "floor"}, tag="nearest"),
    *[Case("Resize", [("x", _x(1, 2, 3, 4), False), ("", None, True), ("", None, True),
                      ("sz", _c([1, 2, 6, 10], np.int64), True)],
           {"mode": "linear", "coordinate_transformation_mode": mode}, tag=mode)
      for mode in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric")],
    Case("Identity", [("x", _x(2, 3), False)]),
    Case("Dropout", [("x", _x(2, 3), False)]),
    Case("Constant", [], {"value": numpy_helper.from_array(_x(2, 3), "v")}),
    Case("Cast", [("x", _c([[0, 1, 5]], np.int64), False)], {"to": F}),
    Case("Cast", [("x", _x(2, 3), False)], {"to": TensorProto.INT64}, tag="to_int",
         fp16=False),
    Case("QuantizeLinear", [("x", _x(2, 3, 4), False), ("s", _c(0.02), True),
                            ("z", _c(3, np.int8), True)], ios=17, fp16=False),
    # activations: CoreML has no int8 inputs, so the int8 tensor comes from a QuantizeLinear
    Case("DequantizeLinear", [("f", _x(2, 3, 4), False), ("s", _c(0.02), True),
                              ("z", _c(3, np.int8), True)], ios=17, tag="activation",
         pre=[helper.make_node("QuantizeLinear", ["f", "s", "z"], ["q"])],
         node_inputs=["q", "s", "z"]),
    # before iOS 17 the pair is a clip to its range: only the rounding (<= scale / 2) is lost
    Case("DequantizeLinear", [("f", _x(2, 3, 4, lo=-4, hi=4), False), ("s", _c(0.02), True),
                              ("z", _c(3, np.int8), True)], ios=16, tag="pair_ios16",
         pre=[helper.make_node("QuantizeLinear", ["f", "s", "z"], ["q"])],
         node_inputs=["q", "s", "z"], rel=0.01 / 5.1),
    Case("DequantizeLinear", [("x", RNG.integers(-127, 127, (4, 3)).astype(np.int8), True),
                              ("s", _c([0.1, 0.2, 0.05, 0.3]), True),
                              ("z", _c([0, 0, 0, 0], np.int8), True)], {"axis": 0},
         tag="weights"),
    # round half to even on the halves themselves (fp16 holds every x.5 below 1024)
    Case("Round", [("x", np.array([[-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], [-1.2, 0.7, 3.49, -3.51,
                                                                     7.0, 0.0]], np.float32),
                    False)]),
    # operands that fp16 holds exactly, so both precisions take the same branch of the floor
    Case("Mod", [("a", RNG.integers(-40, 40, (3, 4)).astype(np.float32) / 4, False),
                 ("b", _c([0.75, -1.25, 2.5, -0.5]), True)], {"fmod": 1}),
    Case("Mod", [("a", RNG.integers(-20, 20, (3, 4)).astype(np.int64), False),
                 ("b", _c([3, -4, 7, 1], np.int64), False)], tag="int", fp16=False),
    Case("Mod", [("a", RNG.integers(-20, 20, (3, 4)).astype(np.int64), False),
                 ("b", _c([3, -4, 7, -2], np.int64), True)], {"fmod": 1}, tag="int_fmod",
         fp16=False),
    Case("IsNaN", [("x", _c([[np.nan, 1.0, -np.inf, 0.0], [np.inf, np.nan, -3.0, 2.0]]),
                    False)]),
    *[Case("IsInf", [("x", _c([[np.nan, 1.0, -np.inf, 0.0], [np.inf, np.nan, -3.0, 2.0]]),
                      False)], {"detect_positive": p, "detect_negative": n}, tag=f"p{p}n{n}")
      for p, n in ((1, 1), (1, 0), (0, 1), (0, 0))],
    Case("GroupNormalization", [("x", _x(2, 6, 3, 4), False), ("s", _x(6), True),
                                ("b", _x(6), True)], {"num_groups": 3, "epsilon": 1e-3}),
    Case("GroupNormalization", [("x", _x(2, 6, 5), False), ("s", _x(2), True),
                                ("b", _x(2), True)], {"num_groups": 2}, tag="per_group"),
    Case("GatherElements", [("x", _x(3, 4, 2), False),
                            ("i", RNG.integers(-4, 4, (3, 2, 2)).astype(np.int64), False)],
         {"axis": 1}),
    Case("GatherElements", [("x", _x(3, 4), False), ("i", _c([[2, -1, 0, 1]], np.int64), True)],
         tag="const"),
    Case("GatherND", [("x", _x(3, 4, 2), False),
                      ("i", np.stack([RNG.integers(-3, 3, (2, 5)), RNG.integers(-4, 4, (2, 5))],
                                     -1).astype(np.int64), False)]),
    Case("GatherND", [("x", _x(3, 4), False), ("i", _c([[2, -1], [0, 3]], np.int64), True)],
         tag="const"),
    Case("Shape", [("x", _x(2, 3, 4), False)], {"start": 1}, fp16=False),
    Case("Size", [("x", _x(2, 3, 4), False)], fp16=False),
    Case("ConstantOfShape", [("s", _c([2, 3], np.int64), True)],
         {"value": numpy_helper.from_array(_c([1.5]), "v")}),
    Case("ConstantOfShape", [("s", _c([4], np.int64), True)],
         {"value": numpy_helper.from_array(_c([-7], np.int64), "v")}, tag="int", fp16=False),
    Case("Range", [("a", _c(1.5), True), ("b", _c(-2.0), True), ("c", _c(-0.25), True)]),
    Case("Range", [("a", _c(-3, np.int64), True), ("b", _c(20, np.int64), True),
                   ("c", _c(4, np.int64), True)], tag="int", fp16=False),
    *[Case("Trilu", [("x", _x(2, 4, 5), False), ("k", _c(k, np.int64), True)], {"upper": u},
           tag=f"upper{u}_k{k}") for u in (0, 1) for k in (-1, 0, 2)],
    Case("Trilu", [("x", RNG.integers(-9, 9, (3, 3)).astype(np.int64), False)], {"upper": 0},
         tag="int", fp16=False),
    *[Case("DepthToSpace", [("x", _x(1, 8, 2, 3), False)], {"blocksize": 2, "mode": m}, tag=m)
      for m in ("DCR", "CRD")],
    Case("SpaceToDepth", [("x", _x(1, 2, 4, 6), False)], {"blocksize": 2}),
    Case("CastLike", [("x", _c([[0, 1, 5]], np.int64), False), ("t", _c(0.0), True)]),
    *[Case("Einsum", [(f"e{i}", _x(*shape), i == 1 and const) for i, shape in enumerate(shapes)],
           {"equation": eq}, tag=tag)
      for tag, eq, shapes, const in (
          ("attention", "bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)], False),
          ("linear", "btc,oc->bto", [(2, 3, 4), (5, 4)], True),
          ("outer_sum", "ij,kj->ik", [(3, 4), (2, 4)], False),
          ("alone_axes", "abc,cd->d", [(2, 3, 4), (4, 5)], False),
          ("implicit", "ba,cb", [(3, 2), (4, 3)], False),
          ("dot", "i,i->", [(6,), (6,)], False),
          ("transpose_sum", "abc->ca", [(2, 3, 4)], False))],
]


def test_every_mapped_op_has_a_case_and_an_emitter() -> None:
    covered = {c.op for c in CASES}
    mapped = {rule.op_type for rule in REGISTRY}
    assert mapped - covered == set(), f"ops without a MIL-interpreter test: {mapped - covered}"
    assert all(callable(rule.emit) for rule in REGISTRY)


def test_every_profile_op_is_mapped_or_says_why_not() -> None:
    from edgeexport.profile import EDGE_PROFILE

    mapped = {rule.op_type for rule in REGISTRY}
    assert mapped | set(REGISTRY.unmapped) == set(EDGE_PROFILE)
    assert not mapped & set(REGISTRY.unmapped)
    x = ir.Value(name="x", shape=ir.Shape([2]), type=ir.TensorType(ir.DataType.FLOAT))
    for op, reason in REGISTRY.unmapped.items():
        assert REGISTRY.why_not(ir.Node("", op, [x]), None) == \
            f"{op} has no coreml mapping: {reason}"
    assert TARGET.registry.support_status("Asinh") == "no"


_REJECTED = [
    (Case("Einsum", [("a", _x(2, 3, 4), False), ("b", _x(2, 4, 5), False)],
          {"equation": "...ij,...jk->...ik"}), "ellipsis"),
    (Case("Einsum", [("a", _x(3, 3), False)], {"equation": "ii->i"}), "diagonal"),
    (Case("Range", [("a", _c(0.0), True), ("b", _c(0.0), True), ("c", _c(1.0), True)]),
     "empty Range"),
    (Case("Range", [("a", _c(0, np.int64), True), ("b", _c(2**40, np.int64), True),
                    ("c", _c(2**39, np.int64), True)]), "outside int32"),
    (Case("Mod", [("a", _x(2, 3), False), ("b", _x(2, 3), False)]), "fmod=1"),
    (Case("GroupNormalization", [("x", _x(1, 6, 4), False), ("s", _x(6), True),
                                 ("b", _x(6), True)], {"num_groups": 4}), "num_groups dividing"),
    (Case("Trilu", [("x", _x(3, 4), False), ("k", _c(1, np.int64), False)]), "constant"),
]


@pytest.mark.parametrize("case, words", _REJECTED, ids=[c.id + "-" + w for c, w in _REJECTED])
def test_conditions_say_why_not(case: Case, words: str) -> None:
    node = build_model(case).graph[-1]
    reason = REGISTRY.why_not(node, argparse.Namespace(ios=16))
    assert reason is not None and words in reason, reason


def _check(case: Case, tmp_path: Path, precision: str) -> None:
    model = build_model(case)
    for node in model.graph:
        assert REGISTRY.why_not(node, argparse.Namespace(ios=case.ios)) is None
    path = emit(model, tmp_path, precision, case.ios)
    check_package(path, ios=case.ios)  # reloads with coremltools and validates
    want, got = run_both(model, feeds_of(case), path)
    assert set(got) == set(want)
    for name, ref in want.items():
        if ref.dtype.kind in "iub":
            diff = np.abs(ref.astype(np.int64) - got[name].astype(np.int64))
            assert diff.max(initial=0) <= (1 if case.op == "QuantizeLinear" else 0), name
            continue
        stats = error_stats(ref, got[name])
        if precision == "fp32":
            assert stats.max_rel_err <= case.rel, (name, stats)
        else:
            assert stats.cosine >= 0.999 and stats.max_rel_err <= 2e-2, (name, stats)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_op_fp32(case: Case, tmp_path: Path) -> None:
    _check(case, tmp_path, "fp32")


@pytest.mark.parametrize("case", [c for c in CASES if c.fp16], ids=[c.id for c in CASES if c.fp16])
def test_op_fp16(case: Case, tmp_path: Path) -> None:
    _check(case, tmp_path, "fp16")


_DEFAULT_IOS = [c for c in CASES if c.ios == 16]


@pytest.mark.parametrize("ios", [15, 18])
@pytest.mark.parametrize("case", _DEFAULT_IOS, ids=[c.id for c in _DEFAULT_IOS])
def test_op_fp32_oldest_and_newest_ios(case: Case, ios: int, tmp_path: Path) -> None:
    """What the checks take at an --ios must build and execute there: MIL's opsets differ
    (iOS 17 redefines gather_along_axis, layer_norm, reshape, ...)."""
    case = dataclasses.replace(case, ios=ios)
    reasons = [r for node in build_model(case).graph
               if (r := REGISTRY.why_not(node, argparse.Namespace(ios=ios)))]
    if reasons:
        pytest.skip(reasons[0])
    _check(case, tmp_path, "fp32")
