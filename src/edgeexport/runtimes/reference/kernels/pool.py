"""Max and average pooling (N-d, dilations, ceil_mode, pads) and the global pools.

Windows are reduced tap by tap over strided slices (see _window); padding never enters a max,
and the average divides by the number of taps the spec counts (with or without explicit pads).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from edgeexport.runtimes.reference.kernels import FLOATS, kernel
from edgeexport.runtimes.reference.kernels._window import Window, window

_F = {"T": FLOATS}
_ALL = (slice(None), slice(None))


def _geometry(x: np.ndarray, kernel_shape: Sequence[int], strides: Sequence[int] | None,
              dilations: Sequence[int] | None, pads: Sequence[int] | None, auto_pad: str,
              ceil_mode: int) -> Window:
    return window(x.shape[2:], kernel_shape, strides=strides, dilations=dilations, pads=pads,
                  auto_pad=auto_pad, ceil_mode=bool(ceil_mode))


@kernel("MaxPool", dtypes={"T": FLOATS | {np.dtype(np.int8), np.dtype(np.uint8)}})
def max_pool(x: np.ndarray, *, auto_pad: str = "NOTSET", ceil_mode: int = 0,
             dilations: list[int] | None = None, kernel_shape: list[int] | None = None,
             pads: list[int] | None = None, storage_order: int = 0, strides: list[int] | None = None,
             n_outputs: int = 1) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    win = _geometry(x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    y = np.full(x.shape[:2] + win.outputs, lowest, dtype=x.dtype)
    want_indices = n_outputs > 1
    if want_indices:
        indices = np.zeros(y.shape, dtype=np.int64)
        flat = _flat_indices(x.shape, storage_order)
    for _, out_region, in_slice in win.taps():
        current, candidate = y[_ALL + out_region], x[_ALL + in_slice]
        if want_indices:
            # strictly greater: the first maximum in window order wins, like onnxruntime
            better = candidate > current
            indices[_ALL + out_region] = np.where(better, flat[_ALL + in_slice],
                                                  indices[_ALL + out_region])
        np.maximum(current, candidate, out=current)
    return (y, indices) if want_indices else y


def _flat_indices(shape: tuple[int, ...], storage_order: int) -> np.ndarray:
    """Index of every element in the flattened input; storage_order=1 flattens space column-major
    (batch and channel stay outermost)."""
    n, c, *spatial = shape
    if not storage_order:
        return np.arange(np.prod(shape), dtype=np.int64).reshape(shape)
    inner = np.arange(int(np.prod(spatial)), dtype=np.int64).reshape(spatial[::-1]).T
    outer = np.arange(n * c, dtype=np.int64).reshape(n, c) * int(np.prod(spatial))
    return outer.reshape(n, c, *([1] * len(spatial))) + inner


@kernel("AveragePool", dtypes=_F)
def average_pool(x: np.ndarray, *, auto_pad: str = "NOTSET", ceil_mode: int = 0,
                 count_include_pad: int = 0, dilations: list[int] | None = None,
                 kernel_shape: list[int] | None = None, pads: list[int] | None = None,
                 strides: list[int] | None = None) -> np.ndarray:
    win = _geometry(x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    compute = np.float32 if x.dtype == np.float16 else x.dtype
    total = np.zeros(x.shape[:2] + win.outputs, dtype=compute)
    for _, out_region, in_slice in win.taps():
        total[_ALL + out_region] += x[_ALL + in_slice]
    # taps counted per axis (separable), multiplied into the divisor for every output position
    count = np.ones((), dtype=compute)
    for axis_counts in win.valid_counts(bool(count_include_pad)):
        count = np.multiply.outer(count, axis_counts.astype(compute))
    return (total / count).astype(x.dtype, copy=False)


@kernel("GlobalAveragePool", dtypes=_F)
def global_average_pool(x: np.ndarray) -> np.ndarray:
    return np.mean(x, axis=tuple(range(2, x.ndim)), keepdims=True, dtype=np.float32
                   if x.dtype == np.float16 else x.dtype).astype(x.dtype, copy=False)


@kernel("GlobalMaxPool", dtypes=_F)
def global_max_pool(x: np.ndarray) -> np.ndarray:
    return np.max(x, axis=tuple(range(2, x.ndim)), keepdims=True)
