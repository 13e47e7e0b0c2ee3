"""Elementwise arithmetic: ONNX's broadcasting binary ops are MIL's, unary math maps one to one
(Reciprocal as `inverse` with epsilon 0, Neg as a multiply by -1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.coreml.context import REGISTRY, EmitContext, float_input

_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "real_div", "Pow": "pow",
           "Max": "maximum", "Min": "minimum"}
_UNARY = {"Abs": "abs", "Sqrt": "sqrt", "Exp": "exp", "Log": "log", "Erf": "erf",
          "Floor": "floor", "Ceil": "ceil", "Sin": "sin", "Cos": "cos", "Sign": "sign",
          "Tan": "tan", "Asin": "asin", "Acos": "acos", "Atan": "atan", "Sinh": "sinh",
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
