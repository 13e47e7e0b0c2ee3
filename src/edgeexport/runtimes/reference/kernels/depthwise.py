"""Depthwise convolution (one filter per channel), N-d: out = (the sum over kernel taps, in
row-major order, of the tap's per-channel weight times the input shifted by the tap) + bias,
then the fused activation if the interpreter gave one."""

from __future__ import annotations

import itertools
import math
import numpy as np

from edgeexport.runtimes.reference.kernels import Epilogue, Prologue
from edgeexport.runtimes.reference.kernels._layout import (
    along_rows, prefers_channels_last, to_first, to_last,
)
from edgeexport.runtimes.reference.kernels._parallel import THREADS, parallel_map
from edgeexport.runtimes.reference.kernels._planes import FlatPlanes, fill_planes, phase_planes
from edgeexport.runtimes.reference.kernels._window import Window

#: Output elements per block: a block's taps run over an accumulator and a scratch array of
#: this size, which stay in the L2 cache between the taps (measured on MobileNetV2's layers:
#: 64K floats is as fast as whole planes or faster; 8K-16K lose to per-call overhead).
BLOCK_ELEMENTS = 1 << 16


def depthwise(w: np.ndarray, shape: tuple[int, ...], win: Window) -> ChannelsFirst | ChannelsLast:
    """The depthwise algorithm for weights w (C, 1, *kernel) on inputs of `shape`.

    numpy is fast only along long contiguous runs: with several channels the taps run
    channels-last (the layout of conv outputs, see _layout.py), a single channel runs
    channels-first (one run per plane). Either is built once per input shape; a call fills a
    zero-padded buffer, runs the taps block by block and writes the output with the bias (and
    the epilogue) while a block is still in cache.
    """
    if prefers_channels_last(shape):
        return ChannelsLast(w, shape, win)
    return ChannelsFirst(w, shape, win)


