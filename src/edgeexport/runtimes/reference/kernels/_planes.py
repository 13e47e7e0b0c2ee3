"""Flat phase planes: the zero-padded input of a Conv laid out so that every kernel tap reads
one contiguous run per (N, C) row, which is what makes numpy's loops and copies fast."""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np

from edgeexport.runtimes.reference.kernels._window import Window


class FlatPlanes:
    """Geometry of the flat phase planes for one input shape, kernel and window.

    With strides, the padded input is split into stride-phase planes (phase p holds the
    positions congruent to p modulo the stride), so that every tap reads one plane at a
    constant flat offset. Outputs are computed on a grid as wide as a plane: the extra
    columns are garbage and cropped at the end.
    """

    def __init__(self, shape: Sequence[int], kernel: Sequence[int], win: Window) -> None:
        n, c = shape[:2]
        s, d, outs = win.strides, win.dilations, win.outputs
        self.rows = rows = n * c
        # room for every tap's run: at least one window, even when there are no outputs
        padded = [-(-max(i + pb + pe, max(o - 1, 0) * st + (kk - 1) * dd + 1) // st) * st
                  for i, pb, pe, o, st, kk, dd in zip(shape[2:], win.pads_begin, win.pads_end,
                                                      outs, s, kernel, d)]
        plane = [p // st for p, st in zip(padded, s)]
        self.size = size = math.prod(plane)
        phases = list(itertools.product(*(range(st) for st in s)))
        # the phase planes, then one plane of zeros that the last rows' runs may read into
        self.planes = (len(phases), rows) + tuple(plane)
        self.buffer = (len(phases) * rows + 1) * size
        self.fills = []  # (where in the planes, which strided part of x) per phase
        for index, phase in enumerate(phases):
            first = [(a - pb) % st for a, pb, st in zip(phase, win.pads_begin, s)]
            counts = [len(range(f, i, st)) for f, i, st in zip(first, shape[2:], s)]
            if 0 not in counts:
                dst = tuple(slice((f + pb) // st, (f + pb) // st + cnt)
                            for f, pb, st, cnt in zip(first, win.pads_begin, s, counts))
                src = tuple(slice(f, None, st) for f, st in zip(first, s))
                self.fills.append(((index, slice(None)) + dst, (slice(None),) + src))
        strides = [math.prod(plane[axis + 1:]) for axis in range(len(plane))]
        self.length = outs[0] * strides[0]  # grid positions per row
        self.starts = []  # where each tap's run starts in the first row, row-major tap order
        for tap in itertools.product(*(range(kk) for kk in kernel)):
            phase = tuple(t * dd % st for t, dd, st in zip(tap, d, s))
            offset = sum(t * dd // st * stride for t, dd, st, stride in zip(tap, d, s, strides))
            self.starts.append(phases.index(phase) * rows * size + offset)
        self._grid_shape = (n, c, outs[0]) + tuple(plane[1:])  # c: replaced by the caller's
        self._crop = (Ellipsis,) + tuple(slice(0, o) for o in outs[1:])

    def fill(self, x: np.ndarray) -> np.ndarray:
        """The flat buffer holding x's phase planes (padding zero)."""
        buf = np.zeros(self.buffer, dtype=x.dtype)
        planes = buf[:math.prod(self.planes)].reshape(self.planes)
        flat_x = x.reshape((self.rows,) + x.shape[2:])
        for dst, src in self.fills:
            planes[dst] = flat_x[src]
        return buf

    def tap(self, buf: np.ndarray, index: int, rows: slice = slice(None)) -> np.ndarray:
        """(rows, grid length) view: what tap `index` reads for every grid position."""
        first, stop, _ = rows.indices(self.rows)
        start = self.starts[index] + first * self.size
        return buf[start:start + (stop - first) * self.size].reshape(
            stop - first, self.size)[:, :self.length]

    def crop(self, grid: np.ndarray, channels: int) -> np.ndarray:
        """(N, channels, *outputs) view of a (N, channels, grid length) grid (or one reshaped
        alike) without the extra columns."""
        shape = (self._grid_shape[0], channels) + self._grid_shape[2:]
        return grid.reshape(shape)[self._crop]


def copy_out(result: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """A new contiguous array holding result (+ bias): cropping and the bias in one pass, and
    no scratch buffer ever leaves a kernel."""
    y = np.empty(result.shape, dtype=result.dtype)
    if bias is None:
        np.copyto(y, result)
    else:
        np.add(result, bias, out=y)
    return y
