"""Shape and data-movement ops: views and gathers, no arithmetic.

Shape-like inputs (shape, axes, pads, repeats, starts, ...) are int64 tensors read as Python ints.
Kernels may return views of their inputs: no kernel ever writes into an array it was given.
"""

from __future__ import annotations

import math

import numpy as np

from edgeexport.runtimes.reference.kernels import ALL, STANDARD, BFLOAT16, kernel, normalize_axis

# data movement does not look at values, so these kernels claim every dtype the runtime holds
_ANY = {"T": ALL}


def _ints(x: np.ndarray | None) -> list[int]:
    return [] if x is None else [int(v) for v in np.asarray(x).reshape(-1)]


@kernel("Reshape", dtypes=_ANY)
def reshape(data: np.ndarray, shape: np.ndarray, *, allowzero: int = 0) -> np.ndarray:
    dims = _ints(shape)
    if not allowzero:  # 0 copies the input dimension, unless allowzero says it means 0
        dims = [data.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return data.reshape(dims)


@kernel("Transpose", dtypes=_ANY)
def transpose(x: np.ndarray, *, perm: list[int] | None = None) -> np.ndarray:
    return np.transpose(x, perm)


@kernel("Flatten", dtypes=_ANY)
def flatten(x: np.ndarray, *, axis: int = 1) -> np.ndarray:
    axis = axis + x.ndim if axis < 0 else axis
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


@kernel("Squeeze", dtypes=_ANY)
def squeeze(x: np.ndarray, axes: np.ndarray | None = None) -> np.ndarray:
    if axes is None:
        return np.squeeze(x)
    return np.squeeze(x, axis=tuple(normalize_axis(a, x.ndim) for a in _ints(axes)))


@kernel("Unsqueeze", dtypes=_ANY)
def unsqueeze(x: np.ndarray, axes: np.ndarray) -> np.ndarray:
    rank = x.ndim + len(_ints(axes))  # axes count in the output's rank
    return np.expand_dims(x, tuple(sorted(normalize_axis(a, rank) for a in _ints(axes))))


@kernel("Concat", dtypes=_ANY)
def concat(*xs: np.ndarray, axis: int = 0) -> np.ndarray:
    return np.concatenate(xs, axis=normalize_axis(axis, xs[0].ndim))


@kernel("Split", dtypes=_ANY)
def split(x: np.ndarray, sizes: np.ndarray | None = None, *, axis: int = 0,
          num_outputs: int | None = None, n_outputs: int = 1) -> tuple[np.ndarray, ...]:
    axis = normalize_axis(axis, x.ndim)
    dim = x.shape[axis]
    if sizes is not None and sizes.size:
        parts = _ints(sizes)
    else:
        # equal chunks of ceil(dim / n); only the last one may be smaller
        n = num_outputs if num_outputs is not None else n_outputs
        chunk = -(-dim // n)
        parts = [chunk] * (n - 1) + [dim - chunk * (n - 1)]
    if sum(parts) != dim or min(parts) < 0:
        raise ValueError(f"split sizes {parts} do not add up to dimension {dim}")
    return tuple(np.split(x, np.cumsum(parts)[:-1], axis=axis))


@kernel("Slice", dtypes=_ANY)
def slice_(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, axes: np.ndarray | None = None,
           steps: np.ndarray | None = None) -> np.ndarray:
    s_list, e_list = _ints(starts), _ints(ends)
    axes_list = _ints(axes) if axes is not None else list(range(len(s_list)))
    steps_list = _ints(steps) if steps is not None else [1] * len(s_list)
    index = [slice(None)] * data.ndim
    for start, end, axis, step in zip(s_list, e_list, axes_list, steps_list):
        axis = normalize_axis(axis, data.ndim)
        dim = data.shape[axis]
        start = start + dim if start < 0 else start
        end = end + dim if end < 0 else end
        # clamp as the spec says; for negative steps "end = -1" means "through index 0"
        if step > 0:
            start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        else:
            start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
        index[axis] = slice(start, end if end >= 0 else None, step)
    return data[tuple(index)]


def _positive(indices: np.ndarray, dim: int) -> np.ndarray:
    return np.where(indices < 0, indices + dim, indices)


@kernel("Gather", dtypes=_ANY)
def gather(data: np.ndarray, indices: np.ndarray, *, axis: int = 0) -> np.ndarray:
    axis = normalize_axis(axis, data.ndim)
    return np.take(data, _positive(indices, data.shape[axis]), axis=axis)


@kernel("GatherElements", dtypes=_ANY)
def gather_elements(data: np.ndarray, indices: np.ndarray, *, axis: int = 0) -> np.ndarray:
    axis = normalize_axis(axis, data.ndim)
    # the output has the indices' shape: off the axis they address a leading block of data
    # (np.take_along_axis would broadcast a size-1 index axis over all of data's instead)
    data = data[tuple(slice(None) if d == axis else slice(0, n)
                      for d, n in enumerate(indices.shape))]
    return np.take_along_axis(data, _positive(indices, data.shape[axis]), axis=axis)


@kernel("GatherND", dtypes=_ANY)
def gather_nd(data: np.ndarray, indices: np.ndarray, *, batch_dims: int = 0) -> np.ndarray:
    """Each row of the last index axis addresses k leading axes of data (after batch_dims
    shared ones): out[b..., i...] = data[b..., *indices[b..., i..., :]]."""
    b, k = batch_dims, indices.shape[-1]
    batch = math.prod(data.shape[:b])
    table = data.reshape((batch,) + data.shape[b:])
    rows = indices.reshape(batch, -1, k).astype(np.int64)
    rows = np.where(rows < 0, rows + np.array(data.shape[b:b + k]), rows)
    key = (np.arange(batch)[:, None],) + tuple(rows[..., j] for j in range(k))
    return table[key].reshape(indices.shape[:-1] + data.shape[b + k:])


@kernel("Expand", dtypes=_ANY)
def expand(x: np.ndarray, shape: np.ndarray) -> np.ndarray:
    return np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(_ints(shape))))


