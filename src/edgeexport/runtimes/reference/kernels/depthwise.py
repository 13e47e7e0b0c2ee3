"""Depthwise convolution (one filter per channel), N-d: out = bias + the sum over kernel taps,
in row-major order, of the tap's per-channel weight times the input shifted by the tap."""

from __future__ import annotations

import itertools
import math
import string

import numpy as np
from numpy.lib.stride_tricks import as_strided

from edgeexport.runtimes.reference.kernels._parallel import THREADS, parallel_map
from edgeexport.runtimes.reference.kernels._planes import FlatPlanes, copy_out
from edgeexport.runtimes.reference.kernels._window import Window

#: Channels-last when a plane has at most this many output positions per channel: there the
#: runs over channels are long enough, and the two transposing copies are cheap (measured on
#: MobileNetV2's layers: 28x28x192 and smaller gain, 56x56x144 loses).
CHANNELS_LAST_POSITIONS_PER_CHANNEL = 8


def depthwise(w: np.ndarray, shape: tuple[int, ...], win: Window) -> ChannelsFirst | ChannelsLast:
    """The depthwise algorithm for weights w (C, 1, *kernel) on inputs of `shape`.

    numpy is fast only along long contiguous runs, so the layout follows the shape: big planes
    with few channels run channels-first (one run per plane), small planes with many channels
    channels-last (one run per pixel's channels). Either is built once per input shape; a call
    is a fill of a zero-padded buffer, the taps, and one copy out that also adds the bias.
    """
    if math.prod(win.outputs) <= CHANNELS_LAST_POSITIONS_PER_CHANNEL * shape[1]:
        return ChannelsLast(w, shape, win)
    return ChannelsFirst(w, shape, win)


class ChannelsFirst:
    """Each tap is one multiply-add of a flat run of the padded input (see FlatPlanes): the
    inner loops run over whole planes instead of short rows."""

    def __init__(self, w: np.ndarray, shape: tuple[int, ...], win: Window) -> None:
        n, c = shape[:2]
        self.planes = FlatPlanes(shape, w.shape[2:], win)
        # per-row weights (N * C, 1) of every tap, in the planes' tap order
        self.weights = [np.tile(w[(slice(None), 0) + tap].reshape(c, 1), (n, 1))
                        for tap in itertools.product(*(range(k) for k in w.shape[2:]))]
        # row blocks run in parallel (numpy releases the GIL); each row's sum has the same order
        # whatever the thread count, so results do not depend on it
        per_block = max(1, -(-n * c // THREADS))
        self.blocks = [slice(r, min(r + per_block, n * c)) for r in range(0, n * c, per_block)]
        self.n, self.c = n, c

    def __call__(self, x: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        buf = self.planes.fill(x)
        grid = np.empty((self.n * self.c, self.planes.length), dtype=x.dtype)
        parallel_map(lambda rows: self._accumulate(buf, grid[rows], rows), self.blocks)
        return copy_out(self.planes.crop(grid, self.c), bias)

    def _accumulate(self, buf: np.ndarray, out: np.ndarray, rows: slice) -> None:
        scratch = np.empty_like(out)
        for index, weights in enumerate(self.weights):
            view = self.planes.tap(buf, index, rows)
            if index == 0:
                np.multiply(view, weights[rows], out=out)
            else:
                np.multiply(view, weights[rows], out=scratch)
                out += scratch


class ChannelsLast:
    """One einsum over a strided window view of the zero-padded input in (N, *space, C) layout:
    out[n, *p, c] = sum over taps t of windows[n, *p, *t, c] * w[*t, c]."""

    def __init__(self, w: np.ndarray, shape: tuple[int, ...], win: Window) -> None:
        n, c = shape[:2]
        rank = len(win.kernel)
        self.padded = (n,) + tuple(i + pb + pe for i, pb, pe in
                                   zip(shape[2:], win.pads_begin, win.pads_end)) + (c,)
        self.interior = (slice(None),) + tuple(slice(pb, pb + i) for pb, i in
                                               zip(win.pads_begin, shape[2:]))
        item = w.dtype.itemsize
        step = [math.prod(self.padded[axis + 1:]) * item for axis in range(rank + 2)]
        space = step[1:1 + rank]
        self.windows = ((n,) + win.outputs + win.kernel + (c,),
                        (step[0],) + tuple(st * s for st, s in zip(space, win.strides))
                        + tuple(st * d for st, d in zip(space, win.dilations)) + (item,))
        self.w = np.ascontiguousarray(np.moveaxis(w[:, 0], 0, -1))  # (*kernel, C)
        self.to_last = (0,) + tuple(range(2, rank + 2)) + (1,)  # (N, C, *space) -> (N, *space, C)
        self.to_first = (0, rank + 1) + tuple(range(1, rank + 1))
        p = string.ascii_lowercase[8:8 + rank]  # positions i, j, k...; their taps I, J, K...
        self.subscripts = f"n{p}{p.upper()}c,{p.upper()}c->n{p}c"
        # blocks of the first output axis for the thread pool; each element is computed alike
        rows = win.outputs[0]
        per_block = max(1, -(-rows // THREADS))
        self.blocks = [slice(r, min(r + per_block, rows)) for r in range(0, rows, per_block)]
        self.n, self.c, self.outputs = n, c, win.outputs

    def __call__(self, x: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        xp = np.zeros(self.padded, dtype=x.dtype)
        xp[self.interior] = x.transpose(self.to_last)
        windows = as_strided(xp, *self.windows, writeable=False)
        out = np.empty((self.n,) + self.outputs + (self.c,), dtype=x.dtype)
        parallel_map(lambda rows: np.einsum(self.subscripts, windows[:, rows], self.w,
                                            out=out[:, rows]), self.blocks)
        return copy_out(out.transpose(self.to_first), bias)
