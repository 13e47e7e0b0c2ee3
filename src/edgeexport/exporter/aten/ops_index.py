"""Advanced indexing (`x[idx]`, `x[i, j]`, `x[mask_rows, cols] = v`): aten.index.Tensor and
aten.index_put. Constant indices (HF's mask and position arithmetic) become a Reshape, a Slice
or one Gather every target takes; runtime indices become Gather (one index) or GatherND.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import onnx_ir as ir
import torch

from edgeexport.exporter.aten.context import Context, NotLowerable
from edgeexport.exporter.aten.registry import lowers

aten = torch.ops.aten


def _indexed(ctx: Context, x: Any, indices: Sequence[Any]) -> list[tuple[int, Any]]:
    """(axis, FX index) for each index tensor given; None entries are whole-axis slices."""
    dims = [(d, idx) for d, idx in enumerate(indices) if idx is not None]
    if not dims:
        raise NotLowerable("index without index tensors")
    for _, idx in dims:
        if ctx.dtype(idx) in (np.bool_, np.uint8):
            raise NotLowerable("boolean-mask indexing (data-dependent shape)")
    return dims


def _positions(const: np.ndarray, size: int) -> np.ndarray:
    """Constant indices as non-negative int64 (PyTorch allows -size..size-1)."""
    const = np.asarray(const).astype(np.int64)
    if const.size and (const.min() < -size or const.max() >= size):
        raise NotLowerable(f"an index out of range for a dimension of size {size}")
    return np.where(const < 0, const + size, const)


def _front(ctx: Context, x: Any, axes: list[int]) -> tuple[ir.Value, tuple[int, ...], int]:
    """x with the indexed axes moved where the result's index dimensions go: left in place
    when they are adjacent, else first (NumPy's rule). Returns the value, its shape and the
    position of the first indexed axis in it."""
    shape = ctx.shape(x)
    if axes == list(range(axes[0], axes[-1] + 1)):
        return ctx.value(x), shape, axes[0]
    perm = axes + [d for d in range(len(shape)) if d not in axes]
    moved = tuple(shape[d] for d in perm)
    return ctx.op("Transpose", [ctx.value(x)], {"perm": perm}, shape=moved,
                  dtype=ctx.dtype(x)), moved, 0


def _reshape(ctx: Context, value: ir.Value, shape: Sequence[int], dtype: Any) -> ir.Value:
    if tuple(value.shape or ()) == tuple(shape):
        return value
    return ctx.op("Reshape", [value, ctx.ints(shape)], shape=tuple(shape), dtype=dtype)


def _flat_run(flat: np.ndarray) -> tuple[int, int, int] | None:
    """(start, stop, step) when the flat indices are one arithmetic run, step >= 1."""
    f = flat.reshape(-1)
    if f.size == 1:
        return int(f[0]), int(f[0]) + 1, 1
    step = int(f[1] - f[0])
    if step < 1 or not np.array_equal(f, f[0] + step * np.arange(f.size)):
        return None
    return int(f[0]), int(f[-1]) + 1, step


@lowers(aten.index.Tensor)
def _index(ctx: Context, node: Any, x: Any, indices: Sequence[Any]) -> ir.Value:
    dims = _indexed(ctx, x, indices)
    consts = [ctx.constant(idx) for _, idx in dims]
    if len(dims) == 1 and consts[0] is None:  # x[:, ids]: one Gather
        return ctx.op("Gather", [ctx.value(x), ctx.value(dims[0][1])], {"axis": dims[0][0]},
                      final=True)
    if all(c is not None for c in consts):
        return _index_constant(ctx, node, x, [d for d, _ in dims], consts)
    return _index_gather_nd(ctx, node, x, dims)


def _index_constant(ctx: Context, node: Any, x: Any, axes: list[int],
                    consts: list[np.ndarray]) -> ir.Value:
    """Constant indices on several axes are one flat index into those axes merged: a Gather,
    or a Slice (or nothing) when the flat indices are a run."""
    shape, dtype = ctx.shape(x), ctx.dtype(x)
    sizes = [shape[d] for d in axes]
    picked = np.broadcast_arrays(*[_positions(c, n) for c, n in zip(consts, sizes)])
    flat = np.ravel_multi_index(tuple(picked), sizes) if picked[0].size else picked[0]
    value, moved, p = _front(ctx, x, axes)
    merged = moved[:p] + (math.prod(sizes),) + moved[p + len(axes):]
    value = _reshape(ctx, value, merged, dtype)
    out_shape = ctx.shape(node)
    run = _flat_run(flat) if flat.size else None
    if run is not None:
        start, stop, step = run
        if not (start == 0 and stop == merged[p] and step == 1):
            cut = merged[:p] + (len(range(start, stop, step)),) + merged[p + 1:]
            value = ctx.op("Slice", [value, ctx.ints([start]), ctx.ints([stop]), ctx.ints([p]),
                                     ctx.ints([step])], shape=cut, dtype=dtype)
        if tuple(value.shape or ()) == out_shape:
            return ctx.op("Identity", [value], final=True)
        return ctx.op("Reshape", [value, ctx.ints(out_shape)], final=True)
    return ctx.op("Gather", [value, ctx.const(flat.astype(np.int64), f"{node.name}_index")],
                  {"axis": p}, final=True)


def _index_tuples(ctx: Context, dims: list[tuple[int, Any]], shape: Sequence[int]
                  ) -> tuple[ir.Value, tuple[int, ...]]:
    """The index tensors broadcast and stacked on a new last axis: GatherND's (..., k) input."""
    metas = [tuple(ctx.shape(idx)) for _, idx in dims]
    bshape = tuple(np.broadcast_shapes(*metas))
    cols = []
    for (d, idx), m in zip(dims, metas):
        const = ctx.constant(idx)
        if const is not None:
            col = ctx.const(np.broadcast_to(_positions(const, shape[d]), bshape)[..., None].copy(),
                            f"{ctx.fx_node.name}_index")
        else:
            col = ctx.cast(ctx.value(idx), np.int64)
            if m != bshape:
                col = ctx.op("Expand", [col, ctx.ints(bshape)], shape=bshape, dtype=np.int64)
            col = _reshape(ctx, col, bshape + (1,), np.int64)
        cols.append(col)
    if len(cols) == 1:
        return cols[0], bshape
    stacked = ctx.op("Concat", cols, {"axis": len(bshape)}, shape=bshape + (len(cols),),
                     dtype=np.int64)
    return stacked, bshape


def _index_gather_nd(ctx: Context, node: Any, x: Any, dims: list[tuple[int, Any]]) -> ir.Value:
    """Runtime indices on several axes: GatherND over the indexed axes moved first."""
    shape, dtype = ctx.shape(x), ctx.dtype(x)
    axes = [d for d, _ in dims]
    perm = axes + [d for d in range(len(shape)) if d not in axes]
    value = ctx.value(x)
    if perm != list(range(len(shape))):
        value = ctx.op("Transpose", [value], {"perm": perm}, shape=[shape[d] for d in perm],
                       dtype=dtype)
    tuples, bshape = _index_tuples(ctx, dims, shape)
    rest = [shape[d] for d in perm[len(axes):]]
    adjacent = axes == list(range(axes[0], axes[-1] + 1))
    if not adjacent or axes[0] == 0:
        return ctx.op("GatherND", [value, tuples], final=True)
    gathered = ctx.op("GatherND", [value, tuples], shape=bshape + tuple(rest), dtype=dtype)
    # adjacent axes after a sliced one: the index dimensions go back where the axes were
    nb, before = len(bshape), axes[0]
    back = list(range(nb, nb + before)) + list(range(nb)) + list(range(nb + before,
                                                                        nb + len(rest)))
    return ctx.op("Transpose", [gathered], {"perm": back}, final=True)


@lowers(aten.index_put.default)
def _index_put(ctx: Context, node: Any, x: Any, indices: Sequence[Any], values: Any,
               accumulate: bool = False) -> ir.Value:
    """x[idx...] = values with constant indices, each position written once: x and the values
    concatenated flat, and one constant Gather that reads every output position from either."""
    if accumulate:
        raise NotLowerable("index_put with accumulate=True")
    dims = _indexed(ctx, x, indices)
    consts = [ctx.constant(idx) for _, idx in dims]
    if any(c is None for c in consts):
        raise NotLowerable("index_put with runtime indices")
    shape, dtype = ctx.shape(x), ctx.dtype(node)
    axes = [d for d, _ in dims]
    # the result of x[idx] as positions into x: written values land exactly there
    flat_positions = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
    target = flat_positions[_numpy_index(axes, consts, len(shape))]
    if np.unique(target).size != target.size:
        raise NotLowerable("index_put writing one position twice")
    vals = ctx.cast(ctx.value(values), dtype)
    vshape = tuple(ctx.shape(values))
    full = ctx.op("Expand", [vals, ctx.ints(target.shape)], shape=target.shape, dtype=dtype) \
        if vshape != target.shape else vals
    source = np.arange(math.prod(shape), dtype=np.int64)
    source[target.reshape(-1)] = math.prod(shape) + np.arange(target.size)
    flat_x = _reshape(ctx, ctx.cast(ctx.value(x), dtype), (math.prod(shape),), dtype)
    flat_v = _reshape(ctx, full, (target.size,), dtype)
    both = ctx.op("Concat", [flat_x, flat_v], {"axis": 0},
                  shape=(math.prod(shape) + target.size,), dtype=dtype)
    picked = ctx.op("Gather", [both, ctx.const(source, f"{node.name}_index")], {"axis": 0},
                    shape=(math.prod(shape),), dtype=dtype)
    return ctx.op("Reshape", [picked, ctx.ints(shape)], final=True)


def _numpy_index(axes: list[int], consts: list[np.ndarray], rank: int) -> tuple:
    key: list[Any] = [slice(None)] * rank
    for d, c in zip(axes, consts):
        key[d] = np.asarray(c).astype(np.int64)
    return tuple(key)


@lowers(aten.gather.default)
def _gather(ctx: Context, node: Any, x: Any, dim: int, index: Any,
            sparse_grad: bool = False) -> ir.Value:
    table = ctx.constant(x)
    if table is not None and table.size and (table == table.flat[0]).all():
        # a table of one value (RoBERTa's zero token-type buffer read at runtime positions)
        # reads that value anywhere: a constant, not a GatherElements most targets lack
        return np.full(ctx.shape(node), table.flat[0], dtype=ctx.dtype(node))
    rank = max(ctx.rank(x), 1)
    axis = dim + rank if dim < 0 else dim
    const = ctx.constant(index)
    index_value = (ctx.const(_positions(const, ctx.shape(x)[axis]), f"{node.name}_index")
                   if const is not None else ctx.value(index))
    return ctx.op("GatherElements", [ctx.value(x), index_value], {"axis": axis}, final=True)


@lowers(aten.masked_fill.Scalar, aten.masked_fill.Tensor)
def _masked_fill(ctx: Context, node: Any, x: Any, mask: Any, value: Any) -> ir.Value:
    dtype = ctx.dtype(node)
    fill = (ctx.cast(ctx.value(value), dtype) if hasattr(value, "meta")
            else ctx.scalar(value, dtype))
    return ctx.op("Where", [ctx.cast(ctx.value(mask), np.bool_), fill,
                            ctx.cast(ctx.value(x), dtype)], final=True)
