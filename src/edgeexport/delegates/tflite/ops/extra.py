"""Ops that become constants under static shapes (Shape, Size, ConstantOfShape, Range), and a few
compositions: IsNaN / IsInf, Trilu (SELECT_V2 with a constant mask), ReduceLogSumExp,
InstanceNormalization and GroupNormalization (per-group MEAN / variance like LayerNorm).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from ai_edge_litert import schema_py_generated as fb

from edgeexport import ir as eir
from edgeexport.delegates.tflite import layout as L
from edgeexport.delegates.tflite.context import EmitContext, is_const
from edgeexport.delegates.tflite.ops.elementwise import _static
from edgeexport.delegates.tflite.registry import REGISTRY


def _define_const(ctx: EmitContext, out: ir.Value, arr: np.ndarray) -> None:
    arr = np.asarray(arr, eir.np_dtype(out.dtype)) if out.dtype is not None else np.asarray(arr)
    ctx.define(out, ctx.const_tensor(arr, out.name, weight=False), L.identity(arr.ndim))


def _check_shape_of(node: ir.Node, ctx: object) -> str | None:
    x = node.inputs[0]
    if x.shape is None or not all(isinstance(d, int) for d in x.shape):
        return "dynamic input shape"
    return None


@REGISTRY.op("Shape", "Size", check=_check_shape_of, conditions="static input shape")
def emit_shape(node: ir.Node, ctx: EmitContext) -> None:
    shape = [int(d) for d in node.inputs[0].shape]
    if node.op_type == "Size":
        _define_const(ctx, node.outputs[0], np.asarray(int(np.prod(shape)), np.int64))
        return
    s, e = node.attributes.get("start"), node.attributes.get("end")
    sl = slice(s.as_int() if s is not None else None, e.as_int() if e is not None else None)
    _define_const(ctx, node.outputs[0], np.asarray(shape[sl], np.int64))


def _check_all_const(node: ir.Node, ctx: object) -> str | None:
    if not all(v is None or EmitContext.array(v) is not None for v in node.inputs):
        return "inputs must be constants"
    return None


@REGISTRY.op("ConstantOfShape", "Range", check=_check_all_const, conditions="constant inputs")
def emit_constant_of(node: ir.Node, ctx: EmitContext) -> None:
    ins = [EmitContext.array(v) for v in node.inputs]
    if node.op_type == "Range":
        start, limit, delta = (np.asarray(v).item() for v in ins)
        _define_const(ctx, node.outputs[0], np.arange(start, limit, delta))
        return
    value = node.attributes.get("value")
    fill = value.as_tensor().numpy().reshape(-1)[0] if value is not None else np.float32(0)
    _define_const(ctx, node.outputs[0], np.full([int(d) for d in ins[0]], fill))


@REGISTRY.op("IsNaN", check=_static, conditions="static shapes")
def emit_isnan(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    lay = ctx.layout(x)
    xin = ctx.input(x, lay)
    ctx.fb.op("NOT_EQUAL", [xin, xin], [ctx.output(node.outputs[0], lay)], fb.NotEqualOptionsT())


@REGISTRY.op("IsInf", check=_static, conditions="static shapes")
def emit_isinf(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    lay = ctx.layout(x)
    xin = ctx.input(x, lay)
    pos, neg = (node.attributes.get(k) for k in ("detect_positive", "detect_negative"))
    pos = pos.as_int() if pos is not None else 1
    neg = neg.as_int() if neg is not None else 1
    src = xin
    if pos and neg:
        src = ctx.temp(f"{node.outputs[0].name}/abs", ctx.fb.shape(xin), np.float32)
        ctx.fb.op("ABS", [xin], [src])
    target = np.float32(-np.inf) if neg and not pos else np.float32(np.inf)
    ctx.fb.op("EQUAL", [src, ctx.const_tensor(target, f"inf{target}", weight=False)],
              [ctx.output(node.outputs[0], lay)], fb.EqualOptionsT())


def _check_trilu(node: ir.Node, ctx: object) -> str | None:
    if len(node.inputs) > 1 and node.inputs[1] is not None and not is_const(node.inputs[1]):
        return "k must be a constant"
    return _static(node, ctx)


@REGISTRY.op("Trilu", check=_check_trilu, conditions="constant k")
def emit_trilu(node: ir.Node, ctx: EmitContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    shape = ctx.shape(x)
    k = int(ctx.const(node.inputs[1])) if len(node.inputs) > 1 and node.inputs[1] is not None \
        else 0
    up = node.attributes.get("upper")
    upper = up.as_int() if up is not None else 1
    rows, cols = shape[-2], shape[-1]
    mask = np.triu(np.ones((rows, cols), bool), k) if upper else \
        np.tril(np.ones((rows, cols), bool), k)
    mask = np.broadcast_to(mask, shape)
    lay = ctx.layout(x)
    xin = ctx.input(x, lay)
    m = ctx.const_tensor(mask, f"{out.name}/mask", lay, weight=False)
    zero = ctx.const_tensor(np.zeros((), ctx.fb.dtype(xin)), f"zero{ctx.fb.dtype(xin)}",
                            weight=False)
    ctx.fb.op("SELECT_V2", [m, xin, zero], [ctx.output(out, lay)], fb.SelectV2OptionsT())


def _reduce_axes(node: ir.Node, rank: int) -> list[int] | None:
    from edgeexport.delegates.tflite.ops.reduce import _axes

    return _axes(node, rank)


def _check_lse(node: ir.Node, ctx: object) -> str | None:
    x = node.inputs[0]
    if x.shape is None or _reduce_axes(node, len(x.shape)) is None:
        return "axes must be a constant"
    return _static(node, ctx)


@REGISTRY.op("ReduceLogSumExp", check=_check_lse, conditions="constant axes")
def emit_logsumexp(node: ir.Node, ctx: EmitContext) -> None:
    # max + log(sum(exp(x - max))): no overflow
    x, out = node.inputs[0], node.outputs[0]
    lay = ctx.layout(x)
    xin = ctx.input(x, lay)
    axes = sorted(L.physical_axis(a, lay) for a in _reduce_axes(node, ctx.rank(x)))
    shape = ctx.fb.shape(xin)
    red = [1 if i in axes else d for i, d in enumerate(shape)]
    kd = node.attributes.get("keepdims")
    keep = kd is None or bool(kd.as_int())
    opt = fb.ReducerOptionsT()
    opt.keepDims = True
    ax = ctx.int32(axes, f"axes{axes}")
    mx = ctx.temp(f"{out.name}/max", red, np.float32)
    ctx.fb.op("REDUCE_MAX", [xin, ax], [mx], opt)
    d = ctx.temp(f"{out.name}/centered", shape, np.float32)
    ctx.fb.op("SUB", [xin, mx], [d], fb.SubOptionsT())
    e = ctx.temp(f"{out.name}/exp", shape, np.float32)
    ctx.fb.op("EXP", [d], [e])
    s = ctx.temp(f"{out.name}/sum", red, np.float32)
    ctx.fb.op("SUM", [e, ax], [s], opt)
    lg = ctx.temp(f"{out.name}/log", red, np.float32)
    ctx.fb.op("LOG", [s], [lg])
    if keep:
        ctx.fb.op("ADD", [lg, mx], [ctx.output(out, lay)], fb.AddOptionsT())
        return
    full = ctx.temp(f"{out.name}/keep", red, np.float32)
    ctx.fb.op("ADD", [lg, mx], [full], fb.AddOptionsT())
    y = ctx.output(out, L.drop_axes(lay, [lay[a] for a in axes]))
    ctx.reshape(full, y)


def _check_gn(node: ir.Node, ctx: object) -> str | None:
    if any(v is not None and not is_const(v) for v in node.inputs[1:]):
        return "scale and bias must be constants"
    return _static(node, ctx)


@REGISTRY.op("InstanceNormalization", "GroupNormalization", check=_check_gn,
             conditions="constant scale/bias")
def emit_group_norm(node: ir.Node, ctx: EmitContext) -> None:
    """Normalize [N, G, C/G * spatial] groups in the logical layout, then scale per channel."""
    x, out = node.inputs[0], node.outputs[0]
    shape = ctx.shape(x)
    n, c = shape[0], shape[1]
    groups = c if node.op_type == "InstanceNormalization" else \
        node.attributes["num_groups"].as_int()
    e = node.attributes.get("epsilon")
    eps = e.as_float() if e is not None else 1e-5
    xin = ctx.input(x, L.identity(len(shape)))
    grouped = [n, groups, int(np.prod(shape[1:])) // groups]
    g = ctx.temp(f"{out.name}/groups", grouped, np.float32)
    ctx.reshape(xin, g)
    red = [n, groups, 1]
    opt = fb.ReducerOptionsT()
    opt.keepDims = True
    ax = ctx.int32([2], "axes[2]")
    mean = ctx.temp(f"{out.name}/mean", red, np.float32)
    ctx.fb.op("MEAN", [g, ax], [mean], opt)
    sq = ctx.temp(f"{out.name}/sqdiff", grouped, np.float32)
    ctx.fb.op("SQUARED_DIFFERENCE", [g, mean], [sq])
    var = ctx.temp(f"{out.name}/var", red, np.float32)
    ctx.fb.op("MEAN", [sq, ax], [var], opt)
    ve = ctx.temp(f"{out.name}/var_eps", red, np.float32)
    ctx.fb.op("ADD", [var, ctx.const_tensor(np.float32(eps), f"eps{eps}", weight=False)], [ve],
              fb.AddOptionsT())
    rstd = ctx.temp(f"{out.name}/rstd", red, np.float32)
    ctx.fb.op("RSQRT", [ve], [rstd])
    cen = ctx.temp(f"{out.name}/centered", grouped, np.float32)
    ctx.fb.op("SUB", [g, mean], [cen], fb.SubOptionsT())
    nrm = ctx.temp(f"{out.name}/normed", grouped, np.float32)
    ctx.fb.op("MUL", [cen, rstd], [nrm], fb.MulOptionsT())
    back = ctx.temp(f"{out.name}/ungrouped", list(shape), np.float32)
    ctx.reshape(nrm, back)
    bshape = (1, c) + (1,) * (len(shape) - 2)
    scale = np.asarray(ctx.const(node.inputs[1]), np.float32)
    bias = np.asarray(ctx.const(node.inputs[2]), np.float32)
    if scale.size != c:  # GroupNormalization (opset 18) scales per group
        scale = np.repeat(scale, c // scale.size)
        bias = np.repeat(bias, c // bias.size)
    t = ctx.temp(f"{out.name}/scaled", list(shape), np.float32)
    ctx.fb.op("MUL", [back, ctx.const_tensor(scale.reshape(bshape), f"{out.name}/scale")], [t],
              fb.MulOptionsT())
    ctx.fb.op("ADD", [t, ctx.const_tensor(bias.reshape(bshape), f"{out.name}/bias")],
              [ctx.output(out, L.identity(len(shape)))], fb.AddOptionsT())