def _blocks(count: int, per_block: int) -> list[slice]:
    # blocks of at most per_block, and at least one per thread; every element is computed
    # alike in any block, so results do not depend on the thread count
    per_block = max(1, min(per_block, -(-count // THREADS)))
    return [slice(r, min(r + per_block, count)) for r in range(0, count, per_block)]


class ChannelsFirst:
    """Each tap is one multiply-add of a flat run of the padded input (see FlatPlanes): the
    inner loops run over whole planes instead of short rows."""

    def __init__(self, w: np.ndarray, shape: tuple[int, ...], win: Window) -> None:
        n, c = shape[:2]
        self.planes = FlatPlanes(shape, w.shape[2:], win)
        # per-row weights (N * C, 1) of every tap, in the planes' tap order
        self.weights = [np.tile(w[(slice(None), 0) + tap].reshape(c, 1), (n, 1))
                        for tap in itertools.product(*(range(k) for k in w.shape[2:]))]
        self.blocks = _blocks(n * c, BLOCK_ELEMENTS // max(self.planes.length, 1))
        self.n, self.c, self.outputs = n, c, win.outputs

    def __call__(self, x: np.ndarray, bias: np.ndarray | None,
                 epilogue: Epilogue | None = None,
                 prologue: Prologue | None = None) -> np.ndarray:
        buf = self.planes.fill(x, prologue)
        y = np.empty((self.n * self.c,) + self.outputs, dtype=x.dtype)
        ones = (1,) * len(self.outputs)
        rows_bias = None if bias is None else np.tile(bias.reshape((self.c,) + ones),
                                                      (self.n,) + ones)
        parallel_map(lambda rows: self._block(buf, y[rows], rows, rows_bias, epilogue),
                     self.blocks)
        return y.reshape((self.n, self.c) + self.outputs)

    def _block(self, buf: np.ndarray, out: np.ndarray, rows: slice, bias: np.ndarray | None,
               epilogue: Epilogue | None) -> None:
        grid = np.empty((out.shape[0], self.planes.length), dtype=out.dtype)
        scratch = np.empty_like(grid)
        for index, weights in enumerate(self.weights):
            view = self.planes.tap(buf, index, rows)
            if index == 0:
                np.multiply(view, weights[rows], out=grid)
            else:
                np.multiply(view, weights[rows], out=scratch)
                np.add(grid, scratch, out=grid)
        # crop the grid's extra columns, adding the bias on the way
        if bias is None:
            np.copyto(out, self.planes.crop_rows(grid))
        else:
            np.add(self.planes.crop_rows(grid), bias[rows], out=out)
        if epilogue is not None:
            epilogue(out)


class ChannelsLast:
    """Each tap is one multiply-add of a window view of the zero-padded input in (N, *space, C)
    layout, split into stride-phase planes (see Phases) so that the view has unit steps: a row
    of it is then one run of (outputs along the last axis) x C values, and the weights are
    tiled to match. (Views of the unpadded input clipped to each tap's reach, without the
    padded copy, measured slower.)"""

    def __init__(self, w: np.ndarray, shape: tuple[int, ...], win: Window) -> None:
        n, c = shape[:2]
        outs, s, d = win.outputs, win.strides, win.dilations
        kernel = w.shape[2:]
        split = phase_planes(shape[2:], kernel, win)
        self.planes = (len(split.phases), n) + split.plane + (c,)
        every = (slice(None),)
        self.fills = [((index,) + every + dst, every + src) for index, dst, src in split.fills]
        self.pads = [(index,) + every + part for index, part in split.pads]
        taps = []  # where in the planes each tap reads, for every output
        for tap in itertools.product(*(range(k) for k in kernel)):
            phase = tuple(t * dd % st for t, dd, st in zip(tap, d, s))
            taps.append([split.phases.index(phase), slice(None)] + [
                t * dd // st for t, dd, st in zip(tap, d, s)])
        # (last output axis, C) per tap: broadcast over the other axes with long runs
        self.weights = [np.tile(w[(slice(None), 0) + tap], (outs[-1], 1))
                        for tap in itertools.product(*(range(k) for k in kernel))]
        row = n * math.prod(outs[1:]) * c
        self.blocks = _blocks(outs[0], BLOCK_ELEMENTS // max(row, 1))
        # the view each tap reads for each block of output rows: (N, rows, *outputs[1:], C);
        # for one 2-D image (the common case) 2-D views (rows, outputs[1] x C) of the planes
        # seen as (phases, rows, columns x C), which numpy sets up faster (measured: ~0.6 us
        # less of ~2 us per call, ~20 calls per block)
        self.flat = n == 1 and len(outs) == 2
        if self.flat:
            self.weights = [weights.reshape(-1) for weights in self.weights]
            self.flat_planes = (len(split.phases), split.plane[0], split.plane[1] * c)
            self.views = {rows.start: [(t[0], slice(t[2] + rows.start, t[2] + rows.stop),
                                        slice(t[3] * c, (t[3] + outs[1]) * c)) for t in taps]
                          for rows in self.blocks}
        else:
            self.views = {rows.start: [(t[0], t[1], slice(t[2] + rows.start, t[2] + rows.stop))
                                       + tuple(slice(o0, o0 + o) for o0, o in
                                               zip(t[3:], outs[1:])) for t in taps]
                          for rows in self.blocks}
        self.n, self.c, self.outputs = n, c, outs
        self._bias: tuple[np.ndarray, np.ndarray] | None = None  # (bias, tiled like weights)

    def __call__(self, x: np.ndarray, bias: np.ndarray | None,
                 epilogue: Epilogue | None = None,
                 prologue: Prologue | None = None) -> np.ndarray:
        planes = np.empty(self.planes, dtype=x.dtype)
        # runs of C when x is channels-last already
        fill_planes(planes, to_last(x), self.fills, self.pads, prologue)
        out = np.empty((self.n,) + self.outputs + (self.c,), dtype=x.dtype)
        tiled = None if bias is None else self._tiled(bias)
        if self.flat:
            planes = planes.reshape(self.flat_planes)
            rows_out = out.reshape(self.outputs[0], -1)
            parallel_map(lambda rows: self._block(planes, rows_out[rows], rows, tiled, epilogue),
                         self.blocks)
        else:
            parallel_map(lambda rows: self._block(planes, out[:, rows], rows, tiled, epilogue),
                         self.blocks)
        return to_first(out)

    def _tiled(self, bias: np.ndarray) -> np.ndarray:
        cached = self._bias
        if cached is None or cached[0] is not bias:
            tiled = along_rows(bias, self.outputs[-1])
            cached = self._bias = (bias, tiled.reshape(-1) if self.flat else tiled)
        return cached[1]

    def _block(self, planes: np.ndarray, out: np.ndarray, rows: slice, bias: np.ndarray | None,
               epilogue: Epilogue | None) -> None:
        scratch = np.empty_like(out)
        for index, (view, weights) in enumerate(zip(self.views[rows.start], self.weights)):
            view = planes[view]
            if index == 0:
                np.multiply(view, weights, out=out)
            else:
                np.multiply(view, weights, out=scratch)
                np.add(out, scratch, out=out)
        if bias is not None:
            np.add(out, bias, out=out)
        if epilogue is not None:
            epilogue(out)
