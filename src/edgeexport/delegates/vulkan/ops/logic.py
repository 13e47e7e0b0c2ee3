"""Casts, boolean logic and integer comparisons -> ncnn BinaryOp/UnaryOp/Clip: ncnn blobs are
float, so a bool is held as 0.0/1.0 and an integer as its (exact, below 2**24) float value.

This is what Hugging Face attention masks need (int64 0/1 mask -> bool -> And/Not/Equal ->
Where). Comparisons are exact on integer values only (a - b is then 0 or at least 1 in
magnitude, so clipping it to [0, 1] is the step function); float comparisons are refused.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.vulkan.context import EmitContext, const_array
from edgeexport.delegates.vulkan.ops._common import check_all, static
from edgeexport.delegates.vulkan.ops.elementwise import (ADD, MAX, MUL, RSUB, SUB, binary_layer,
                                                        two_operands)
from edgeexport.delegates.vulkan.registry import REGISTRY

_FLOATS = (ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.BFLOAT16, ir.DataType.DOUBLE)
ABS, TRUNC = 0, 19  # ncnn UnaryOp types
#: ops whose output holds only the values 0 and 1 when their input does
_KEEPS_ZERO_ONE = {"Reshape", "Squeeze", "Unsqueeze", "Transpose", "Flatten", "Expand",
                   "Identity", "ReduceMin", "ReduceMax", "Slice", "Concat", "Cast"}
F32_MAX = float(np.finfo(np.float32).max)


def _integral(v: ir.Value) -> bool:
    """The value holds whole numbers: integer or bool typed, or a constant of whole floats."""
    c = const_array(v)
    if c is not None:
        return bool(np.all(np.isfinite(c)) and np.all(np.asarray(c) == np.round(c)))
    return v.dtype is not None and v.dtype not in _FLOATS


def zero_one(v: ir.Value, depth: int = 8) -> bool:
    """The value holds only 0 and 1: a bool, or a float computed from bools by value-preserving
    ops (e.g. the Cast(ReduceMin(Cast(bool))) that a safe softmax builds)."""
    if v.dtype == ir.DataType.BOOL:
        return True
    c = const_array(v)
    if c is not None:
        return bool(np.all((c == 0) | (c == 1)))
    p = v.producer()
    if p is None or depth == 0 or p.op_type not in _KEEPS_ZERO_ONE:
        return False
    data = [x for x in p.inputs[:1 if p.op_type != "Concat" else None] if x is not None]
    return all(zero_one(x, depth - 1) for x in data)


def _step(node: ir.Node, ctx: EmitContext, x: str, kept: tuple[int, ...],
          pre: list[tuple[str, dict[int, object]]], last: tuple[str, dict[int, object]]) -> None:
    """A chain of one-input layers from blob `x`; the last one writes the node's output."""
    for i, (type_, params) in enumerate(pre):
        nxt = ctx.unique(f"{node.outputs[0].name}_s{i}")
        ctx.add(type_, f"{node.name}_s{i}", [x], [nxt], params)
        x = nxt
    ctx.emit(node, last[0], [x], last[1], kept=kept)


CLIP01 = ("Clip", {0: 0.0, 1: 1.0})


def _check_cast(node: ir.Node, ctx: object) -> str | None:
    to = node.attributes.get("to")
    if to is None:
        return "Cast without 'to'"
    dst, src = ir.DataType(to.value), node.inputs[0]
    if dst in _FLOATS:
        return None
    if dst == ir.DataType.BOOL:
        if src.dtype not in _FLOATS or zero_one(src):
            return None
        return ("ncnn blobs are float: a cast of arbitrary floats to bool (x != 0) has no exact "
                "ncnn form (only casts of integers or of 0/1 values are mapped)")
    if dst in (ir.DataType.STRING, ir.DataType.COMPLEX64, ir.DataType.COMPLEX128):
        return f"Cast to {dst.name} has no ncnn equivalent"
    return None  # to an integer type: the float holds it exactly below 2**24


@REGISTRY.op("Cast", check=check_all(static, _check_cast),
             conditions="to float; to bool of integers or 0/1 values; to integers")
