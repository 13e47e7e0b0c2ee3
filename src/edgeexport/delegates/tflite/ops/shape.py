"""Shape and data movement. Transpose costs nothing (it changes the recorded layout); a reshape of
a channels-last tensor stays channels-last when its axis groups allow it, else it transposes once.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import onnx_ir as ir
from ai_edge_litert import schema_py_generated as fb

from edgeexport.delegates.tflite import layout as L
from edgeexport.delegates.tflite.context import EmitContext, is_const
from edgeexport.delegates.tflite.ops.elementwise import _static, constant_second_input
from edgeexport.delegates.tflite.registry import REGISTRY


def reshape_layout(in_shape: Sequence[int], lay: Sequence[int],
                   out_shape: Sequence[int]) -> L.Perm | None:
    """A layout for the reshaped tensor such that RESHAPE of the stored bytes gives it, or None.

    The non-unit axes of input and output are matched into groups with equal products; when each
    input group is stored contiguously and in order, the output groups follow the stored order.
    """
    ins = [a for a in range(len(in_shape)) if in_shape[a] != 1]
    outs = [a for a in range(len(out_shape)) if out_shape[a] != 1]
    groups: list[tuple[list[int], list[int]]] = []
    i = j = 0
    while i < len(ins) or j < len(outs):
        gi, go = [ins[i]], [outs[j]] if j < len(outs) else []
        if j >= len(outs):
            return None
        pi, po = in_shape[ins[i]], out_shape[outs[j]]
        i, j = i + 1, j + 1
        while pi != po:
            if pi < po and i < len(ins):
                gi.append(ins[i]); pi *= in_shape[ins[i]]; i += 1
            elif po < pi and j < len(outs):
                go.append(outs[j]); po *= out_shape[outs[j]]; j += 1
            else:
                return None
        groups.append((gi, go))
    stored = [a for a in lay if in_shape[a] != 1]
    order: list[int] = []
    pos = 0
    while pos < len(stored):
        g = next((g for g in groups if g[0][0] == stored[pos]), None)
        if g is None or stored[pos:pos + len(g[0])] != g[0]:
            return None
        order += g[1]
        pos += len(g[0])
    result = list(order)
    for a in range(len(out_shape)):
        if out_shape[a] == 1:
            result.insert(min(a, len(result)), a)
    return tuple(result)


def emit_reshape_to(ctx: EmitContext, x: ir.Value, out: ir.Value) -> None:
    in_shape, out_shape = ctx.shape(x), ctx.shape(out)
    if ctx.const(x) is not None:
        ctx.define(out, ctx.const_tensor(ctx.const(x).reshape(out_shape), out.name),
                   L.identity(len(out_shape)))
        return
    lay = ctx.layout(x)
    new = reshape_layout(in_shape, lay, out_shape)
    if new is None and len(out_shape) == 4 and any(
            u.op_type in ("Conv", "ConvTranspose") for u in _readers(ctx, out)):
        # a Conv reads it channels-last: move the input once into the order whose RESHAPE is
        # the channels-last result (MobileViT's fold), not into the IR order and then again
        lay = reshape_layout(out_shape, L.channels_last(4), in_shape) or lay
        new = reshape_layout(in_shape, lay, out_shape)
    if new is None or (out.name in ctx.graph_outputs and not L.is_identity(new)):
        lay, new = L.identity(len(in_shape)), L.identity(len(out_shape))
    src = ctx.input(x, lay)
    if ctx.fb.shape(src) == L.physical_shape(out_shape, new):
        ctx.define(out, src, new)  # the stored bytes and shape already are the result
        return
    ctx.reshape(src, ctx.output(out, new))


def _readers(ctx: EmitContext, v: ir.Value) -> list[ir.Node]:
    """The nodes that read `v`, looking through QuantizeLinear/DequantizeLinear."""
    out = []
    for u in ctx.consumers(v):
        if u.op_type in ("QuantizeLinear", "DequantizeLinear"):
            out += _readers(ctx, u.outputs[0])
        else:
            out.append(u)
    return out


def _check_reshape(node: ir.Node, ctx: object) -> str | None:
    for v in (node.inputs[0], node.outputs[0]):
        if v.shape is None or not all(isinstance(d, int) for d in v.shape):
            return "dynamic shapes"
        if len(v.shape) > 6:
            return "rank above 6"
    return None


@REGISTRY.op("Reshape", "Flatten", "Squeeze", "Unsqueeze", check=_check_reshape,
             conditions="static shapes, rank <= 6")
def emit_reshape(node: ir.Node, ctx: EmitContext) -> None:
    emit_reshape_to(ctx, node.inputs[0], node.outputs[0])


@REGISTRY.op("Transpose", check=_static, conditions="static shapes")
def emit_transpose(node: ir.Node, ctx: EmitContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = ctx.rank(x)
    p = node.attributes.get("perm")
    perm = list(p.as_ints()) if p is not None else list(reversed(range(rank)))
    if ctx.const(x) is not None:
        ctx.define(out, ctx.const_tensor(np.transpose(ctx.const(x), perm), out.name),
                   L.identity(rank))
        return
    new = L.after_transpose(ctx.layout(x), perm)
    if out.name in ctx.graph_outputs and not L.is_identity(new):
        y = ctx.output(out)
        ctx.fb.op("TRANSPOSE", [ctx.input(x, L.identity(rank)),
                                ctx.int32(perm, f"perm{''.join(map(str, perm))}")], [y])
        return
    ctx.define(out, ctx.input(x), new)


@REGISTRY.op("Concat", check=_static, conditions="static shapes")
def emit_concat(node: ir.Node, ctx: EmitContext) -> None:
    out = node.outputs[0]
    rank = ctx.rank(out)
    lay = next((ctx.layout(v) for v in node.inputs if ctx.const(v) is None), L.identity(rank))
    ins = [ctx.input(v, lay) for v in node.inputs if math.prod(ctx.shape(v)) > 0]
    if ctx.int8_node:  # int8 CONCATENATION needs every input at the output's scale
        from edgeexport.delegates.tflite.quant import requantize

        ins = [requantize(ctx, i, ctx.quant[out.name], f"{out.name}/in{k}")
               for k, i in enumerate(ins)]
    y = ctx.output(out, lay)
    opt = fb.ConcatenationOptionsT()
    opt.axis = L.physical_axis(node.attributes["axis"].as_int(), lay)
    ctx.fb.op("CONCATENATION", ins, [y], opt)


def _check_split(node: ir.Node, ctx: object) -> str | None:
    if len(node.inputs) > 1 and node.inputs[1] is not None and \
            not is_const(node.inputs[1]):
        return "split sizes must be constants"
    return _static(node, ctx)


@REGISTRY.op("Split", check=_check_split, conditions="constant split sizes")
def emit_split(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    lay = ctx.layout(x)
    a = node.attributes.get("axis")
    axis = (a.as_int() if a is not None else 0) % ctx.rank(x)
    sizes = [ctx.shape(o)[axis] for o in node.outputs]
    outs = [ctx.output(o, lay) for o in node.outputs]
    opt = fb.SplitVOptionsT()
    opt.numSplits = len(outs)
    ctx.fb.op("SPLIT_V", [ctx.input(x, lay), ctx.int32(sizes, f"sizes{sizes}"),
                          ctx.int32([L.physical_axis(axis, lay)],
                                    f"axis{L.physical_axis(axis, lay)}")], outs, opt)


def _check_slice(node: ir.Node, ctx: object) -> str | None:
    if any(v is not None and not is_const(v) for v in node.inputs[1:]):
        return "starts/ends/axes/steps must be constants"
    return _static(node, ctx)


@REGISTRY.op("Slice", check=_check_slice, conditions="constant starts/ends/axes/steps")
def emit_slice(node: ir.Node, ctx: EmitContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    shape = ctx.shape(x)
    rank = len(shape)
    ins = list(node.inputs) + [None] * (5 - len(node.inputs))
    starts = [int(v) for v in ctx.const(ins[1])]
    ends = [int(v) for v in ctx.const(ins[2])]
    axes = [int(v) % rank for v in ctx.const(ins[3])] if ins[3] is not None else \
        list(range(len(starts)))
    steps = [int(v) for v in ctx.const(ins[4])] if ins[4] is not None else [1] * len(starts)
    lay = ctx.layout(x)
    begin, end, stride = [0] * rank, [0] * rank, [1] * rank
    for a in range(rank):  # untouched axes run to their end, in the stored order
        end[L.physical_axis(a, lay)] = shape[a]
    end_mask = 0
    for s, e, a, st in zip(starts, ends, axes, steps):
        d = shape[a]
        s = s + d if s < 0 else s
        e = e + d if e < 0 else e
        if st > 0:
            s, e = min(max(s, 0), d), min(max(e, 0), d)
        else:
            s, e = min(max(s, -1), d - 1), min(max(e, -1), d - 1)
        p = L.physical_axis(a, lay)
        begin[p], end[p], stride[p] = s, e, st
        if st < 0 and e < 0:
            end_mask |= 1 << p  # "through index 0": TFLite would read -1 as the last index
    begin = [begin[i] for i in range(rank)]
    y = ctx.output(out, lay)
    opt = fb.StridedSliceOptionsT()
    opt.endMask = end_mask
    ctx.fb.op("STRIDED_SLICE", [ctx.input(x, lay), ctx.int32(begin, f"{out.name}/begin"),
                                ctx.int32(end, f"{out.name}/end"),
                                ctx.int32(stride, f"{out.name}/strides")], [y], opt)


def _check_gather(node: ir.Node, ctx: object) -> str | None:
    data, idx = node.inputs
    if not is_const(idx) and idx.dtype not in (ir.DataType.INT32, ir.DataType.INT64):
        return "indices must be int32/int64"
    return _static(node, ctx)


@REGISTRY.op("Gather", check=_check_gather, conditions="static shapes")
def emit_gather(node: ir.Node, ctx: EmitContext) -> None:
    data, idx = node.inputs
    out = node.outputs[0]
    rank = ctx.rank(data)
    a = node.attributes.get("axis")
    axis = (a.as_int() if a is not None else 0) % rank
    if not ctx.int8_node and out.name in ctx.quant:
        return _int8_lookup(node, ctx)
    ind = ctx.const(idx)
    if ind is not None:
        ind = np.where(ind < 0, ind + ctx.shape(data)[axis], ind).astype(np.int32)
        if ind.size and ind.ndim <= 1 and np.array_equal(ind.ravel(), np.arange(
                ind.ravel()[0], ind.ravel()[0] + ind.size)):
            return _gather_as_slice(ctx, data, out, axis, int(ind.ravel()[0]), ind.size, ind.ndim)
        it = ctx.const_tensor(ind, f"{idx.name}/i32", weight=False)
    else:
        it = ctx.input(idx, L.identity(ctx.rank(idx)))
    lay = ctx.layout(data) if ind is not None and ind.ndim == 0 else L.identity(rank)
    out_lay = L.drop_axes(lay, [axis]) if ind is not None and ind.ndim == 0 else \
        L.identity(ctx.rank(out))
    y = ctx.output(out, out_lay)
    opt = fb.GatherOptionsT()
    opt.axis = L.physical_axis(axis, lay)
    ctx.fb.op("GATHER", [ctx.input(data, lay), it], [y], opt)


def _check_gather_nd(node: ir.Node, ctx: object) -> str | None:
    batch = node.attributes.get("batch_dims")
    if batch is not None and batch.as_int() != 0:
        return "GATHER_ND has no batch_dims"
    return _check_gather(node, ctx)


@REGISTRY.op("GatherND", check=_check_gather_nd, conditions="static shapes; batch_dims 0")
def emit_gather_nd(node: ir.Node, ctx: EmitContext) -> None:
    data, idx, out = node.inputs[0], node.inputs[1], node.outputs[0]
    ind = ctx.const(idx)
    if ind is not None:  # TFLite wants indices in range: negative ones count from the end
        k = ind.shape[-1]
        ind = np.where(ind < 0, ind + np.array(ctx.shape(data)[:k]), ind).astype(np.int32)
        it = ctx.const_tensor(ind, f"{idx.name}/i32", weight=False)
    else:
        it = ctx.input(idx, L.identity(ctx.rank(idx)))
    ctx.fb.op("GATHER_ND", [ctx.input(data, L.identity(ctx.rank(data))), it],
              [ctx.output(out, L.identity(ctx.rank(out)))], fb.GatherNdOptionsT())


def _int8_lookup(node: ir.Node, ctx: EmitContext) -> None:
    """An int8 embedding table read row by row (quantize.embedding): the table stays int8 in
    the file and in memory; the gathered rows carry the per-channel parameters of the
    DequantizeLinear that reads them (a DEQUANTIZE after the GATHER)."""
    data, idx, out = node.inputs[0], node.inputs[1], node.outputs[0]
    table, q = ctx.const(data), ctx.quant[out.name]
    if table is None or table.dtype != np.int8 or \
            node.attributes.get_int("axis", 0) % table.ndim != 0 or \
            q["axis"] != ctx.rank(out) - 1:
        raise NotImplementedError("per-channel int8 values must be rows of an int8 table "
                                  "with one scale per column")
    tq = dict(q, axis=table.ndim - 1)
    t = ctx.const_tensor(table, data.name, quant=tq)
    y = ctx.output(out, L.identity(ctx.rank(out)), quant=q)
    opt = fb.GatherOptionsT()
    opt.axis = 0
    ctx.fb.op("GATHER", [t, ctx.input(idx, L.identity(ctx.rank(idx)))], [y], opt)


def _gather_as_slice(ctx: EmitContext, data: ir.Value, out: ir.Value, axis: int, start: int,
                     size: int, index_rank: int) -> None:
    """A gather of a contiguous range is a SLICE (+ RESHAPE for a scalar index): XNNPACK runs
    those, while a GATHER would cut the delegated graph in two."""
    lay = ctx.layout(data)
    if index_rank == 0 and _unbind(ctx, data, axis):
        lay = L.identity(ctx.rank(data))
    xin = ctx.input(data, lay)
    shape = ctx.fb.shape(xin)
    p = L.physical_axis(axis, lay)
    begin = [0] * len(shape)
    begin[p] = start
    sizes = list(shape)
    sizes[p] = size
    if index_rank == 1:
        y = ctx.output(out, lay)
        ctx.fb.op("SLICE", [xin, ctx.int32(begin, f"begin{begin}"),
                            ctx.int32(sizes, f"size{sizes}")], [y], fb.SliceOptionsT())
        return
    t = ctx.temp(f"{out.name}/slice", sizes, ctx.fb.dtype(xin),
                 quant=ctx.quant.get(out.name) if ctx.int8_node else None)
    ctx.fb.op("SLICE", [xin, ctx.int32(begin, f"begin{begin}"), ctx.int32(sizes, f"size{sizes}")],
              [t], fb.SliceOptionsT())
    ctx.reshape(t, ctx.output(out, L.drop_axes(lay, [axis])))


def _unbind(ctx: EmitContext, data: ir.Value, axis: int) -> bool:
    """`data` is an explicit Transpose that is only taken apart along one axis (attention's
    qkv[0], qkv[1], qkv[2]): transposing it once and slicing contiguous pieces beats slicing
    strided pieces and transposing each (one op instead of three, and K then needs no
    transpose of its own: BATCH_MATMUL reads it with adj_y)."""
    p = data.producer()
    while p is not None and p.op_type == "DequantizeLinear":  # int8: look through Q/DQ
        q = p.inputs[0].producer()
        p = q.inputs[0].producer() if q is not None and q.op_type == "QuantizeLinear" else None
    if p is None or p.op_type != "Transpose" or L.is_identity(ctx.layout(data)):
        return False
    users = ctx.consumers(data)
    if len(users) < 2 or data.name in ctx.graph_outputs:
        return False
    for u in users:
        a = u.attributes.get("axis")
        ind = ctx.const(u.inputs[1]) if u.op_type == "Gather" and u.inputs[0] is data else None
        if ind is None or np.asarray(ind).ndim != 0 or \
                (a.as_int() if a is not None else 0) % ctx.rank(data) != axis:
            return False
    return True


@REGISTRY.op("Expand", check=_static, conditions="static shapes")
def emit_expand(node: ir.Node, ctx: EmitContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    oshape = ctx.shape(out)
    lay = ctx.layout(x) if ctx.rank(x) == len(oshape) else L.identity(len(oshape))
    src = ctx.input(x, lay) if ctx.rank(x) == len(oshape) else ctx.input(x, L.identity(ctx.rank(x)))
    y = ctx.output(out, lay)
    phys = L.physical_shape(oshape, lay)
    ctx.fb.op("BROADCAST_TO", [src, ctx.int32(phys, f"shape{phys}")], [y])


@REGISTRY.op("Tile", check=constant_second_input("repeats"), conditions="constant repeats")
def emit_tile(node: ir.Node, ctx: EmitContext) -> None:
    x, reps = node.inputs
    lay = ctx.layout(x)
    r = [int(v) for v in ctx.const(reps)]
    y = ctx.output(node.outputs[0], lay)
    ctx.fb.op("TILE", [ctx.input(x, lay), ctx.int32([r[p] for p in lay], f"reps{r}{lay}")], [y])


def _check_pad(node: ir.Node, ctx: object) -> str | None:
    mode = node.attributes.get("mode")
    mode = mode.as_string() if mode is not None else "constant"
    if mode not in ("constant", "reflect"):
        return f"mode '{mode}'"
    if any(v is not None and not is_const(v) for v in node.inputs[1:]):
        return "pads/value/axes must be constants"
    pads = EmitContext.array(node.inputs[1])
    if pads is not None and (pads < 0).any():
        return "negative pads (cropping)"
    return _static(node, ctx)


@REGISTRY.op("Pad", check=_check_pad, conditions="constant or reflect mode, constant pads >= 0")
def emit_pad(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    rank = ctx.rank(x)
    lay = ctx.layout(x)
    ins = list(node.inputs) + [None] * (4 - len(node.inputs))
    pads = [int(v) for v in ctx.const(ins[1])]
    axes = [int(a) % rank for a in ctx.const(ins[3])] if ins[3] is not None else list(range(rank))
    k = len(axes)
    per = {a: (pads[i], pads[i + k]) for i, a in enumerate(axes)}
    phys = [list(per.get(a, (0, 0))) for a in lay]
    padt = ctx.const_tensor(np.asarray(phys, np.int32), f"pads{phys}", weight=False)
    y = ctx.output(node.outputs[0], lay)
    mode = node.attributes.get("mode")
    mode = mode.as_string() if mode is not None else "constant"
    xin = ctx.input(x, lay)
    if mode == "reflect":
        opt = fb.MirrorPadOptionsT()
        opt.mode = fb.MirrorPadMode.REFLECT
        ctx.fb.op("MIRROR_PAD", [xin, padt], [y], opt)
        return
    value = ctx.const(ins[2]) if ins[2] is not None else None
    if value is None or float(np.asarray(value).ravel()[0]) == 0.0:
        ctx.fb.op("PAD", [xin, padt], [y], fb.PadOptionsT())
    else:
        v = np.asarray(value, ctx.fb.dtype(xin)).reshape(1)
        ctx.fb.op("PADV2", [xin, padt, ctx.const_tensor(v, f"padval{v}", weight=False)], [y],
                  fb.PadV2OptionsT())


def _check_d2s(node: ir.Node, ctx: object) -> str | None:
    mode = node.attributes.get("mode")
    if mode is not None and mode.as_string() != "DCR":
        return "CRD mode"
    x = node.inputs[0]
    if x.shape is None or len(x.shape) != 4:
        return "input rank other than 4"
    return None


@REGISTRY.op("DepthToSpace", "SpaceToDepth", check=_check_d2s, conditions="DCR mode, rank 4")
def emit_depth_space(node: ir.Node, ctx: EmitContext) -> None:
    nhwc = L.channels_last(4)
    xin = ctx.input(node.inputs[0], nhwc)
    y = ctx.output(node.outputs[0], nhwc)
    bs = node.attributes["blocksize"].as_int()
    if node.op_type == "DepthToSpace":
        opt = fb.DepthToSpaceOptionsT()
        opt.blockSize = bs
        ctx.fb.op("DEPTH_TO_SPACE", [xin], [y], opt)
    else:
        opt2 = fb.SpaceToDepthOptionsT()
        opt2.blockSize = bs
        ctx.fb.op("SPACE_TO_DEPTH", [xin], [y], opt2)
