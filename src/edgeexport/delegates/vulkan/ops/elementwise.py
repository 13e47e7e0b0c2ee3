"""Elementwise arithmetic -> ncnn BinaryOp (numpy broadcasting made explicit: both operands get
the output's rank, since ncnn's implicit rule aligns the other way) and math -> ncnn UnaryOp.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.vulkan.context import EmitContext, const_array, default_kept
from edgeexport.delegates.vulkan.ops._common import check_all, static
from edgeexport.delegates.vulkan.registry import REGISTRY

ADD, SUB, MUL, DIV, MAX, MIN, POW, RSUB, RDIV, RPOW = range(10)
_BINARY = {"Add": ADD, "Sub": SUB, "Mul": MUL, "Div": DIV, "Max": MAX, "Min": MIN, "Pow": POW}
#: the op with its operands swapped (so that the broadcast operand can be B)
_SWAPPED = {ADD: ADD, MUL: MUL, MAX: MAX, MIN: MIN, SUB: RSUB, DIV: RDIV, POW: RPOW}

_UNARY = {"Abs": 0, "Neg": 1, "Floor": 2, "Ceil": 3, "Sqrt": 5, "Exp": 7, "Log": 8, "Sin": 9,
          "Cos": 10, "Tan": 11, "Asin": 12, "Acos": 13, "Atan": 14, "Reciprocal": 15,
          "Round": 18}


def two_operands(node: ir.Node) -> str | None:
    """Why a binary node is not mapped: not two inputs, or both constant."""
    if len(node.inputs) != 2:
        return f"{node.op_type} with {len(node.inputs)} inputs is not mapped (2 expected)"
    if all(const_array(v) is not None for v in node.inputs):
        return "both operands are constant (constant folding should have removed it)"
    return None


def _check_binary(node: ir.Node, ctx: object) -> str | None:
    if two_operands(node):
        return two_operands(node)
    for v in node.inputs:
        if v.dtype is not None and v.dtype not in (ir.DataType.FLOAT, ir.DataType.FLOAT16) \
                and const_array(v) is None and node.op_type not in _EXACT_ON_INTEGERS:
            return (f"integer {node.op_type} ({v.dtype.name}) has no ncnn equivalent (float "
                    "division and powers do not round like integer ones)")
    return None


#: integer results that ncnn's float blobs hold exactly (below 2**24, e.g. position ids)
_EXACT_ON_INTEGERS = ("Add", "Sub", "Mul", "Max", "Min")


@REGISTRY.op(*_BINARY, check=check_all(static, _check_binary),
             conditions="float operands, numpy broadcasting up to 4 non-batch dims")
def emit_binary(node: ir.Node, ctx: EmitContext) -> None:
    binary_layer(node, ctx, _BINARY[node.op_type])


def binary_layer(node: ir.Node, ctx: EmitContext, op: int, into: str | None = None
                 ) -> tuple[int, ...]:
    """One BinaryOp of the node's two inputs; its output is the node's (or the blob `into`, an
    intermediate that later layers finish). Returns the output's layout."""
    out_shape = tuple(node.outputs[0].shape)
    kept = default_kept(out_shape)
    want = tuple(out_shape[a] for a in kept)
    r = len(out_shape)

    def view(v: ir.Value) -> tuple[int, ...]:
        shape = (1,) * (r - len(v.shape)) + tuple(v.shape)
        return tuple(shape[a] for a in kept)

    a, b = node.inputs
    ca, cb = const_array(a), const_array(b)
    if ca is not None and ca.size == 1:  # scalar first: swap so the scalar is B
        a, b, ca, cb, op = b, a, cb, ca, _SWAPPED[op]
    if cb is not None and cb.size == 1:
        name = ctx.as_ncnn_shape(ctx.blob(a), want, node.name + "_a")
        _finish(node, ctx, [name], {0: op, 1: 1, 2: float(cb.ravel()[0])}, kept, into)
        return kept
    # the operand that broadcasts goes second where possible
    if view(a) != want and view(b) == want:
        a, b, ca, cb, op = b, a, cb, ca, _SWAPPED[op]
    names = []
    for i, (v, c) in enumerate(((a, ca), (b, cb))):
        if c is not None:
            names.append(ctx.constant_blob(f"{node.name}_const{i}",
                                           np.asarray(c, dtype=np.float32), view(v)))
        else:
            names.append(ctx.as_ncnn_shape(ctx.blob(v), view(v), f"{node.name}_in{i}"))
    _finish(node, ctx, names, {0: op}, kept, into)
    return kept


