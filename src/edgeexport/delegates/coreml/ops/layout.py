"""Element rearrangements with a MIL op of their own: DepthToSpace (DCR = TensorFlow's
depth_to_space, CRD = PyTorch's pixel_shuffle), SpaceToDepth, Trilu (band_part, or a select
with a constant mask when the band cannot say it), GatherElements (gather_along_axis),
GatherND (gather_nd).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.coreml.context import (
    REGISTRY, EmitContext, all_checks, attr, const_inputs, float_input, need_static_input_shape,
    static_shape,
)


def _check_blocks(node: ir.Node, ctx: Any) -> str | None:
    shape = static_shape(node.inputs[0])
    bs = int(attr(node, "blocksize", 0))
    if len(shape) != 4 or bs < 1:
        return f"{node.op_type} needs a 4-D input and a blocksize >= 1 for CoreML"
    if node.op_type == "SpaceToDepth" and (shape[2] % bs or shape[3] % bs):
        return "SpaceToDepth needs H and W divisible by the blocksize"
    if node.op_type == "DepthToSpace" and shape[1] % (bs * bs):
        return "DepthToSpace needs C divisible by blocksize^2"
    return None


@REGISTRY.op("DepthToSpace", "SpaceToDepth",
             check=all_checks(float_input, need_static_input_shape, _check_blocks),
             conditions="4-D float input")
def emit_depth_space(node: ir.Node, ctx: EmitContext) -> None:
    x, out = ctx.get(node.inputs[0]), node.outputs[0]
    bs = int(attr(node, "blocksize"))
    if bs == 1:  # MIL wants blocks > 1; one-pixel blocks move nothing
        var = ctx.mb.identity(x=x, name=ctx.name(out))
    elif node.op_type == "SpaceToDepth":
        var = ctx.mb.space_to_depth(x=x, block_size=bs, name=ctx.name(out))
    elif attr(node, "mode", "DCR") == "CRD":
        var = ctx.mb.pixel_shuffle(x=x, upscale_factor=bs, name=ctx.name(out))
    else:
        var = ctx.mb.depth_to_space(x=x, block_size=bs, name=ctx.name(out))
    ctx.set(out, var)


_BAND_TYPES = (ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.INT32, ir.DataType.INT64,
               ir.DataType.BOOL)


def _check_trilu(node: ir.Node, ctx: Any) -> str | None:
    x = node.inputs[0]
    if len(static_shape(x)) < 2:
        return "Trilu needs an input of rank >= 2"
    if x.dtype not in _BAND_TYPES:
        return f"Trilu on {x.dtype.name} tensors has no CoreML mapping"
    return None


@REGISTRY.op("Trilu", check=all_checks(const_inputs(1), need_static_input_shape, _check_trilu),
             conditions="constant k, static input shape")
def emit_trilu(node: ir.Node, ctx: EmitContext) -> None:
    # band_part keeps (lower < 0 or i - j <= lower) and (upper < 0 or j - i <= upper): ONNX's
    # upper triangle from diagonal k <= 0 and lower triangle up to diagonal k >= 0
    x, out = node.inputs[0], node.outputs[0]
    k = ctx.ints(node.inputs[1])[0] if len(node.inputs) > 1 and node.inputs[1] is not None else 0
    upper = bool(attr(node, "upper", 1))
    if upper and k <= 0 or not upper and k >= 0:
        band = {"lower": -k, "upper": -1} if upper else {"lower": -1, "upper": k}
        ctx.set(out, ctx.mb.band_part(x=ctx.get(x), name=ctx.name(out), **band))
        return
    # the band starts off the main diagonal: keep by a constant [M, N] mask (select, not a
    # multiply, so inf and NaN outside the triangle still become 0)
    m, n = static_shape(x)[-2:]
    i, j = np.indices((m, n))
    keep = j - i >= k if upper else j - i <= k
    zero = ctx.to_mil_array(np.zeros((), ir.DataType(x.dtype).numpy()))
    ctx.set(out, ctx.mb.select(cond=keep, a=ctx.get(x), b=zero[()], name=ctx.name(out)))


def _check_gather_elements(node: ir.Node, ctx: Any) -> str | None:
    x = node.inputs[0]
    if x.dtype not in (ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.INT32,
                       ir.DataType.INT64):
        return f"{node.op_type} on {x.dtype.name} tensors has no CoreML mapping"
    return None


@REGISTRY.op("GatherElements", check=all_checks(need_static_input_shape, _check_gather_elements),
             conditions="static data shape; float or int data")
def emit_gather_elements(node: ir.Node, ctx: EmitContext) -> None:
    x, idx, out = node.inputs[0], node.inputs[1], node.outputs[0]
    shape = static_shape(x)
    axis = int(attr(node, "axis", 0)) % len(shape)
    arr = ctx.const_array(idx)
    if arr is not None:  # MIL wants indices in range: negative ones count from the end
        indices: Any = np.where(arr < 0, arr + shape[axis], arr).astype(np.int32)
    else:  # floor mod by the axis length maps [-d, d) onto [0, d)
        indices = ctx.mb.mod(x=ctx.get(idx), y=np.int32(shape[axis]),
                             name=ctx.name(out) + "__indices")
    ctx.set(out, ctx.mb.gather_along_axis(x=ctx.get(x), indices=indices, axis=axis,
                                          name=ctx.name(out)))


def _check_gather_nd(node: ir.Node, ctx: Any) -> str | None:
    if int(attr(node, "batch_dims", 0)):
        return "GatherND with batch_dims is not mapped (MIL takes it from iOS 16 only)"
    return _check_gather_elements(node, ctx)


@REGISTRY.op("GatherND", check=all_checks(need_static_input_shape, _check_gather_nd),
             conditions="static data shape; float or int data; batch_dims 0")
def emit_gather_nd(node: ir.Node, ctx: EmitContext) -> None:
    x, idx, out = node.inputs[0], node.inputs[1], node.outputs[0]
    arr = ctx.const_array(idx)
    k = arr.shape[-1] if arr is not None else int(idx.shape[-1])
    sizes = np.array(static_shape(x)[:k], np.int32)
    if arr is not None:  # MIL wants indices in range: negative ones count from the end
        indices: Any = np.where(arr < 0, arr + sizes, arr).astype(np.int32)
    else:  # floor mod by each addressed axis' length maps [-d, d) onto [0, d)
        indices = ctx.mb.mod(x=ctx.get(idx), y=sizes, name=ctx.name(out) + "__indices")
    ctx.set(out, ctx.mb.gather_nd(x=ctx.get(x), indices=indices, name=ctx.name(out)))
