"""Reductions over stored axes: ReduceMean/Sum/Max/Min/Prod -> MEAN/SUM/REDUCE_*, the L1/L2/
sum-of-squares forms as a map then SUM, ArgMax/ArgMin -> ARG_MAX/ARG_MIN, CumSum -> CUMSUM,
TopK -> TOPK_V2 (last stored axis; NEG around it for the smallest).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from ai_edge_litert import schema_py_generated as fb

from edgeexport.delegates.tflite import layout as L
from edgeexport.delegates.tflite.context import EmitContext
from edgeexport.delegates.tflite.ops.elementwise import _static, constant_second_input
from edgeexport.delegates.tflite.registry import REGISTRY

_REDUCE = {"ReduceMean": "MEAN", "ReduceSum": "SUM", "ReduceMax": "REDUCE_MAX",
           "ReduceMin": "REDUCE_MIN", "ReduceProd": "REDUCE_PROD", "ReduceL1": "SUM",
           "ReduceL2": "SUM", "ReduceSumSquare": "SUM"}
_PRE = {"ReduceL1": "ABS", "ReduceL2": "SQUARE", "ReduceSumSquare": "SQUARE"}


def _axes(node: ir.Node, rank: int) -> list[int] | None:
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        arr = EmitContext.array(node.inputs[1])
        return None if arr is None else sorted({int(a) % rank for a in arr.ravel()})
    attr = node.attributes.get("axes")
    if attr is not None:
        return sorted({a % rank for a in attr.as_ints()})
    noop = node.attributes.get("noop_with_empty_axes")
    return [] if noop is not None and noop.as_int() else list(range(rank))


def _check_reduce(node: ir.Node, ctx: object) -> str | None:
    x = node.inputs[0]
    if x.shape is None:
        return "unknown rank"
    if _axes(node, len(x.shape)) is None:
        return "axes must be a constant"
    return _static(node, ctx)


@REGISTRY.op(*_REDUCE, check=_check_reduce, conditions="constant axes")
def emit_reduce(node: ir.Node, ctx: EmitContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = ctx.rank(x)
    axes = _axes(node, rank)
    lay = ctx.layout(x)
    xin = ctx.input(x, lay)
    if not axes:
        ctx.alias(out, x)
        return
    pre = _PRE.get(node.op_type)
    if pre is not None:
        t = ctx.temp(f"{out.name}/{pre.lower()}", ctx.fb.shape(xin), ctx.fb.dtype(xin))
        ctx.fb.op(pre, [xin], [t])
        xin = t
    k = node.attributes.get("keepdims")
    keep = k is None or bool(k.as_int())
    out_lay = lay if keep else L.drop_axes(lay, axes)
    phys = sorted(L.physical_axis(a, lay) for a in axes)
    opt = fb.ReducerOptionsT()
    opt.keepDims = keep
    if node.op_type == "ReduceL2":
        t = ctx.temp(f"{out.name}/sumsq", L.physical_shape(ctx.shape(out), out_lay),
                     ctx.fb.dtype(xin))
        ctx.fb.op("SUM", [xin, ctx.int32(phys, f"axes{phys}")], [t], opt)
        y = ctx.output(out, out_lay)
        ctx.fb.op("SQRT", [t], [y])
        return
    y = ctx.output(out, out_lay)
    ctx.fb.op(_REDUCE[node.op_type], [xin, ctx.int32(phys, f"axes{phys}")], [y], opt)


def _check_arg(node: ir.Node, ctx: object) -> str | None:
    sel = node.attributes.get("select_last_index")
    if sel is not None and sel.as_int():
        return "select_last_index=1"
    return _static(node, ctx)


@REGISTRY.op("ArgMax", "ArgMin", check=_check_arg, conditions="select_last_index=0")
def emit_arg(node: ir.Node, ctx: EmitContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = ctx.rank(x)
    a = node.attributes.get("axis")
    axis = (a.as_int() if a is not None else 0) % rank
    lay = ctx.layout(x)
    xin = ctx.input(x, lay)
    k = node.attributes.get("keepdims")
    keep = k is None or bool(k.as_int())
    dropped = L.drop_axes(lay, [axis])
    opt = fb.ArgMaxOptionsT() if node.op_type == "ArgMax" else fb.ArgMinOptionsT()
    opt.outputType = fb.TensorType.INT64
    p = L.physical_axis(axis, lay)
    op = "ARG_MAX" if node.op_type == "ArgMax" else "ARG_MIN"
    if not keep:
        ctx.fb.op(op, [xin, ctx.int32([p], f"axis{p}")], [ctx.output(out, dropped)], opt)
        return
    shape = [d for i, d in enumerate(ctx.fb.shape(xin)) if i != p]
    t = ctx.temp(f"{out.name}/nokeep", shape, np.int64)
    ctx.fb.op(op, [xin, ctx.int32([p], f"axis{p}")], [t], opt)
    ctx.reshape(t, ctx.output(out, lay))


@REGISTRY.op("CumSum", check=constant_second_input("axis"), conditions="constant axis")
def emit_cumsum(node: ir.Node, ctx: EmitContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    lay = ctx.layout(x)
    axis = L.physical_axis(int(ctx.const(node.inputs[1])), lay)
    opt = fb.CumsumOptionsT()
    ex, rev = node.attributes.get("exclusive"), node.attributes.get("reverse")
    opt.exclusive = bool(ex.as_int()) if ex is not None else False
    opt.reverse = bool(rev.as_int()) if rev is not None else False
    y = ctx.output(out, lay)
    ctx.fb.op("CUMSUM", [ctx.input(x, lay), ctx.int32([axis], f"axis{axis}")], [y], opt)


@REGISTRY.op("TopK", check=constant_second_input("k"), conditions="constant k; int32 indices, cast to int64")
def emit_topk(node: ir.Node, ctx: EmitContext) -> None:
    """TOPK_V2 works on the last axis: the input is stored with the TopK axis last (its current
    layout when it already is), and both outputs keep that layout."""
    x = node.inputs[0]
    rank = ctx.rank(x)
    a = node.attributes.get("axis")
    axis = (a.as_int() if a is not None else -1) % rank
    lay = ctx.layout(x)
    if L.physical_axis(axis, lay) != rank - 1:
        lay = tuple(d for d in range(rank) if d != axis) + (axis,)
    xin = ctx.input(x, lay)
    k = int(np.asarray(ctx.const(node.inputs[1])).reshape(-1)[0])
    largest = node.attributes.get("largest")
    largest = largest is None or bool(largest.as_int())
    values, indices = node.outputs[0], node.outputs[1] if len(node.outputs) > 1 else None
    shape = L.physical_shape(ctx.shape(values), lay)
    dtype = ctx.fb.dtype(xin)
    if not largest:  # the k smallest are the k largest of the negation, in the same order
        neg = ctx.temp(f"{x.name}/neg", ctx.fb.shape(xin), dtype)
        ctx.fb.op("NEG", [xin], [neg])
        xin = neg
    top = ctx.output(values, lay) if largest else ctx.temp(f"{values.name}/neg", shape, dtype)
    idx32 = ctx.temp(f"{values.name}/indices32", shape, np.int32)
    ctx.fb.op("TOPK_V2", [xin, ctx.const_tensor(np.array(k, np.int32), f"k{k}", weight=False)],
              [top, idx32], fb.TopKV2OptionsT())
    if not largest:
        ctx.fb.op("NEG", [top], [ctx.output(values, lay)])
    if indices is not None and indices.name:
        opt = fb.CastOptionsT()
        opt.inDataType, opt.outDataType = fb.TensorType.INT32, fb.TensorType.INT64
        ctx.fb.op("CAST", [idx32], [ctx.output(indices, lay)], opt)
