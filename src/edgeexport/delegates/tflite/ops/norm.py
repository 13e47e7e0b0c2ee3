"""Normalization: LayerNormalization as MEAN / SQUARED_DIFFERENCE / RSQRT / MUL / ADD (TFLite has
no builtin), inference BatchNormalization as one MUL + ADD per channel.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from ai_edge_litert import schema_py_generated as fb

from edgeexport.delegates.tflite import layout as L
from edgeexport.delegates.tflite.context import EmitContext, is_const
from edgeexport.delegates.tflite.ops.elementwise import _static, operand
from edgeexport.delegates.tflite.registry import REGISTRY


def _check_ln(node: ir.Node, ctx: object) -> str | None:
    return _static(node, ctx)


@REGISTRY.op("LayerNormalization", check=_check_ln, conditions="static shapes")
def emit_layer_norm(node: ir.Node, ctx: EmitContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = ctx.rank(x)
    a = node.attributes.get("axis")
    axis = (a.as_int() if a is not None else -1) % rank
    e = node.attributes.get("epsilon")
    eps = e.as_float() if e is not None else 1e-5
    lay = ctx.layout(x)
    xin = ctx.input(x, lay)
    shape = ctx.fb.shape(xin)
    axes = sorted(L.physical_axis(i, lay) for i in range(axis, rank))
    red = [1 if i in axes else d for i, d in enumerate(shape)]
    name = out.name
    opt = fb.ReducerOptionsT()
    opt.keepDims = True
    mean = ctx.temp(f"{name}/mean", red, np.float32)
    ctx.fb.op("MEAN", [xin, ctx.int32(axes, f"axes{axes}")], [mean], opt)
    sq = ctx.temp(f"{name}/sqdiff", shape, np.float32)
    ctx.fb.op("SQUARED_DIFFERENCE", [xin, mean], [sq])
    var = ctx.temp(f"{name}/var", red, np.float32)
    ctx.fb.op("MEAN", [sq, ctx.int32(axes, f"axes{axes}")], [var], opt)
    vareps = ctx.temp(f"{name}/var_eps", red, np.float32)
    ctx.fb.op("ADD", [var, ctx.const_tensor(np.float32(eps), f"eps{eps}", weight=False)],
              [vareps], fb.AddOptionsT())
    rstd = ctx.temp(f"{name}/rstd", red, np.float32)
    ctx.fb.op("RSQRT", [vareps], [rstd])
    # the optional Mean and InvStdDev outputs are the intermediates themselves
    for extra, idx in zip(node.outputs[1:], (mean, rstd)):
        if extra is not None:
            ctx.define(extra, idx, lay)
    cen = ctx.temp(f"{name}/centered", shape, np.float32)
    ctx.fb.op("SUB", [xin, mean], [cen], fb.SubOptionsT())
    scale = node.inputs[1] if len(node.inputs) > 1 else None
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    # an untrained (or identity) affine part is two full-size ops for nothing
    if scale is not None and _all(ctx.const(scale), 1.0):
        scale = None
    if bias is not None and _all(ctx.const(bias), 0.0):
        bias = None
    norm = ctx.temp(f"{name}/normed", shape, np.float32) if scale is not None or bias is not None \
        else ctx.output(out, lay)
    ctx.fb.op("MUL", [cen, rstd], [norm], fb.MulOptionsT())
    cur = norm
    if scale is not None:
        nxt = ctx.temp(f"{name}/scaled", shape, np.float32) if bias is not None \
            else ctx.output(out, lay)
        ctx.fb.op("MUL", [cur, operand(ctx, scale, lay)], [nxt], fb.MulOptionsT())
        cur = nxt
    if bias is not None:
        y = ctx.output(out, lay)
        ctx.fb.op("ADD", [cur, operand(ctx, bias, lay)], [y], fb.AddOptionsT())


def _all(arr: np.ndarray | None, value: float) -> bool:
    return arr is not None and bool(np.all(np.asarray(arr) == value))


def _check_bn(node: ir.Node, ctx: object) -> str | None:
    if any(not is_const(v) for v in node.inputs[1:5]):
        return "scale, bias, mean and variance must be constants"
    t = node.attributes.get("training_mode")
    if t is not None and t.as_int():
        return "training mode"
    return _static(node, ctx)


@REGISTRY.op("BatchNormalization", check=_check_bn, conditions="inference, constant statistics")
def emit_batch_norm(node: ir.Node, ctx: EmitContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    scale, bias, mean, var = (ctx.const(v).astype(np.float64) for v in node.inputs[1:5])
    e = node.attributes.get("epsilon")
    eps = e.as_float() if e is not None else 1e-5
    mul = scale / np.sqrt(var + eps)
    add = bias - mean * mul
    rank = ctx.rank(x)
    bshape = (1, -1) + (1,) * (rank - 2)
    lay = ctx.layout(x)
    xin = ctx.input(x, lay)
    m = ctx.const_tensor(mul.astype(np.float32).reshape(bshape), f"{out.name}/mul", lay)
    b = ctx.const_tensor(add.astype(np.float32).reshape(bshape), f"{out.name}/add", lay)
    t = ctx.temp(f"{out.name}/scaled", ctx.fb.shape(xin), np.float32)
    ctx.fb.op("MUL", [xin, m], [t], fb.MulOptionsT())
    res, act = ctx.fuse_activation(out)
    y = ctx.output(res, lay)
    opt = fb.AddOptionsT()
    opt.fusedActivationFunction = act
    ctx.fb.op("ADD", [t, b], [y], opt)