def emit_cast(node: ir.Node, ctx: EmitContext) -> None:
    dst, src = ir.DataType(node.attributes["to"].value), node.inputs[0]
    x = ctx.blob(src)
    if dst == ir.DataType.BOOL and not zero_one(src):  # integers: min(|x|, 1) is x != 0
        _step(node, ctx, x.name, x.kept, [("UnaryOp", {0: ABS})], CLIP01)
    elif dst not in _FLOATS and dst != ir.DataType.BOOL and src.dtype in _FLOATS:
        ctx.emit(node, "UnaryOp", [x.name], {0: TRUNC}, kept=x.kept)  # C casts truncate
    else:
        # ncnn holds every blob as float (integer model inputs are fed as float), so this
        # cast is the identity on the blob
        ctx.alias(node.outputs[0], x)


def _check_bool(node: ir.Node, ctx: object) -> str | None:
    for v in node.inputs:
        if not zero_one(v):
            return f"{node.op_type} of '{v.name}' ({v.dtype.name if v.dtype else '?'}): " \
                   "only 0/1 values are mapped (bools as ncnn floats)"
    if all(const_array(v) is not None for v in node.inputs):
        return "all operands are constant (constant folding should have removed it)"
    return None


@REGISTRY.op("Not", check=check_all(static, _check_bool), conditions="bool input")
def emit_not(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    ctx.emit(node, "BinaryOp", [x.name], {0: RSUB, 1: 1, 2: 1.0}, kept=x.kept)  # 1 - x


@REGISTRY.op("And", "Or", check=check_all(static, _check_bool),
             conditions="bool operands, numpy broadcasting up to 4 non-batch dims")
def emit_and_or(node: ir.Node, ctx: EmitContext) -> None:
    binary_layer(node, ctx, MUL if node.op_type == "And" else MAX)  # on 0/1: a*b, max(a, b)


def _check_compare(node: ir.Node, ctx: object) -> str | None:
    if two_operands(node):
        return two_operands(node)
    for v in node.inputs:
        if not _integral(v):
            return (f"{node.op_type} of float values: ncnn has no compare layer (mapped for "
                    "integer or bool operands only, where a step of a - b is exact)")
    return None


#: comparison -> the one-input layers after d = a - b (integers: d is 0 or |d| >= 1)
_AFTER_DIFF: dict[str, list[tuple[str, dict[int, object]]]] = {
    "Equal": [("UnaryOp", {0: ABS}), CLIP01, ("BinaryOp", {0: RSUB, 1: 1, 2: 1.0})],
    "Greater": [CLIP01],
    "Less": [("BinaryOp", {0: MUL, 1: 1, 2: -1.0}), CLIP01],
    "GreaterOrEqual": [("BinaryOp", {0: ADD, 1: 1, 2: 1.0}), CLIP01],
    "LessOrEqual": [("BinaryOp", {0: RSUB, 1: 1, 2: 1.0}), CLIP01],
}


@REGISTRY.op(*_AFTER_DIFF, check=check_all(static, _check_compare),
             conditions="integer or bool operands (a step of their difference)")
def emit_compare(node: ir.Node, ctx: EmitContext) -> None:
    diff = ctx.unique(f"{node.outputs[0].name}_diff")
    kept = binary_layer(node, ctx, SUB, into=diff)
    *pre, last = _AFTER_DIFF[node.op_type]
    _step(node, ctx, diff, kept, pre, last)


def _check_isinf(node: ir.Node, ctx: object) -> str | None:
    if node.inputs[0].dtype not in (None, ir.DataType.FLOAT):
        return "IsInf of non-float32 values"
    return None


@REGISTRY.op("IsInf", check=check_all(static, _check_isinf), conditions="float32 input")
def emit_isinf(node: ir.Node, ctx: EmitContext) -> None:
    """x = +inf exactly when x - FLT_MAX > 0 (it is then inf; never in (0, 1) for float32), so
    the step is clip(x - FLT_MAX, 0, 1); -inf likewise with -x, both with |x|."""
    x = ctx.blob(node.inputs[0])
    pos = int(node.attributes["detect_positive"].value) if "detect_positive" in node.attributes \
        else 1
    neg = int(node.attributes["detect_negative"].value) if "detect_negative" in node.attributes \
        else 1
    if pos and neg:
        pre = [("UnaryOp", {0: ABS}), ("BinaryOp", {0: SUB, 1: 1, 2: F32_MAX})]
    elif pos:
        pre = [("BinaryOp", {0: SUB, 1: 1, 2: F32_MAX})]
    elif neg:
        pre = [("BinaryOp", {0: RSUB, 1: 1, 2: -F32_MAX})]  # -FLT_MAX - x
    else:  # detects nothing: all false
        pre = [("BinaryOp", {0: MUL, 1: 1, 2: 0.0})]
    _step(node, ctx, x.name, x.kept, pre, CLIP01)
