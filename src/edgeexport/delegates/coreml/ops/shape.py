"""Shape and data movement with constant parameters: Reshape, Transpose, Flatten, (Un)Squeeze,
Concat, Gather, Slice, Split. Parameters are resolved against static shapes at build time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport import ir as eir
from edgeexport.delegates.coreml.context import (
    REGISTRY, EmitContext, all_checks, attr, const_inputs, float_input, need_static_input_shape,
    static_shape,
)
from edgeexport.quantize.embedding import gathered_int8_rows


@REGISTRY.op("Reshape", check=const_inputs(1), conditions="constant shape")
def emit_reshape(node: ir.Node, ctx: EmitContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    shape = static_shape(out)
    if shape is None:
        shape = ctx.ints(node.inputs[1])
        in_shape = static_shape(x)
        if not attr(node, "allowzero", 0) and in_shape is not None:
            shape = [in_shape[i] if d == 0 else d for i, d in enumerate(shape)]
    ctx.set(out, ctx.mb.reshape(x=ctx.get(x), shape=np.array(shape, np.int32), name=ctx.name(out)))


@REGISTRY.op("Transpose")
def emit_transpose(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    perm = attr(node, "perm", None) or list(reversed(range(ctx.rank(x))))
    ctx.set(node.outputs[0], ctx.mb.transpose(x=ctx.get(x), perm=list(perm),
                                              name=ctx.name(node.outputs[0])))


@REGISTRY.op("Flatten", check=need_static_input_shape, conditions="static input shape")
def emit_flatten(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    shape = static_shape(x)
    axis = int(attr(node, "axis", 1)) % (len(shape) + 1) if shape else 1
    new = [math.prod(shape[:axis]), math.prod(shape[axis:])]
    ctx.set(node.outputs[0], ctx.mb.reshape(x=ctx.get(x), shape=np.array(new, np.int32),
                                            name=ctx.name(node.outputs[0])))


def _axes(node: ir.Node, ctx: EmitContext, rank: int) -> list[int] | None:
    if len(node.inputs) < 2 or node.inputs[1] is None:
        return None
    return sorted(a % rank for a in ctx.ints(node.inputs[1]))


@REGISTRY.op("Squeeze", check=all_checks(const_inputs(1), need_static_input_shape),
             conditions="constant axes, static input shape")
def emit_squeeze(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    shape = static_shape(x)
    axes = _axes(node, ctx, len(shape))
    if axes is None:
        axes = [i for i, d in enumerate(shape) if d == 1]
    ctx.set(node.outputs[0], ctx.mb.squeeze(x=ctx.get(x), axes=axes,
                                            name=ctx.name(node.outputs[0])))


@REGISTRY.op("Unsqueeze", check=all_checks(const_inputs(1), need_static_input_shape),
             conditions="constant axes")
def emit_unsqueeze(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    out_rank = len(static_shape(x)) + len(ctx.ints(node.inputs[1]))
    ctx.set(node.outputs[0], ctx.mb.expand_dims(x=ctx.get(x), axes=_axes(node, ctx, out_rank),
                                                name=ctx.name(node.outputs[0])))


@REGISTRY.op("Concat")
def emit_concat(node: ir.Node, ctx: EmitContext) -> None:
    values = [ctx.get(v) for v in node.inputs]
    ctx.set(node.outputs[0], ctx.mb.concat(values=values, axis=int(attr(node, "axis")),
                                           name=ctx.name(node.outputs[0])))


def _check_gather(node: ir.Node, ctx: Any) -> str | None:
    x = node.inputs[0]
    if x is None or x.shape is None:
        return "Gather needs a data input of known rank for CoreML"
    return None


@REGISTRY.op("Gather", check=_check_gather)
def emit_gather(node: ir.Node, ctx: EmitContext) -> None:
    x, idx, out = node.inputs[0], node.inputs[1], node.outputs[0]
    axis = int(attr(node, "axis", 0)) % ctx.rank(x)
    arr = ctx.const_array(idx)
    if arr is not None:
        dim = static_shape(x)[axis] if static_shape(x) else None
        if dim is not None:
            arr = np.where(arr < 0, arr + dim, arr)  # MIL wants indices in range
        if arr.ndim == 0:  # a single index: gather one slice, then drop the axis
            g = ctx.mb.gather(x=ctx.get(x), indices=np.array([arr], np.int32), axis=axis,
                              name=ctx.name(out) + "__one")
            ctx.set(out, ctx.mb.squeeze(x=g, axes=[axis], name=ctx.name(out)))
            return
        indices: Any = arr.astype(np.int32)
    else:
        indices = ctx.get(idx)
    table = ctx.get(x)
    if ctx.ios < 17 and gathered_int8_rows(out):
        # int8 gather is iOS 17+: the table (int8 in the package from iOS 16) is dequantized
        # first, with the scales of the DequantizeLinear that reads the rows (which then passes
        # them on)
        dq = next(u for u, _ in out.uses() if u.op_type == "DequantizeLinear")
        q, scale = ctx.const_array(x), ctx.const_array(dq.inputs[1])
        if ctx.ios >= 16:
            table = ctx.mb.constexpr_affine_dequantize(
                quantized_data=q, zero_point=np.zeros((), q.dtype), axis=q.ndim - 1,
                scale=ctx.to_mil_array(scale), name=ctx.name(out) + "__table")
        else:
            table = ctx.mb.const(val=ctx.to_mil_array(q * scale), name=ctx.name(out) + "__table")
        ctx.elided.add(out.name)
    ctx.set(out, ctx.mb.gather(x=table, indices=indices, axis=axis, name=ctx.name(out)))


@REGISTRY.op("Slice", check=all_checks(const_inputs(1, 2, 3, 4), need_static_input_shape),
             conditions="constant starts/ends/axes/steps, static input shape")
def emit_slice(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    shape = static_shape(x)
    rank = len(shape)
    starts, ends = ctx.ints(node.inputs[1]), ctx.ints(node.inputs[2])
    axes = ctx.ints(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] is not None \
        else list(range(len(starts)))
    steps = ctx.ints(node.inputs[4]) if len(node.inputs) > 4 and node.inputs[4] is not None \
        else [1] * len(starts)
    begin, end, stride = [0] * rank, list(shape), [1] * rank
    end_mask = [False] * rank
    for s, e, a, st in zip(starts, ends, axes, steps):
        a %= rank
        b, e2, st2 = slice(s, e, st).indices(shape[a])
        begin[a], end[a], stride[a] = b, e2, st2
        if st2 < 0 and e2 < 0:
            end_mask[a] = True  # runs past index 0: MIL would read -1 as "the last element"
    ctx.set(node.outputs[0], ctx.mb.slice_by_index(
        x=ctx.get(x), begin=np.array(begin, np.int32), end=np.array(end, np.int32),
        stride=np.array(stride, np.int32), end_mask=end_mask, name=ctx.name(node.outputs[0])))


@REGISTRY.op("Split", check=all_checks(const_inputs(1), need_static_input_shape),
             conditions="constant split sizes, static input shape")
def emit_split(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    shape = static_shape(x)
    axis = int(attr(node, "axis", 0)) % len(shape)
    sizes = ctx.ints(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] is not None \
        else None
    if sizes is None:
        n = len(node.outputs)
        chunk = -(-shape[axis] // n)
        sizes = [min(chunk, shape[axis] - i * chunk) for i in range(n)]
    parts = ctx.mb.split(x=ctx.get(x), split_sizes=sizes, axis=axis,
                         name=ctx.name(node.outputs[0]) + "__split")
    for value, var in zip(node.outputs, parts):
        ctx.set(value, var)


@REGISTRY.op("Expand", check=all_checks(const_inputs(1), need_static_input_shape),
             conditions="constant shape, static input shape")
def emit_expand(node: ir.Node, ctx: EmitContext) -> None:
    # ONNX Expand broadcasts both ways: align ranks with a reshape, then tile the 1-sized axes
    x, out = node.inputs[0], node.outputs[0]
    shape = static_shape(x)
    target = ctx.ints(node.inputs[1])
    rank = max(len(shape), len(target))
    src = [1] * (rank - len(shape)) + shape
    dst = [1] * (rank - len(target)) + target
    final = [max(s, d) for s, d in zip(src, dst)]
    var = ctx.get(x)
    if src != shape:
        var = ctx.mb.reshape(x=var, shape=np.array(src, np.int32), name=ctx.name(out) + "__rank")
    reps = [f // s for f, s in zip(final, src)]
    if any(r != 1 for r in reps):
        var = ctx.mb.tile(x=var, reps=reps, name=ctx.name(out))
    elif src == shape:
        var = ctx.mb.identity(x=var, name=ctx.name(out))
    ctx.set(out, var)


@REGISTRY.op("Tile", check=const_inputs(1), conditions="constant repeats")
def emit_tile(node: ir.Node, ctx: EmitContext) -> None:
    ctx.set(node.outputs[0], ctx.mb.tile(x=ctx.get(node.inputs[0]),
                                         reps=ctx.ints(node.inputs[1]),
                                         name=ctx.name(node.outputs[0])))


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}


def _check_pad(node: ir.Node, ctx: Any) -> str | None:
    if attr(node, "mode", "constant") not in _PAD_MODES:
        return f"Pad mode {attr(node, 'mode')} has no CoreML mapping"
    if len(node.inputs) > 3 and node.inputs[3] is not None:
        return "Pad with axes has no CoreML mapping"
    pads = eir.initializer_array(node.inputs[1]) if node.inputs[1] is not None else None
    if pads is not None and (pads < 0).any():
        return "Pad with negative pads (cropping) has no CoreML mapping"
    return None


@REGISTRY.op("Pad", check=all_checks(float_input, const_inputs(1, 2), need_static_input_shape,
                                     _check_pad),
             conditions="constant pads >= 0 and value; constant / reflect / edge")
def emit_pad(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    pads = ctx.ints(node.inputs[1])
    rank = len(pads) // 2
    mil_pad = [p for i in range(rank) for p in (pads[i], pads[i + rank])]
    mode = _PAD_MODES[attr(node, "mode", "constant")]
    value = ctx.const_array(node.inputs[2]) if len(node.inputs) > 2 and \
        node.inputs[2] is not None else None
    # typed like x even when unused: MIL rejects a default fp32 value beside fp16 data
    kwargs = {"constant_val": ctx.scalar(0.0 if value is None else float(value.reshape(())))}
    ctx.set(node.outputs[0], ctx.mb.pad(x=ctx.get(x), pad=np.array(mil_pad, np.int32),
                                        mode=mode, name=ctx.name(node.outputs[0]), **kwargs))
