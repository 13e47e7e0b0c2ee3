"""Shape and data-movement ATen ops. Shapes are static here, so every reshaping op becomes a
Reshape to the shape PyTorch computed, and shape-only tensors (zeros_like) become constants.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx_ir as ir
import torch

from edgeexport.exporter.aten.context import Context, NotLowerable, axis as _axis
from edgeexport.exporter.aten.registry import lowers

aten = torch.ops.aten


@lowers(aten.view.default, aten.reshape.default, aten._unsafe_view.default,
        aten.view_copy.default, aten.flatten.using_ints, aten.unflatten.int,
        aten.unsqueeze.default, aten.squeeze.default, aten.squeeze.dim, aten.squeeze.dims,
        aten.view_as.default, aten.reshape_as.default)
def _reshape(ctx: Context, node: Any, x: Any, *args: Any, **kwargs: Any) -> ir.Value:
    return _to_node_shape(ctx, node, x, "Reshape")


def _to_node_shape(ctx: Context, node: Any, x: Any, op_type: str) -> ir.Value:
    """x as `op_type` (Reshape or Expand) to the node's static output shape; x itself when it
    already has that shape."""
    value = ctx.value(x)
    shape = ctx.shape(node)
    if tuple(value.shape or ()) == shape:
        return value
    return ctx.op(op_type, [value, ctx.ints(shape)], final=True)


def _transpose(ctx: Context, node: Any, x: Any, perm: Sequence[int]) -> ir.Value:
    if list(perm) == list(range(len(perm))):
        return ctx.value(x)
    return ctx.op("Transpose", [ctx.value(x)], {"perm": [int(p) for p in perm]}, final=True)


@lowers(aten.permute.default)
def _permute(ctx: Context, node: Any, x: Any, dims: Sequence[int]) -> ir.Value:
    rank = ctx.rank(x)
    return _transpose(ctx, node, x, [_axis(d, rank) for d in dims])


@lowers(aten.transpose.int)
def _transpose_int(ctx: Context, node: Any, x: Any, d0: int, d1: int) -> ir.Value:
    rank = ctx.rank(x)
    perm = list(range(rank))
    a, b = _axis(d0, rank), _axis(d1, rank)
    perm[a], perm[b] = perm[b], perm[a]
    return _transpose(ctx, node, x, perm)


@lowers(aten.t.default, aten.numpy_T.default)
def _t(ctx: Context, node: Any, x: Any) -> ir.Value:
    return _transpose(ctx, node, x, list(range(ctx.rank(x)))[::-1])


@lowers(aten.expand.default, aten.expand_as.default, aten.broadcast_to.default)
def _expand(ctx: Context, node: Any, x: Any, *args: Any, **kwargs: Any) -> ir.Value:
    return _to_node_shape(ctx, node, x, "Expand")


@lowers(aten.repeat.default)
def _repeat(ctx: Context, node: Any, x: Any, repeats: Sequence[int]) -> ir.Value:
    value = ctx.value(x)
    rank_in, reps = ctx.rank(x), [int(r) for r in repeats]
    if len(reps) > rank_in:  # PyTorch prepends unit dimensions first
        shape = (1,) * (len(reps) - rank_in) + ctx.shape(x)
        value = ctx.op("Reshape", [value, ctx.ints(shape)], shape=shape, dtype=ctx.dtype(x))
    return ctx.op("Tile", [value, ctx.ints(reps)], final=True)


@lowers(aten.select.int)
def _select(ctx: Context, node: Any, x: Any, dim: int, index: int) -> ir.Value:
    shape = ctx.shape(x)
    axis = _axis(dim, len(shape))
    index = index + shape[axis] if index < 0 else index
    return ctx.op("Gather", [ctx.value(x), ctx.const(np.array(index, np.int64), f"{node.name}_index")],
                  {"axis": axis}, final=True)


@lowers(aten.slice.Tensor)
def _slice(ctx: Context, node: Any, x: Any, dim: int = 0, start: int | None = None,
           end: int | None = None, step: int = 1) -> ir.Value:
    shape = ctx.shape(x)
    axis = _axis(dim, len(shape))
    size = shape[axis]
    lo, hi, _ = slice(start, end, step).indices(size)
    if lo == 0 and hi >= size and step == 1:
        return ctx.value(x)
    return ctx.op("Slice", [ctx.value(x), ctx.ints([lo]), ctx.ints([max(hi, lo)]),
                            ctx.ints([axis]), ctx.ints([step])], final=True)


@lowers(aten.slice_scatter.default)
def _slice_scatter(ctx: Context, node: Any, x: Any, src: Any, dim: int = 0,
                   start: int | None = None, end: int | None = None, step: int = 1) -> ir.Value:
    axis = _axis(dim, ctx.rank(x))
    positions = range(*slice(start, end, step).indices(ctx.shape(x)[axis]))
    return _scatter_along(ctx, node, x, ctx.value(src), axis, list(positions))


@lowers(aten.select_scatter.default)
def _select_scatter(ctx: Context, node: Any, x: Any, src: Any, dim: int, index: int) -> ir.Value:
    shape = ctx.shape(x)
    axis = _axis(dim, len(shape))
    one = shape[:axis] + (1,) + shape[axis + 1:]
    row = ctx.op("Reshape", [ctx.value(src), ctx.ints(one)], shape=one, dtype=ctx.dtype(src))
    return _scatter_along(ctx, node, x, row, axis, [index % shape[axis]])


def _scatter_along(ctx: Context, node: Any, x: Any, src: ir.Value, axis: int,
                   positions: list[int]) -> ir.Value:
    """x with its entries at `positions` along `axis` replaced by src's, in order: a Concat of
    slices when the positions are contiguous (a KV-cache update), else a Gather over x ++ src."""
    shape, dtype = ctx.shape(x), ctx.dtype(node)
    size, src = shape[axis], ctx.cast(src, dtype)
    if not positions:
        return ctx.value(x)
    lo, hi = positions[0], positions[-1] + 1
    if positions == list(range(lo, hi)):
        parts = []
        for a, b in ((0, lo), (hi, size)):
            if b > a:
                part = shape[:axis] + (b - a,) + shape[axis + 1:]
                parts.append(ctx.op("Slice", [ctx.value(x), ctx.ints([a]), ctx.ints([b]),
                                              ctx.ints([axis])], shape=part, dtype=dtype))
        parts.insert(1 if lo > 0 else 0, src)
        if len(parts) == 1:
            return ctx.op("Identity", parts, final=True)
        return ctx.op("Concat", parts, {"axis": axis}, final=True)
    both = shape[:axis] + (size + len(positions),) + shape[axis + 1:]
    joined = ctx.op("Concat", [ctx.cast(ctx.value(x), dtype), src], {"axis": axis}, shape=both,
                    dtype=dtype)
    index = np.arange(size, dtype=np.int64)
    index[positions] = size + np.arange(len(positions))
    return ctx.op("Gather", [joined, ctx.const(index, f"{node.name}_index")], {"axis": axis},
                  final=True)


@lowers(aten.diagonal.default, aten.diagonal_copy.default)
def _diagonal(ctx: Context, node: Any, x: Any, offset: int = 0, dim1: int = 0,
              dim2: int = 1) -> ir.Value:
    """The diagonal moved to the last axis, as PyTorch does: the two dimensions go last,
    flattened into one, and a Gather picks the diagonal's flat indices."""
    shape = ctx.shape(x)
    rank = len(shape)
    a, b = _axis(dim1, rank), _axis(dim2, rank)
    rest = [d for d in range(rank) if d not in (a, b)]
    n1, n2 = shape[a], shape[b]
    rows = np.arange(max(-offset, 0), min(n1, n2 - offset)) if n2 - offset > 0 else []
    if len(rows) == 0:
        raise NotLowerable("an empty diagonal")
    moved = ctx.value(x)
    if rest + [a, b] != list(range(rank)):
        moved = ctx.op("Transpose", [moved], {"perm": rest + [a, b]},
                       shape=[shape[d] for d in rest] + [n1, n2], dtype=ctx.dtype(x))
    flat = tuple(shape[d] for d in rest) + (n1 * n2,)
    flat_value = ctx.op("Reshape", [moved, ctx.ints(flat)], shape=flat, dtype=ctx.dtype(x))
    index = np.asarray(rows, np.int64) * n2 + np.asarray(rows, np.int64) + offset
    return ctx.op("Gather", [flat_value, ctx.const(index, f"{node.name}_index")],
                  {"axis": len(flat) - 1}, final=True)