@kernel("Tile", dtypes=_ANY)
def tile(x: np.ndarray, repeats: np.ndarray) -> np.ndarray:
    return np.tile(x, _ints(repeats))


@kernel("Pad", dtypes={"T": STANDARD | BFLOAT16})
def pad(data: np.ndarray, pads: np.ndarray, constant_value: np.ndarray | None = None,
        axes: np.ndarray | None = None, *, mode: str = "constant") -> np.ndarray:
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise ValueError(f"Pad mode {mode!r} is not constant, reflect, edge or wrap")
    p = _ints(pads)
    axes_list = [normalize_axis(a, data.ndim) for a in _ints(axes)] if axes is not None \
        else list(range(data.ndim))
    begin, end = [0] * data.ndim, [0] * data.ndim
    for i, axis in enumerate(axes_list):
        begin[axis], end[axis] = p[i], p[i + len(axes_list)]
    # negative pads crop; crop first, then pad what remains
    crop = tuple(slice(-b if b < 0 else 0, data.shape[a] + e if e < 0 else None)
                 for a, (b, e) in enumerate(zip(begin, end)))
    data = data[crop]
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)]
    if mode == "constant":
        value = 0 if constant_value is None or constant_value.size == 0 \
            else constant_value.reshape(-1)[0]
        return np.pad(data, widths, mode="constant", constant_values=value)
    return np.pad(data, widths, mode=mode)


@kernel("Shape", dtypes=_ANY)
def shape(x: np.ndarray, *, start: int = 0, end: int | None = None) -> np.ndarray:
    return np.array(x.shape[start:end], dtype=np.int64)  # Python slicing clamps like the spec


@kernel("Size", dtypes=_ANY)
def size(x: np.ndarray) -> np.ndarray:
    return np.array(x.size, dtype=np.int64)


@kernel("ConstantOfShape", dtypes={"T2": STANDARD | BFLOAT16})
def constant_of_shape(shape: np.ndarray, *, value: np.ndarray | None = None) -> np.ndarray:
    value = np.zeros(1, np.float32) if value is None else value
    return np.full(_ints(shape), value.reshape(-1)[0], dtype=value.dtype)


@kernel("Range", dtypes={"T": frozenset(np.dtype(t) for t in (np.float32, np.float64, np.int16,
                                                                np.int32, np.int64))})
def range_(start: np.ndarray, limit: np.ndarray, delta: np.ndarray) -> np.ndarray:
    n = max(math.ceil((float(limit) - float(start)) / float(delta)), 0)
    # out[i] = start + i * delta, computed in the input dtype as the spec's loop would
    return (start + np.arange(n, dtype=start.dtype) * delta).astype(start.dtype, copy=False)


@kernel("Trilu", dtypes=_ANY)
def trilu(x: np.ndarray, k: np.ndarray | None = None, *, upper: int = 1) -> np.ndarray:
    diagonal = 0 if k is None else int(np.asarray(k).reshape(-1)[0])
    return np.triu(x, diagonal) if upper else np.tril(x, diagonal)


@kernel("DepthToSpace", dtypes=_ANY)
def depth_to_space(x: np.ndarray, *, blocksize: int = 0, mode: str = "DCR") -> np.ndarray:
    n, c, h, w = x.shape
    bs = blocksize
    if mode == "DCR":  # depth is (block row, block column, channel)
        y = x.reshape(n, bs, bs, c // bs**2, h, w).transpose(0, 3, 4, 1, 5, 2)
    elif mode == "CRD":  # depth is (channel, block row, block column)
        y = x.reshape(n, c // bs**2, bs, bs, h, w).transpose(0, 1, 4, 2, 5, 3)
    else:
        raise ValueError(f"DepthToSpace mode {mode!r} is not DCR or CRD")
    return y.reshape(n, c // bs**2, h * bs, w * bs)


@kernel("SpaceToDepth", dtypes=_ANY)
def space_to_depth(x: np.ndarray, *, blocksize: int = 0) -> np.ndarray:
    n, c, h, w = x.shape
    bs = blocksize
    y = x.reshape(n, c, h // bs, bs, w // bs, bs).transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * bs * bs, h // bs, w // bs)
