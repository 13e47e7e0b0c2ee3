"""Reductions -> ncnn Reduction (axes mapped onto the blob's stored axes), with the mean/max
over H and W of an NCHW tensor taken by ncnn's faster global Pooling.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.vulkan.context import Blob, EmitContext
from edgeexport.delegates.vulkan.ops._common import (attr_int, attr_ints, check_all,
                                                    input_const, shape_of, static)
from edgeexport.delegates.vulkan.ops.pool import AVG, MAX, global_pool
from edgeexport.delegates.vulkan.registry import REGISTRY

_OPS = {"ReduceSum": 0, "ReduceSumSquare": 2, "ReduceMean": 3, "ReduceMax": 4, "ReduceMin": 5,
        "ReduceProd": 6, "ReduceL1": 7, "ReduceL2": 8, "ReduceLogSumExp": 10}

_IDENTITY_ON_UNIT = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd")


def reduce_axes(node: ir.Node) -> list[int] | None:
    """The reduced axes (all when none are given), or None when they are not constant."""
    shape = shape_of(node.inputs[0])
    r = len(shape)
    axes = attr_ints(node, "axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1] is not None:
        c = input_const(node, 1)
        if c is None:
            return None
        axes = [int(a) for a in np.asarray(c).ravel()]
    if not axes:
        if attr_int(node, "noop_with_empty_axes", 0):
            return []
        return list(range(r))
    return sorted(int(a) % r for a in axes)


def _check_reduce(node: ir.Node, ctx: object) -> str | None:
    return None if reduce_axes(node) is not None else "reduction axes must be constant"


@REGISTRY.op(*_OPS, check=check_all(static, _check_reduce), conditions="constant axes")
def emit_reduce(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    axes = reduce_axes(node)
    keepdims = attr_int(node, "keepdims", 1)
    if (node.op_type in ("ReduceMean", "ReduceMax") and len(x.shape) == 4 and axes == [2, 3]
            and x.shape[0] == 1):
        global_pool(node, ctx, AVG if node.op_type == "ReduceMean" else MAX, node.inputs[0],
                    node.outputs[0])
        return
    stored = [a for a in axes if a in x.kept]
    if not stored and node.op_type in _IDENTITY_ON_UNIT:
        ctx.reshaped_as(node.outputs[0], x)  # only unit axes reduced: values are unchanged
        return
    if len(stored) < len(axes) and len(set(x.kept) | set(axes)) <= 4:
        # keep the reduced unit axes in the blob so that ncnn applies the op (x^2, |x|, ...)
        kept = tuple(sorted(set(x.kept) | set(axes)))
        name = ctx.as_ncnn_shape(x, tuple(x.shape[a] for a in kept), node.name + "_view")
        x, stored = Blob(name, kept, x.shape), list(axes)
    params = {0: _OPS[node.op_type], 1: 0, 3: [x.axis(a) for a in stored], 4: keepdims, 5: 1}
    if keepdims:
        ctx.emit(node, "Reduction", [x.name], params, kept=x.kept)
        return
    remaining = [a for a in x.kept if a not in stored]
    # the output's IR axes are the input's without the reduced ones
    renumber = {a: a - sum(1 for b in axes if b < a) for a in remaining}
    kept = tuple(renumber[a] for a in remaining)
    if not kept:
        name = ctx.unique(node.outputs[0].name + "_all")
        ctx.add("Reduction", node.name, [x.name], [name], params)
        ctx.reshaped_as(node.outputs[0], Blob(name, (0,), (1,)))
        return
    ctx.emit(node, "Reduction", [x.name], params, kept=kept)


def _check_cumsum(node: ir.Node, ctx: object) -> str | None:
    if input_const(node, 1) is None:
        return "CumSum axis must be constant"
    if attr_int(node, "exclusive", 0) or attr_int(node, "reverse", 0):
        return "exclusive / reverse CumSum has no ncnn equivalent"
    return None


@REGISTRY.op("CumSum", check=check_all(static, _check_cumsum),
             conditions="constant axis, inclusive, forward")
def emit_cumsum(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    axis = int(np.asarray(input_const(node, 1)).ravel()[0]) % len(x.shape)
    if x.shape[axis] == 1:
        ctx.reshaped_as(node.outputs[0], x)
        return
    ctx.emit(node, "CumulativeSum", [x.name], {0: x.axis(axis)}, kept=x.kept)
