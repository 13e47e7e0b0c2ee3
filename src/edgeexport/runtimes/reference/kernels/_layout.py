"""Memory layouts of conv activations. Values are always (N, C, *spatial) arrays; what changes is
where numpy keeps them: channels-first (C-contiguous) or channels-last ((N, *spatial, C) in
memory, seen through a transposed view). Any numpy code reads either alike.

Conv outputs with more than one channel are channels-last: numpy is fast along long contiguous
runs, and there the runs are (outputs along the last axis) x channels long even on small planes
with many channels, where channels-first rows are short. A depthwise conv's taps become long
multiply-adds, and a 1x1 conv is the same GEMM either way round (BLAS reads either layout).
Measured on MobileNetV2's depthwise layers (1 thread): 112x112 planes run alike either way,
smaller ones 1.4-3x faster channels-last.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np


def prefers_channels_last(shape: Sequence[int]) -> bool:
    """Whether a conv output of `shape` (N, C, *spatial) is held channels-last."""
    return len(shape) >= 3 and shape[1] > 1


def to_last(x: np.ndarray) -> np.ndarray:
    """(N, *spatial, C) view of x (N, C, *spatial)."""
    return x.transpose(_last_axes(x.ndim))  # np.moveaxis costs ~15x more per call


def to_first(y: np.ndarray) -> np.ndarray:
    """(N, C, *spatial) view of y (N, *spatial, C): how a channels-last result is returned."""
    return y.transpose(_first_axes(y.ndim))


@functools.cache
def _last_axes(ndim: int) -> tuple[int, ...]:
    return (0,) + tuple(range(2, ndim)) + (1,)


@functools.cache
def _first_axes(ndim: int) -> tuple[int, ...]:
    return (0, ndim - 1) + tuple(range(1, ndim - 1))


def along_rows(vector: np.ndarray, width: int) -> np.ndarray:
    """A per-channel vector tiled to (width, C): added to a channels-last (..., width, C) array
    it runs along whole rows, where a (C,) vector would run one pixel at a time."""
    return np.tile(vector.reshape(-1), (width, 1))
