"""Data movement -> ncnn Reshape (also Flatten/Squeeze/Unsqueeze: the element order never
changes), Permute, Concat, Slice (Split), Crop (Slice, Gather of one index) and Embed.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.vulkan.context import Blob, EmitContext, const_array, default_kept
from edgeexport.delegates.vulkan.ncnn_format import ncnn_shape_params
from edgeexport.delegates.vulkan.ops._common import (attr_int, attr_ints, check_all,
                                                    input_const, shape_of, static)
from edgeexport.delegates.vulkan.ops.elementwise import ADD, MUL
from edgeexport.delegates.vulkan.quant import table_scales
from edgeexport.delegates.vulkan.registry import REGISTRY
from edgeexport.errors import ConversionError

#: ncnn Permute order_type names, innermost output axis first, by blob rank
_ORDERS = {
    1: ["W"],
    2: ["WH", "HW"],
    3: ["WHC", "HWC", "WCH", "CWH", "HCW", "CHW"],
    4: ["WHDC", "HWDC", "WDHC", "DWHC", "HDWC", "DHWC", "WHCD", "HWCD", "WCHD", "CWHD", "HCWD",
        "CHWD", "WDCH", "DWCH", "WCDH", "CWDH", "DCWH", "CDWH", "HDCW", "DHCW", "HCDW", "CHDW",
        "DCHW", "CDHW"],
}
_LETTERS = {1: "W", 2: "HW", 3: "CHW", 4: "CDHW"}  # outermost first


def permute_order_type(order: list[int]) -> int:
    """ncnn's order_type for an outermost-first permutation of a blob's axes."""
    letters = _LETTERS[len(order)]
    name = "".join(letters[order[j]] for j in reversed(range(len(order))))
    return _ORDERS[len(order)].index(name)


@REGISTRY.op("Reshape", "Flatten", "Squeeze", "Unsqueeze", check=static)
def emit_reshape(node: ir.Node, ctx: EmitContext) -> None:
    ctx.reshaped_as(node.outputs[0], ctx.blob(node.inputs[0]))


def _groups(shape: tuple[int, ...], perm: list[int]) -> tuple[list[int], list[int]]:
    """Non-unit axes, merged where they stay neighbours: (group sizes in input order, the
    output's order of groups)."""
    axes = [a for a in range(len(shape)) if shape[a] != 1]
    order = [a for a in perm if shape[a] != 1]
    groups: list[list[int]] = []
    for a in order:  # runs of consecutive input axes in the output order form one group
        if groups and axes.index(a) == axes.index(groups[-1][-1]) + 1:
            groups[-1].append(a)
        else:
            groups.append([a])
    by_input = sorted(groups, key=lambda g: g[0])
    sizes = [int(np.prod([shape[a] for a in g])) for g in by_input]
    return sizes, [by_input.index(g) for g in groups]


def _permute(ctx: EmitContext, node: ir.Node, src: str, src_shape: tuple[int, ...],
             sizes: list[int], order: list[int]) -> str:
    """ncnn Permute of a blob viewed as `sizes` (<= 4 non-unit groups) into `order`."""
    view = ctx.as_ncnn_shape(Blob(src, None, tuple(sizes), src_shape), tuple(sizes),
                             node.name + "_view")
    name = ctx.unique(f"{node.outputs[0].name}_perm")
    ctx.add("Permute", node.name, [view], [name], {0: permute_order_type(order)})
    return name


@REGISTRY.op("Transpose", check=static)
def emit_transpose(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    perm = attr_ints(node, "perm", list(reversed(range(len(x.shape)))))
    sizes, order = _groups(x.shape, perm)
    if order == sorted(order):  # only unit axes move: the element order is unchanged
        ctx.reshaped_as(node.outputs[0], x)
        return
    if len(sizes) <= 4:
        name = _permute(ctx, node, x.name, x.ncnn_shape, sizes, order)
        out = tuple(sizes[g] for g in order)
    else:
        # more groups than ncnn's 4 axes: bring one group at a time to its place, each a
        # 4-D swap of two neighbouring blocks (A, B, C, D) -> (A, C, B, D)
        cur, name, shape = list(range(len(sizes))), x.name, x.ncnn_shape
        for i, want in enumerate(order):
            j = cur.index(want)
            if j == i:
                continue
            block = [int(np.prod([sizes[g] for g in part]) if part else 1)
                     for part in (cur[:i], cur[i:j], [cur[j]], cur[j + 1:])]
            keep = [k for k in range(4) if block[k] != 1]
            swap = [0, 2, 1, 3]
            name = _permute(ctx, node, name, shape, [block[k] for k in keep],
                            [keep.index(k) for k in swap if k in keep])
            shape = tuple(block[k] for k in swap if k in keep)
            cur = cur[:i] + [cur[j]] + cur[i:j] + cur[j + 1:]
        out = shape
    ctx.reshaped_as(node.outputs[0], Blob(name, None, tuple(node.outputs[0].shape), out))


def _check_concat(node: ir.Node, ctx: object) -> str | None:
    shape = shape_of(node.outputs[0])
    axis = attr_int(node, "axis", 0) % len(shape)
    kept = default_kept(shape)
    if kept is not None and (axis in kept or len(kept) < 4):
        return None
    return "concatenation along an axis ncnn does not store"


@REGISTRY.op("Concat", check=check_all(static, _check_concat))
def emit_concat(node: ir.Node, ctx: EmitContext) -> None:
    out_shape = tuple(node.outputs[0].shape)
    axis = attr_int(node, "axis", 0) % len(out_shape)
    kept = default_kept(out_shape)
    if axis not in kept:
        kept = tuple(sorted(set(kept) | {axis}))
    names = []
    for i, v in enumerate(node.inputs):
        view = tuple(v.shape[a] for a in kept)
        c = const_array(v)
        if c is not None:
            names.append(ctx.constant_blob(f"{node.name}_const{i}", c.astype(np.float32), view))
        else:
            names.append(ctx.as_ncnn_shape(ctx.blob(v), view, f"{node.name}_in{i}"))
    ctx.emit(node, "Concat", names, {0: kept.index(axis)}, kept=kept)


def _split_sizes(node: ir.Node, dim: int) -> list[int] | None:
    sizes = input_const(node, 1)
    if sizes is not None:
        return [int(s) for s in sizes]
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        return None
    n = attr_int(node, "num_outputs", len(node.outputs))
    step = -(-dim // n)
    return [min(step, dim - i * step) for i in range(n)]


def _check_split(node: ir.Node, ctx: object) -> str | None:
    shape = shape_of(node.inputs[0])
    if _split_sizes(node, shape[attr_int(node, "axis", 0) % len(shape)]) is None:
        return "split sizes must be constant"
    return None


@REGISTRY.op("Split", check=check_all(static, _check_split), conditions="constant sizes")
def emit_split(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    axis = attr_int(node, "axis", 0) % len(x.shape)
    sizes = _split_sizes(node, x.shape[axis])
    names = [ctx.unique(o.name) for o in node.outputs]
    ctx.add("Slice", node.name, [x.name], names, {0: sizes, 1: x.axis(axis)})
    for o, name in zip(node.outputs, names):
        ctx.define(o, name, x.kept)


def _slice_args(node: ir.Node) -> tuple[list[int], list[int], list[int], list[int]] | None:
    """(axes, starts, ends, steps) clamped to the input shape, for constant positive steps."""
    shape = shape_of(node.inputs[0])
    starts, ends = input_const(node, 1), input_const(node, 2)
    if starts is None or ends is None:
        return None
    axes = input_const(node, 3) if len(node.inputs) > 3 and node.inputs[3] is not None \
        else np.arange(len(starts))
    steps = input_const(node, 4) if len(node.inputs) > 4 and node.inputs[4] is not None \
        else np.ones(len(starts), np.int64)
    if axes is None or steps is None or np.any(steps < 1):
        return None
    out_axes, out_starts, out_ends = [], [], []
    for a, s, e in zip(axes, starts, ends):
        a = int(a) % len(shape)
        d = shape[a]
        s, e = int(s), int(e)
        s = min(max(s + d if s < 0 else s, 0), d)
        e = min(max(e + d if e < 0 else e, 0), d)
        out_axes.append(a)
        out_starts.append(s)
        out_ends.append(e)
    return out_axes, out_starts, out_ends, [int(k) for k in steps]


def _rows(d: int, s: int, e: int, k: int) -> tuple[int, int] | None:
    """x[s:e:k] on an axis of size d as whole rows of k: (first row, row count) of the
    (d // k, k) view whose column s % k is taken; None when the last row is incomplete."""
    n = max(0, -(-(e - s) // k))
    return (s // k, n) if n > 0 and (s // k + n) * k <= d else None


def _check_slice(node: ir.Node, ctx: object) -> str | None:
    args = _slice_args(node)
    if args is None:
        return "Slice needs constant starts/ends/axes and positive steps"
    shape = shape_of(node.inputs[0])
    for a, s, e, k in zip(*args):
        if k > 1 and _rows(shape[a], s, e, k) is None:
            return (f"strided Slice {s}:{e}:{k} of an axis of {shape[a]}: mapped as whole rows "
                    "of the step (Reshape + Crop), and its last row is incomplete")
    return None


def crop(node: ir.Node, ctx: EmitContext, x: Blob, axes: list[int], starts: list[int],
         ends: list[int], output: ir.Value) -> None:
    """Crop the blob on IR axes; then give `output` its own layout (a Gather drops the axis)."""
    if x.kept is None or any(a not in x.kept for a in axes):
        if len(axes) != 1:
            raise ConversionError(f"{node.op_type} '{node.name}': cropping several axes of a "
                                  "tensor with more axes than ncnn holds")
        # one axis: view the tensor as (before, axis, after), which ncnn always holds
        a = axes[0]
        view = (int(np.prod(x.shape[:a])), x.shape[a], int(np.prod(x.shape[a + 1:])))
        name = ctx.as_ncnn_shape(x, view, node.name + "_view")
        x, axes = Blob(name, (0, 1, 2), view), [1]
    sel = [(x.axis(a), s, e) for a, s, e in zip(axes, starts, ends)
           if not (s == 0 and e == x.shape[a])]
    if not sel:
        ctx.reshaped_as(output, x)
        return
    params = {9: [s for _, s, _ in sel], 10: [e for _, _, e in sel], 11: [a for a, _, _ in sel]}
    cropped = list(x.shape)
    for a, s, e in zip(axes, starts, ends):
        cropped[a] = e - s
    name = ctx.unique(output.name + ("_crop" if tuple(cropped) != tuple(output.shape) else ""))
    ctx.add("Crop", node.name, [x.name], [name], params)
    blob = Blob(name, x.kept, tuple(cropped))
    if tuple(cropped) == tuple(output.shape):
        ctx.blobs[output.name] = blob
    else:
        ctx.reshaped_as(output, blob)


def _strided(node: ir.Node, ctx: EmitContext, x: Blob, a: int, s: int, e: int, k: int) -> Blob:
    """x[..., s:e:k, ...] on IR axis a: seen as (before, d // k, k, after), ncnn crops the
    rows and one column (its Crop has no step); the elements stay in IR order."""
    d = x.shape[a]
    first, n = _rows(d, s, e, k)
    before, after = int(np.prod(x.shape[:a])), int(np.prod(x.shape[a + 1:]))
    if d % k:  # the incomplete last row is never selected: crop it away first
        src = ctx.as_ncnn_shape(x, (before, d, after), f"{node.name}_v{a}")
        tail = ctx.unique(f"{node.outputs[0].name}_tail{a}")
        ctx.add("Crop", f"{node.name}_tail{a}", [src], [tail], {9: [0], 10: [d - d % k], 11: [1]})
        x = Blob(tail, None, x.shape, (before, d - d % k, after))
    view = (before, (d - d % k) // k, k, after)
    src = ctx.as_ncnn_shape(x, view, f"{node.name}_rows{a}")
    name = ctx.unique(f"{node.outputs[0].name}_step{a}")
    ctx.add("Crop", f"{node.name}_step{a}", [src], [name],
            {9: [first, s % k], 10: [first + n, s % k + 1], 11: [1, 2]})
    shape = list(x.shape)
    shape[a] = n
    return Blob(name, None, tuple(shape), (before, n, 1, after))


@REGISTRY.op("Slice", check=check_all(static, _check_slice),
             conditions="constant; a step > 1 as whole rows of the step")
def emit_slice(node: ir.Node, ctx: EmitContext) -> None:
    axes, starts, ends, steps = _slice_args(node)
    x = ctx.blob(node.inputs[0])
    if all(k == 1 for k in steps):
        crop(node, ctx, x, axes, starts, ends, node.outputs[0])
        return
    for a, s, e, k in zip(axes, starts, ends, steps):
        if k > 1 or (s, e) != (0, x.shape[a]):
            x = _strided(node, ctx, x, a, s, e, k)
    ctx.reshaped_as(node.outputs[0], x)


def _check_gather(node: ir.Node, ctx: object) -> str | None:
    data, idx = const_array(node.inputs[0]), const_array(node.inputs[1])
    axis = attr_int(node, "axis", 0)
    if data is not None and idx is None:
        if data.ndim != 2 or axis != 0:
            return "a constant table is only gathered as an embedding (2-D, axis 0)"
        if not _embed_ids(node.inputs[1]) and data.shape[0] > GRID_MAX_ROWS:
            return (f"an embedding of {data.shape[0]} rows with ids computed in the graph (or "
                    "also read as values): ncnn's Embed reads int32 ids from a model input only, "
                    f"and a nearest GridSample locates float ids exactly up to {GRID_MAX_ROWS} "
                    "rows")
        return None
    if idx is None:
        return "Gather of runtime data needs constant indices"
    flat = idx.ravel()
    if idx.ndim > 1 or flat.size == 0 or np.any(np.diff(flat) != 1):
        return "Gather indices must be one index or a contiguous range"
    return None


@REGISTRY.op("Gather", check=check_all(static, _check_gather),
             conditions="embedding lookup, or one index / contiguous range")
def emit_gather(node: ir.Node, ctx: EmitContext) -> None:
    data, idx = const_array(node.inputs[0]), const_array(node.inputs[1])
    if data is not None:  # embedding: ncnn's Embed reads the ids blob as int32
        scales = table_scales(node)  # an int8 table: its DequantizeLinear is folded in
        if scales is not None:
            data = data.astype(np.float32) * scales
        if not _embed_ids(node.inputs[1]):
            _grid_embedding(node, ctx, data)
            return
        ctx.int_inputs.add(node.inputs[1].name)
        ids = ctx.blob(node.inputs[1])
        n = int(np.prod(ids.shape)) if ids.shape else 1
        vocab, dim = data.shape
        name = ctx.unique(node.outputs[0].name)
        params = {0: int(dim), 1: int(vocab), 2: 0, 3: int(data.size)}
        ctx.add("Embed", node.name, [ctx.as_ncnn_shape(ids, (n,), node.name + "_ids")], [name],
                params, [(data.astype(np.float32), True)])
        view = (n, dim)
        ctx.reshaped_as(node.outputs[0], Blob(name, (0, 1), view))
        return
    x = ctx.blob(node.inputs[0])
    axis = attr_int(node, "axis", 0) % len(x.shape)
    flat = idx.ravel().astype(np.int64)
    flat = np.where(flat < 0, flat + x.shape[axis], flat)
    if x.shape[axis] == 1:  # a unit axis: the only valid index is 0
        ctx.reshaped_as(node.outputs[0], x)
        return
    crop(node, ctx, x, [axis], [int(flat[0])], [int(flat[-1]) + 1], node.outputs[0])


def _embed_ids(ids: ir.Value) -> bool:
    """ncnn's Embed can read these ids: a model input (fed as int32 bits) that only feeds
    embeddings (a blob is either int32 bits or float values)."""
    return ids.is_graph_input() and all(u.node.op_type == "Gather" and u.idx == 1
                                        for u in ids.uses())


#: the most rows a GridSample coordinate addresses exactly: the normalized coordinate goes
#: through ~4 float32 roundings of ~2**-23 each, scaled by the row count, and must stay < 0.5
GRID_MAX_ROWS = 2**19
#: ncnn layer param 31 (featmask): bit 1 no fp16 storage, bit 4 no Vulkan: the layer runs on
#: the CPU in float32, so the sample coordinates are not rounded to fp16 on the GPU
_CPU_FP32 = (1 << 1) | (1 << 4)


def _grid_embedding(node: ir.Node, ctx: EmitContext, table: np.ndarray) -> None:
    """table[ids] for ids held as float blobs (computed in the graph, e.g. RoBERTa's position
    ids, or a model input that other ops also read, e.g. RoBERTa's input_ids): the table as an
    image of `dim` channels, one pixel row of `rows` pixels, sampled by ncnn's GridSample with
    nearest rounding at x = ids, which copies whole rows (exact for whole ids; ids outside the
    table are clamped to its border, as Embed clamps). It costs the copy, O(ids x dim), where a
    one-hot product would cost O(ids x rows x dim)."""
    ids = ctx.blob(node.inputs[1])
    n = int(np.prod(ids.shape)) if ids.shape else 1
    rows, dim = table.shape
    base = node.outputs[0].name
    name = node.name or base
    if ctx.fp16 and rows > 2049:  # fp16 blobs hold whole numbers exactly up to 2048 only
        raise ConversionError(f"Gather '{name}': a table of {rows} rows read with ids computed "
                              "in the graph needs float32 blobs (fp16 holds ids up to 2048 "
                              "exactly): convert with --precision fp32")
    # align_corners=0: pixel x = ((g + 1) * rows - 1) / 2, so g = id * 2 / rows + 1 / rows - 1
    flat = ctx.as_ncnn_shape(ids, (1, 1, n), name + "_ids")
    scaled, gx, grid, picked, flat_out, out = (
        ctx.unique(f"{base}_{s}") for s in ("gs", "gx", "grid", "rows", "cols", "gather"))
    ctx.add("BinaryOp", f"{name}_gs", [flat], [scaled],
            {0: MUL, 1: 1, 2: 2.0 / rows, 31: _CPU_FP32})
    ctx.add("BinaryOp", f"{name}_gx", [scaled], [gx],
            {0: ADD, 1: 1, 2: 1.0 / rows - 1.0, 31: _CPU_FP32})
    # the one pixel row, and the table: kept on the CPU in float32 for the CPU-only GridSample
    # (on the GPU they would be copied back at every run)
    gy = ctx.constant_blob(name + "_gy", np.zeros((1, 1, n), np.float32), (1, 1, n), _CPU_FP32)
    ctx.add("Concat", f"{name}_grid", [gx, gy], [grid], {0: 0, 31: _CPU_FP32})
    image = ctx.constant_blob(name + "_table", table.T, (dim, 1, rows), _CPU_FP32)
    # GridSample: 0 = nearest (2), 1 = border padding (2), 2 = align_corners 0, 3 = grid (2, h, w)
    ctx.add("GridSample", name, [image, grid], [picked], {0: 2, 1: 2, 2: 0, 3: 1})
    ctx.add("Reshape", f"{name}_cols", [picked], [flat_out], ncnn_shape_params((dim, n)))
    ctx.add("Permute", f"{name}_t", [flat_out], [out], {0: 1})  # (dim, n) -> (n, dim)
    ctx.reshaped_as(node.outputs[0], Blob(out, (0, 1), (n, int(dim))))