@lowers(aten.narrow.default)
def _narrow(ctx: Context, node: Any, x: Any, dim: int, start: int, length: int) -> ir.Value:
    size = ctx.shape(x)[_axis(dim, ctx.rank(x))]
    start = start + size if start < 0 else start
    return _slice(ctx, node, x, dim, start, start + length, 1)


@lowers(aten.cat.default, aten.concat.default, aten.concatenate.default)
def _cat(ctx: Context, node: Any, tensors: Sequence[Any], dim: int = 0) -> ir.Value:
    parts = [t for t in tensors if ctx.shape(t) != (0,)]  # PyTorch skips empty 1-d tensors
    if len(parts) == 1:
        return ctx.value(parts[0])
    dtype = ctx.dtype(node)
    return ctx.op("Concat", [ctx.cast(ctx.value(t), dtype) for t in parts],
                  {"axis": _axis(dim, ctx.rank(node))}, final=True)


@lowers(aten.stack.default)
def _stack(ctx: Context, node: Any, tensors: Sequence[Any], dim: int = 0) -> ir.Value:
    axis = _axis(dim, ctx.rank(node))
    parts = []
    for t in tensors:
        shape = list(ctx.shape(t))
        shape.insert(axis, 1)
        parts.append(ctx.op("Reshape", [ctx.value(t), ctx.ints(shape)], shape=shape,
                            dtype=ctx.dtype(t)))
    if len(parts) == 1:
        return ctx.op("Identity", parts, final=True)
    return ctx.op("Concat", parts, {"axis": axis}, final=True)


