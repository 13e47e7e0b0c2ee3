"""Flat phase planes: the zero-padded input of a Conv laid out so that every kernel tap reads
one contiguous run per (N, C) row, which is what makes numpy's loops and copies fast."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from edgeexport.runtimes.reference.kernels._window import Window


@dataclass(frozen=True)
class Phases:
    """The zero-padded input of a window op, split into stride-phase planes (phase p holds the
    padded positions congruent to p modulo the stride): every tap then reads one plane with
    unit steps. Without strides there is one phase, the padded input itself."""

    plane: tuple[int, ...]  # extent of a phase plane along each spatial axis
    phases: list[tuple[int, ...]]
    #: (phase index, where in its plane, which strided part of the input's spatial axes)
    fills: list[tuple[int, tuple[slice, ...], tuple[slice, ...]]]
    #: (phase index, part of its plane that no input lands in: the padding to zero)
    pads: list[tuple[int, tuple[slice, ...]]]


def phase_planes(spatial: Sequence[int], kernel: Sequence[int], win: Window) -> Phases:
    """The phase planes of an input with these spatial extents, for this kernel and window."""
    s, d, outs = win.strides, win.dilations, win.outputs
    # room for every tap's run: at least one window, even when there are no outputs
    padded = [-(-max(i + pb + pe, max(o - 1, 0) * st + (kk - 1) * dd + 1) // st) * st
              for i, pb, pe, o, st, kk, dd in zip(spatial, win.pads_begin, win.pads_end,
                                                  outs, s, kernel, d)]
    plane = tuple(p // st for p, st in zip(padded, s))
    phases = list(itertools.product(*(range(st) for st in s)))
    fills, pads = [], []
    for index, phase in enumerate(phases):
        first = [(a - pb) % st for a, pb, st in zip(phase, win.pads_begin, s)]
        counts = [len(range(f, i, st)) for f, i, st in zip(first, spatial, s)]
        if 0 in counts:
            pads.append((index, tuple(slice(0, p) for p in plane)))
            continue
        dst = tuple(slice((f + pb) // st, (f + pb) // st + cnt)
                    for f, pb, st, cnt in zip(first, win.pads_begin, s, counts))
        fills.append((index, dst, tuple(slice(f, None, st) for f, st in zip(first, s))))
        pads.extend((index, part) for part in outside(dst, plane))
    return Phases(plane, phases, fills, pads)


def outside(box: Sequence[slice], extent: Sequence[int]) -> list[tuple[slice, ...]]:
    """The part of an array of `extent` outside `box` (plain slices within it), as slabs:
    before and after the box along each axis."""
    slabs = []
    for axis, (part, n) in enumerate(zip(box, extent)):
        rest = tuple(slice(0, e) for e in extent[axis + 1:])
        if part.start > 0:
            slabs.append(tuple(box[:axis]) + (slice(0, part.start),) + rest)
        if part.stop < n:
            slabs.append(tuple(box[:axis]) + (slice(part.stop, n),) + rest)
    return slabs


class FlatPlanes:
    """Geometry of the flat phase planes for one input shape, kernel and window.

    The padded input is split into stride-phase planes (see Phases), and each (N, C) row of
    each plane is one flat run, so that every tap reads one plane at a constant flat offset.
    Outputs are computed on a grid as wide as a plane: the extra columns are garbage and
    cropped at the end.
    """

    def __init__(self, shape: Sequence[int], kernel: Sequence[int], win: Window) -> None:
        n, c = shape[:2]
        s, d, outs = win.strides, win.dilations, win.outputs
        self.rows = rows = n * c
        split = phase_planes(shape[2:], kernel, win)
        plane, phases = split.plane, split.phases
        self.size = size = math.prod(plane)
        # the phase planes, then one plane of zeros that the last rows' runs may read into
        self.planes = (len(phases), rows) + tuple(plane)
        self.buffer = (len(phases) * rows + 1) * size
        every = (slice(None),)
        self.fills = [((index,) + every + dst, every + src) for index, dst, src in split.fills]
        self.pads = [(index,) + every + part for index, part in split.pads]
        strides = [math.prod(plane[axis + 1:]) for axis in range(len(plane))]
        self.length = outs[0] * strides[0]  # grid positions per row
        self.starts = []  # where each tap's run starts in the first row, row-major tap order
        for tap in itertools.product(*(range(kk) for kk in kernel)):
            phase = tuple(t * dd % st for t, dd, st in zip(tap, d, s))
            offset = sum(t * dd // st * stride for t, dd, st, stride in zip(tap, d, s, strides))
            self.starts.append(phases.index(phase) * rows * size + offset)
        self._grid_shape = (n, c, outs[0]) + tuple(plane[1:])  # c: replaced by the caller's
        self._crop = (Ellipsis,) + tuple(slice(0, o) for o in outs[1:])

    def fill(self, x: np.ndarray,
             prologue: Callable[[np.ndarray, np.ndarray], object] | None = None) -> np.ndarray:
        """The flat buffer holding x's phase planes (padding zero); with a prologue, holding
        prologue(x) instead."""
        # every element is written once: the input's positions, then zeros around them
        buf = np.empty(self.buffer, dtype=x.dtype)
        planes = buf[:math.prod(self.planes)].reshape(self.planes)
        fill_planes(planes, x.reshape((self.rows,) + x.shape[2:]), self.fills, self.pads,
                    prologue)
        buf[planes.size:] = 0
        return buf

    def tap(self, buf: np.ndarray, index: int, rows: slice = slice(None)) -> np.ndarray:
        """(rows, grid length) view: what tap `index` reads for every grid position."""
        first, stop, _ = rows.indices(self.rows)
        start = self.starts[index] + first * self.size
        return buf[start:start + (stop - first) * self.size].reshape(
            stop - first, self.size)[:, :self.length]

    def crop_rows(self, grid: np.ndarray) -> np.ndarray:
        """(rows, *outputs) view of a (rows, grid length) block of the grid."""
        return grid.reshape(grid.shape[:1] + self._grid_shape[2:])[self._crop]

    def crop_last(self, grid: np.ndarray) -> np.ndarray:
        """(N, *outputs, M) view of a (N, grid length, M) grid without the extra columns."""
        shape = (self._grid_shape[0],) + self._grid_shape[2:] + (grid.shape[-1],)
        return grid.reshape(shape)[self._crop + (slice(None),)]

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


def fill_planes(planes: np.ndarray, x: np.ndarray, fills: list, pads: list,
                prologue: Callable[[np.ndarray, np.ndarray], object] | None = None) -> None:
    """Write x's parts into `planes` (planes[dst] = x[src], or prologue(x[src], planes[dst]))
    and zero the padding parts: every element written once."""
    for dst, src in fills:
        if prologue is None:
            planes[dst] = x[src]
        else:
            prologue(x[src], planes[dst])
    for part in pads:
        planes[part] = 0