def _finish(node: ir.Node, ctx: EmitContext, names: list[str], params: dict[int, object],
            kept: tuple[int, ...], into: str | None) -> None:
    if into is None:
        ctx.emit(node, "BinaryOp", names, params, kept=kept)
    else:
        ctx.add("BinaryOp", f"{node.name}_{into}", names, [into], params)


def _check_nary(node: ir.Node, ctx: object) -> str | None:
    if not node.inputs:
        return "no inputs"
    if all(const_array(v) is not None for v in node.inputs):
        return "all operands are constant (constant folding should have removed it)"
    return None


@REGISTRY.op("Sum", "Mean", check=check_all(static, _check_nary),
             conditions="numpy broadcasting up to 4 non-batch dims")
def emit_sum(node: ir.Node, ctx: EmitContext) -> None:
    """A chain of BinaryOp ADD (then a scale by 1/n for Mean), operands made explicit-rank."""
    out_shape = tuple(node.outputs[0].shape)
    kept = default_kept(out_shape)
    want = tuple(out_shape[a] for a in kept)
    r = len(out_shape)
    views = []
    for i, v in enumerate(node.inputs):
        shape = (1,) * (r - len(v.shape)) + tuple(v.shape)
        view = tuple(shape[a] for a in kept)
        c = const_array(v)
        name = (ctx.constant_blob(f"{node.name}_const{i}", np.asarray(c, np.float32), view)
                if c is not None else ctx.as_ncnn_shape(ctx.blob(v), view, f"{node.name}_in{i}"))
        views.append((view != want, name))
    views.sort(key=lambda t: t[0])  # full-shape operands first: the broadcast one is B
    if len(views) == 1:  # Sum or Mean of one tensor is that tensor
        ctx.alias(node.outputs[0], ctx.blob(node.inputs[0]))
        return
    acc = views[0][1]
    for k, (_, name) in enumerate(views[1:], 1):
        if k == len(views) - 1 and node.op_type == "Sum":
            ctx.emit(node, "BinaryOp", [acc, name], {0: ADD}, kept=kept)
            return
        tmp = ctx.unique(f"{node.outputs[0].name}_sum{k}")
        ctx.add("BinaryOp", f"{node.name}_sum{k}", [acc, name], [tmp], {0: ADD})
        acc = tmp
    ctx.emit(node, "BinaryOp", [acc], {0: MUL, 1: 1, 2: 1.0 / len(views)}, kept=kept)


@REGISTRY.op("Softsign", check=static)
def emit_softsign(node: ir.Node, ctx: EmitContext) -> None:
    """x / (1 + |x|) from UnaryOp ABS, BinaryOp ADD 1 and BinaryOp DIV."""
    x = ctx.blob(node.inputs[0])
    base = node.outputs[0].name
    absx, den = ctx.unique(f"{base}_abs"), ctx.unique(f"{base}_den")
    ctx.add("UnaryOp", f"{node.name}_abs", [x.name], [absx], {0: 0})
    ctx.add("BinaryOp", f"{node.name}_den", [absx], [den], {0: ADD, 1: 1, 2: 1.0})
    ctx.emit(node, "BinaryOp", [x.name, den], {0: DIV}, kept=x.kept)


@REGISTRY.op(*_UNARY, check=static)
def emit_unary(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    ctx.emit(node, "UnaryOp", [x.name], {0: _UNARY[node.op_type]}, kept=x.kept)


@REGISTRY.op("Identity", "Dropout", check=static)
def emit_identity(node: ir.Node, ctx: EmitContext) -> None:
    ctx.alias(node.outputs[0], ctx.blob(node.inputs[0]))
