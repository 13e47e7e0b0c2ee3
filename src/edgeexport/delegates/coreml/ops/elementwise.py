"""Elementwise arithmetic: ONNX's broadcasting binary ops are MIL's, unary math maps one to one
(Reciprocal as `inverse` with epsilon 0, Neg as a multiply by -1, Mod through MIL's floor `mod`,
IsNaN / IsInf as comparisons). Asinh and Acosh stay unmapped (see the end of this module).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.coreml.context import (
    REGISTRY, EmitContext, attr, float_input,
)

_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "real_div", "Pow": "pow",
           "Max": "maximum", "Min": "minimum"}
_UNARY = {"Abs": "abs", "Sqrt": "sqrt", "Exp": "exp", "Log": "log", "Erf": "erf",
          "Floor": "floor", "Ceil": "ceil", "Sin": "sin", "Cos": "cos", "Sign": "sign",
          # round: half to even (MIL: "0.5 is rounded to 0"; its value inference is np.round)
          "Round": "round", "Tan": "tan", "Asin": "asin", "Acos": "acos", "Atan": "atan", "Sinh": "sinh",
          "Cosh": "cosh", "Atanh": "atanh"}
_NUMERIC = (ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.INT32, ir.DataType.INT64)


def _check_binary(node: ir.Node, ctx: Any) -> str | None:
    if node.op_type in ("Max", "Min") and len(node.inputs) != 2:
        return f"{node.op_type} with {len(node.inputs)} inputs has no CoreML mapping (2 only)"
    for v in node.inputs:
        if v is not None and v.dtype is not None and v.dtype not in _NUMERIC:
            return f"{node.op_type} on {v.dtype.name} tensors has no CoreML mapping"
    if node.op_type == "Div" and node.inputs[0].dtype in (ir.DataType.INT32, ir.DataType.INT64):
        return "integer Div has no CoreML mapping (MIL real_div is a float division)"
    if node.op_type == "Pow" and node.inputs[0].dtype != node.inputs[1].dtype:
        return "Pow with different base and exponent types has no CoreML mapping"
    return None


@REGISTRY.op(*_BINARY, check=_check_binary, conditions="float/int32/int64, two inputs")
def emit_binary(node: ir.Node, ctx: EmitContext) -> None:
    a, b = node.inputs
    ctx.set(node.outputs[0], getattr(ctx.mb, _BINARY[node.op_type])(
        x=ctx.get(a), y=ctx.get(b), name=ctx.name(node.outputs[0])))


@REGISTRY.op(*_UNARY, check=float_input)
def emit_unary(node: ir.Node, ctx: EmitContext) -> None:
    ctx.set(node.outputs[0], getattr(ctx.mb, _UNARY[node.op_type])(
        x=ctx.get(node.inputs[0]), name=ctx.name(node.outputs[0])))


@REGISTRY.op("Reciprocal", check=float_input)
def emit_reciprocal(node: ir.Node, ctx: EmitContext) -> None:
    # MIL inverse is 1 / (x + epsilon) with epsilon 1e-4 by default; ONNX has none
    ctx.set(node.outputs[0], ctx.mb.inverse(x=ctx.get(node.inputs[0]), epsilon=ctx.scalar(0.0),
                                            name=ctx.name(node.outputs[0])))


@REGISTRY.op("Neg", check=float_input)
def emit_neg(node: ir.Node, ctx: EmitContext) -> None:
    minus_one = ctx.to_mil_array(np.array(-1.0, np.float32))
    ctx.set(node.outputs[0], ctx.mb.mul(x=ctx.get(node.inputs[0]), y=minus_one,
                                        name=ctx.name(node.outputs[0])))


def _check_variadic(node: ir.Node, ctx: Any) -> str | None:
    if not node.inputs:
        return f"{node.op_type} without inputs"
    return float_input(node, ctx)


@REGISTRY.op("Sum", "Mean", check=_check_variadic)
def emit_sum_mean(node: ir.Node, ctx: EmitContext) -> None:
    out = node.outputs[0]
    acc = ctx.get(node.inputs[0])
    n = len(node.inputs)
    for i, v in enumerate(node.inputs[1:], start=1):
        last = i == n - 1 and node.op_type == "Sum"
        acc = ctx.mb.add(x=acc, y=ctx.get(v), name=ctx.name(out) + ("" if last else f"__{i}"))
    if node.op_type == "Mean":
        acc = ctx.mb.mul(x=acc, y=ctx.to_mil_array(np.array(1.0 / n, np.float32)),
                         name=ctx.name(out))
    elif n == 1:
        acc = ctx.mb.identity(x=acc, name=ctx.name(out))
    ctx.set(out, acc)


_INTS = (ir.DataType.INT32, ir.DataType.INT64)


def _check_mod(node: ir.Node, ctx: Any) -> str | None:
    for v in node.inputs:
        if v is None or v.dtype not in _NUMERIC:
            return "Mod on float or int32/int64 tensors only for CoreML"
    if not attr(node, "fmod", 0) and node.inputs[0].dtype not in _INTS:
        return "Mod on floats needs fmod=1 (ONNX)"
    return None


@REGISTRY.op("Mod", check=_check_mod, conditions="float/int32/int64")
def emit_mod(node: ir.Node, ctx: EmitContext) -> None:
    # MIL mod is Python's % (sign of the divisor), which is ONNX fmod=0. C fmod (fmod=1) has the
    # sign of the dividend and |x| mod |y| as magnitude: sign(x) * mod(|x|, |y|), exact as well
    a, b, out = ctx.get(node.inputs[0]), ctx.get(node.inputs[1]), node.outputs[0]
    name = ctx.name(out)
    if not attr(node, "fmod", 0):
        ctx.set(out, ctx.mb.mod(x=a, y=b, name=name))
        return
    mag = ctx.mb.mod(x=ctx.mb.abs(x=a, name=name + "__abs_x"),
                     y=ctx.mb.abs(x=b, name=name + "__abs_y"), name=name + "__mod")
    ctx.set(out, ctx.mb.mul(x=ctx.mb.sign(x=a, name=name + "__sign"), y=mag, name=name))


@REGISTRY.op("IsNaN", check=float_input)
def emit_isnan(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.get(node.inputs[0])  # NaN is the one value that differs from itself
    ctx.set(node.outputs[0], ctx.mb.not_equal(x=x, y=x, name=ctx.name(node.outputs[0])))


@REGISTRY.op("IsInf", check=float_input,
             conditions="in fp16 programs |x| > 65504 is already inf when it enters")
def emit_isinf(node: ir.Node, ctx: EmitContext) -> None:
    x, out = ctx.get(node.inputs[0]), node.outputs[0]
    name = ctx.name(out)
    pos, neg = attr(node, "detect_positive", 1), attr(node, "detect_negative", 1)
    inf = ctx.scalar(np.inf)
    if pos and neg:
        var = ctx.mb.equal(x=ctx.mb.abs(x=x, name=name + "__abs"), y=inf, name=name)
    elif pos or neg:
        var = ctx.mb.equal(x=x, y=inf if pos else -inf, name=name)
    else:  # detects nothing: |x| < 0 is false everywhere (NaN included), shaped like x
        var = ctx.mb.less(x=ctx.mb.abs(x=x, name=name + "__abs"), y=ctx.scalar(0.0), name=name)
    ctx.set(out, var)


# MIL has no inverse hyperbolic sine or cosine. The textbook log(x + sqrt(x^2 +- 1)) is not the
# same function in a float program: x^2 overflows fp16 from |x| = 256 on, and near 0
# log(1 + x) loses every digit of asinh(x) ~ x.
for _op in ("Asinh", "Acosh"):
    REGISTRY.not_mapped(_op, "MIL has no asinh/acosh, and log(x + sqrt(x*x +- 1)) overflows in "
                             "fp16 for |x| >= 256 and loses precision near 0")