def _split(ctx: Context, node: Any, x: Any, sizes: list[int], axis: int) -> tuple:
    full = ctx.shape(x)
    shapes = [full[:axis] + (size,) + full[axis + 1:] for size in sizes]
    if len(sizes) == 1:
        return (ctx.value(x),)
    outs = ctx.op("Split", [ctx.value(x), ctx.ints(sizes)], {"axis": axis},
                  shape=shapes, dtype=ctx.dtype(x), num_outputs=len(sizes))
    return tuple(outs)


@lowers(aten.split.Tensor, aten.split_with_sizes.default, aten.split.sizes)
def _split_sizes(ctx: Context, node: Any, x: Any, split: Any, dim: int = 0) -> tuple:
    rank = ctx.rank(x)
    axis = _axis(dim, rank)
    size = ctx.shape(x)[axis]
    if isinstance(split, int):
        sizes = [min(split, size - i) for i in range(0, size, split)] if split else [size]
    else:
        sizes = [int(s) for s in split]
    return _split(ctx, node, x, sizes, axis)


@lowers(aten.chunk.default)
def _chunk(ctx: Context, node: Any, x: Any, chunks: int, dim: int = 0) -> tuple:
    axis = _axis(dim, ctx.rank(x))
    sizes = [int(v.shape[axis]) for v in node.meta["val"]]
    return _split(ctx, node, x, sizes, axis)


@lowers(aten.unbind.int)
def _unbind(ctx: Context, node: Any, x: Any, dim: int = 0) -> tuple:
    shape = ctx.shape(x)
    axis = _axis(dim, len(shape))
    parts = _split(ctx, node, x, [1] * shape[axis], axis)
    out = []
    for i, part in enumerate(parts):
        squeezed = shape[:axis] + shape[axis + 1:]
        out.append(ctx.op("Reshape", [part, ctx.ints(squeezed)], shape=squeezed,
                          dtype=ctx.dtype(x)))
    return tuple(out)


@lowers(aten.index_select.default)
def _index_select(ctx: Context, node: Any, x: Any, dim: int, index: Any) -> ir.Value:
    return ctx.op("Gather", [ctx.value(x), ctx.value(index)], {"axis": _axis(dim, ctx.rank(x))},
                  final=True)


@lowers(aten.embedding.default)
def _embedding(ctx: Context, node: Any, weight: Any, indices: Any, padding_idx: int = -1,
               scale_grad_by_freq: bool = False, sparse: bool = False) -> ir.Value:
    return ctx.op("Gather", [ctx.value(weight), ctx.value(indices)], {"axis": 0}, final=True)


