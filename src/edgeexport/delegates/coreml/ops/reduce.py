"""Reductions with constant axes (the input form of opset 18+) onto MIL reduce_* ops;
ArgMax/ArgMin, CumSum and TopK."""

from __future__ import annotations

from typing import Any

import onnx_ir as ir

from edgeexport.delegates.coreml.context import (
    REGISTRY, EmitContext, all_checks, attr, const_inputs,
)

_REDUCE = {"ReduceMean": "reduce_mean", "ReduceSum": "reduce_sum", "ReduceMax": "reduce_max",
           "ReduceMin": "reduce_min", "ReduceProd": "reduce_prod", "ReduceL1": "reduce_l1_norm",
           "ReduceL2": "reduce_l2_norm", "ReduceSumSquare": "reduce_sum_square",
           "ReduceLogSumExp": "reduce_log_sum_exp"}
_TYPES = (ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.INT32, ir.DataType.INT64)


def _check_reduce(node: ir.Node, ctx: Any) -> str | None:
    x = node.inputs[0]
    if x is None or x.shape is None:
        return f"{node.op_type} needs an input of known rank for CoreML"
    if x.dtype not in _TYPES:
        return f"{node.op_type} on {x.dtype} tensors has no CoreML mapping"
    return None


@REGISTRY.op(*_REDUCE, check=all_checks(_check_reduce, const_inputs(1)),
             conditions="constant axes")
def emit_reduce(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    axes = ctx.ints(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] is not None else []
    keep = bool(attr(node, "keepdims", 1))
    if not axes:
        if attr(node, "noop_with_empty_axes", 0):
            ctx.set(node.outputs[0], ctx.mb.identity(x=ctx.get(x), name=ctx.name(node.outputs[0])))
            return
        axes = list(range(ctx.rank(x)))
    ctx.set(node.outputs[0], getattr(ctx.mb, _REDUCE[node.op_type])(
        x=ctx.get(x), axes=axes, keep_dims=keep, name=ctx.name(node.outputs[0])))


def _check_arg(node: ir.Node, ctx: Any) -> str | None:
    if attr(node, "select_last_index", 0):
        return f"{node.op_type} with select_last_index has no CoreML mapping"
    return _check_reduce(node, ctx)


@REGISTRY.op("ArgMax", "ArgMin", check=_check_arg,
             conditions="first index on ties; indices are int32 in the program")
def emit_arg(node: ir.Node, ctx: EmitContext) -> None:
    op = ctx.mb.reduce_argmax if node.op_type == "ArgMax" else ctx.mb.reduce_argmin
    ctx.set(node.outputs[0], op(x=ctx.get(node.inputs[0]), axis=int(attr(node, "axis", 0)),
                                keep_dims=bool(attr(node, "keepdims", 1)),
                                name=ctx.name(node.outputs[0])))


@REGISTRY.op("CumSum", check=all_checks(_check_reduce, const_inputs(1)),
             conditions="constant axis")
def emit_cumsum(node: ir.Node, ctx: EmitContext) -> None:
    axis = ctx.ints(node.inputs[1])[0] % ctx.rank(node.inputs[0])  # MIL takes -1..rank-1
    ctx.set(node.outputs[0], ctx.mb.cumsum(
        x=ctx.get(node.inputs[0]), axis=axis, exclusive=bool(attr(node, "exclusive", 0)),
        reverse=bool(attr(node, "reverse", 0)), name=ctx.name(node.outputs[0])))


@REGISTRY.op("TopK", check=all_checks(_check_reduce, const_inputs(1)),
             conditions="constant k; indices are int32 in the program")
def emit_topk(node: ir.Node, ctx: EmitContext) -> None:
    k = int(ctx.ints(node.inputs[1])[0])
    values, indices = ctx.mb.topk(x=ctx.get(node.inputs[0]), k=k, axis=int(attr(node, "axis", -1)),
                                  ascending=not attr(node, "largest", 1),
                                  name=ctx.name(node.outputs[0]))
    ctx.set(node.outputs[0], values)
    if len(node.outputs) > 1 and node.outputs[1].name:
        ctx.set(node.outputs[1], indices)