@lowers(aten.constant_pad_nd.default)
def _constant_pad(ctx: Context, node: Any, x: Any, pad: Sequence[int], value: Any = 0.0
                  ) -> ir.Value:
    rank = ctx.rank(x)
    begins, ends = [0] * rank, [0] * rank
    for i in range(len(pad) // 2):  # PyTorch lists (begin, end) pairs from the last dimension
        begins[rank - 1 - i], ends[rank - 1 - i] = int(pad[2 * i]), int(pad[2 * i + 1])
    if min(begins + ends) < 0:
        raise NotLowerable("negative padding (cropping)")
    return ctx.op("Pad", [ctx.value(x), ctx.ints(begins + ends),
                          ctx.scalar(value, ctx.dtype(node))], {"mode": "constant"}, final=True)


@lowers(aten.pad.default)
def _pad(ctx: Context, node: Any, x: Any, pad: Sequence[int], mode: str = "constant",
         value: Any = None) -> ir.Value:
    if mode != "constant":
        raise NotLowerable(f"pad mode {mode}")
    return _constant_pad(ctx, node, x, pad, 0.0 if value is None else value)


@lowers(aten.flip.default)
def _flip(ctx: Context, node: Any, x: Any, dims: Sequence[int]) -> ir.Value:
    rank = ctx.rank(x)
    axes = sorted({_axis(int(d), rank) for d in dims})
    if not axes:
        return ctx.value(x)
    lowest = np.iinfo(np.int64).min
    return ctx.op("Slice", [ctx.value(x), ctx.ints([-1] * len(axes)),
                            ctx.ints([lowest] * len(axes)), ctx.ints(axes),
                            ctx.ints([-1] * len(axes))], final=True)


@lowers(aten.cumsum.default)
def _cumsum(ctx: Context, node: Any, x: Any, dim: int, *, dtype: Any = None) -> ir.Value:
    value = ctx.cast(ctx.value(x), ctx.dtype(node))
    axis = ctx.const(np.array(_axis(dim, max(ctx.rank(x), 1)), np.int64), f"{node.name}_axis")
    return ctx.op("CumSum", [value, axis], final=True)


def _filled(ctx: Context, node: Any, fill: Any) -> np.ndarray:
    return np.full(ctx.shape(node), fill, dtype=ctx.dtype(node))


@lowers(aten.zeros_like.default, aten.new_zeros.default, aten.empty_like.default,
        aten.new_empty.default)
def _zeros(ctx: Context, node: Any, *args: Any, **kwargs: Any) -> np.ndarray:
    return _filled(ctx, node, 0)


@lowers(aten.ones_like.default, aten.new_ones.default)
def _ones(ctx: Context, node: Any, *args: Any, **kwargs: Any) -> np.ndarray:
    return _filled(ctx, node, 1)


@lowers(aten.full_like.default)
def _full_like(ctx: Context, node: Any, x: Any, fill: Any, **kwargs: Any) -> np.ndarray:
    return _filled(ctx, node, fill)


@lowers(aten.new_full.default)
def _new_full(ctx: Context, node: Any, x: Any, size: Any, fill: Any, **kwargs: Any) -> np.ndarray:
    return _filled(ctx, node, fill)


@lowers(aten.upsample_nearest2d.vec, aten.upsample_nearest2d.default)
def _upsample_nearest(ctx: Context, node: Any, x: Any, output_size: Any = None,
                      scales: Any = None, *rest: Any) -> ir.Value:
    return _resize(ctx, node, x, output_size, scales, rest, "nearest", False)


@lowers(aten.upsample_bilinear2d.vec, aten.upsample_bilinear2d.default)
def _upsample_bilinear(ctx: Context, node: Any, x: Any, output_size: Any = None,
                       align_corners: bool = False, scales: Any = None, *rest: Any) -> ir.Value:
    return _resize(ctx, node, x, output_size, scales, rest, "linear", align_corners)


def _resize(ctx: Context, node: Any, x: Any, output_size: Any, scales: Any, rest: tuple,
            mode: str, align_corners: bool) -> ir.Value:
    in_shape, out_shape = ctx.shape(x), ctx.shape(node)
    if node.target in (aten.upsample_nearest2d.default, aten.upsample_bilinear2d.default):
        scales = [s for s in (scales, *rest) if s is not None] or None
        if scales is not None and len(scales) != 2:
            scales = None
    attrs: dict[str, Any] = {"mode": mode}
    if mode == "nearest":
        attrs.update(coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    else:
        if any(o == 1 for o in out_shape[2:]) and not align_corners:
            raise NotLowerable("bilinear resize to size 1")  # pytorch_half_pixel corner case
        attrs["coordinate_transformation_mode"] = "align_corners" if align_corners else "half_pixel"
    empty = ctx.const(np.zeros(0, np.float32), f"{node.name}_roi")
    if scales is not None and not align_corners:
        # PyTorch maps coordinates with the given scale factor, not with out/in
        factors = np.array([1.0, 1.0] + [float(s) for s in scales], np.float32)
        return ctx.op("Resize", [ctx.value(x), empty, ctx.const(factors, f"{node.name}_scales")],
                      attrs, final=True)
    if out_shape[:2] != in_shape[:2]:
        raise NotLowerable("resize over batch or channels")
    return ctx.op("Resize", [ctx.value(x), empty, None, ctx.ints(out_shape)], attrs, final=True)
