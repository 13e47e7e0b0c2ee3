"""Conv and ConvTranspose, N-d: 1x1 convs as one matmul, depthwise convs as a sum over kernel
taps (depthwise.py), everything else as im2col + a batched matmul per group (BLAS), the columns
copied as flat runs of the padded input (_planes.py).

A ConvPlan holds what does not depend on the input (weight layouts, the algorithm); the
interpreter builds it once per node when the weights are constant. float16 accumulates in float32.
Conv outputs are held channels-last (_layout.py). A ConvPlan may apply an activation the
interpreter fused into it: to its fresh output in place, while still in cache (epilogue), or to
its input while a depthwise conv copies it into its padded buffer (prologue).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from edgeexport.runtimes.reference.kernels import FLOATS, Epilogue, Prologue, kernel
from edgeexport.runtimes.reference.kernels._layout import (
    along_rows, prefers_channels_last, to_first, to_last,
)
from edgeexport.runtimes.reference.kernels._planes import FlatPlanes, copy_out
from edgeexport.runtimes.reference.kernels._window import Window, window
from edgeexport.runtimes.reference.kernels.depthwise import depthwise

_F = {"T": FLOATS}


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float32) if dtype == np.float16 else np.dtype(dtype)


class ConvPlan:
    """One Conv node's weights in the layout its algorithm wants, and the window geometry."""

    def __init__(self, w: np.ndarray, b: np.ndarray | None, *, auto_pad: str = "NOTSET",
                 dilations: Sequence[int] | None = None, group: int = 1,
                 kernel_shape: Sequence[int] | None = None, pads: Sequence[int] | None = None,
                 strides: Sequence[int] | None = None) -> None:
        self.compute = _compute_dtype(w.dtype)
        w = w.astype(self.compute, copy=False)
        m, cg = w.shape[:2]
        self.kernel = tuple(w.shape[2:])
        if kernel_shape and tuple(kernel_shape) != self.kernel:
            raise ValueError(f"kernel_shape {list(kernel_shape)} does not match W {w.shape}")
        self.m, self.group, self.rank = m, group, len(self.kernel)
        self.geometry = dict(strides=strides, dilations=dilations, pads=pads, auto_pad=auto_pad)
        ones = (1,) * self.rank
        if math.prod(self.kernel) == 1 and group == 1:
            self.kind = "pointwise"
            self.w = w.reshape(m, cg)
            self.wt = np.ascontiguousarray(self.w.T)  # for channels-last outputs
        elif cg == 1 and m == group:
            self.kind = "depthwise"  # one filter per channel: see depthwise.py
            self.w = w
        else:
            self.kind = "im2col"
            self.w = np.ascontiguousarray(w.reshape(group, m // group, cg * math.prod(self.kernel)))
            self.wt = np.ascontiguousarray(self.w[0].T) if group == 1 else None
        self.bias = None if b is None else b.astype(self.compute).reshape((m,) + ones)
        self._windows: dict[tuple[int, ...], Window] = {}
        self._layouts: dict[tuple[int, ...], Any] = {}
        self._rows: dict[int, np.ndarray] = {}  # the constant bias along rows, by width

    def window(self, spatial: tuple[int, ...]) -> Window:
        if spatial not in self._windows:
            self._windows[spatial] = window(spatial, self.kernel, **self.geometry)
        return self._windows[spatial]

    def __call__(self, x: np.ndarray, b: np.ndarray | None = None,
                 epilogue: Epilogue | None = None,
                 prologue: Prologue | None = None) -> np.ndarray:
        win = self.window(x.shape[2:])
        if prologue is not None and (self.kind != "depthwise" or self.compute != x.dtype):
            x, given = np.empty_like(x), x  # only the depthwise fill applies it on the way
            prologue(given, x)
            prologue = None
        xc = x.astype(self.compute, copy=False)
        bias = self.bias if self.bias is not None or b is None \
            else b.astype(self.compute).reshape((self.m,) + (1,) * self.rank)
        # the activation applies to the output in its own dtype (after float16's rounding)
        inner = epilogue if self.compute == x.dtype else None
        if self.kind == "pointwise" and not any(win.pads_begin + win.pads_end):
            y = self._pointwise(xc, win, bias, inner)
        elif self.kind == "depthwise":
            y = self._layout(x.shape, win)(xc, bias, inner, prologue)
        else:
            y = self._im2col(xc, win, bias)
            if inner is not None:
                inner(y)
        y = y.astype(x.dtype, copy=False)
        if epilogue is not None and inner is None:
            epilogue(y)
        return y

    def _layout(self, shape: tuple[int, ...], win: Window) -> Any:
        """What depends on the input shape but not on the values, built once per shape: the
        depthwise algorithm, or the flat planes that im2col reads its columns from."""
        layout = self._layouts.get(shape)
        if layout is None:
            layout = self._layouts[shape] = depthwise(self.w, shape, win) \
                if self.kind == "depthwise" else FlatPlanes(shape, self.kernel, win)
        return layout

    def _along_rows(self, bias: np.ndarray, width: int) -> np.ndarray:
        if bias is not self.bias:
            return along_rows(bias, width)
        if width not in self._rows:
            self._rows[width] = along_rows(bias, width)
        return self._rows[width]

    def _pointwise(self, x: np.ndarray, win: Window, bias: np.ndarray | None,
                   epilogue: Epilogue | None) -> np.ndarray:
        n, c = x.shape[:2]
        picked = x if all(s == 1 for s in win.strides) else \
            x[(slice(None), slice(None)) + tuple(slice(0, o * s, s) for o, s in
                                                 zip(win.outputs, win.strides))]
        if prefers_channels_last((n, self.m) + win.outputs):
            # (N, L, C) @ (C, M) -> (N, L, M): the same GEMM (BLAS reads either layout of x)
            y = np.matmul(to_last(picked).reshape(n, -1, c), self.wt)
            y = y.reshape((n,) + win.outputs + (self.m,))
            if bias is not None:
                y += self._along_rows(bias, win.outputs[-1])
            if epilogue is not None:
                epilogue(y)
            return to_first(y)
        y = np.matmul(self.w, picked.reshape(n, c, -1))  # (M, C) @ (N, C, L) -> (N, M, L)
        y = y.reshape((n, self.m) + win.outputs)
        if bias is not None:
            y += bias
        if epilogue is not None:
            epilogue(y)
        return y

    def _im2col(self, x: np.ndarray, win: Window, bias: np.ndarray | None) -> np.ndarray:
        n, c = x.shape[:2]
        planes = self._layout(x.shape, win)
        buf = planes.fill(x)
        # columns ordered (C, taps) x grid positions to match W reshaped to (G, M/G, C/G * taps);
        # each tap's columns are one flat run per channel
        cols = np.empty((n, c, len(planes.starts), planes.length), dtype=x.dtype)
        for index in range(len(planes.starts)):
            cols[:, :, index] = planes.tap(buf, index).reshape(n, c, planes.length)
        k = c // self.group * len(planes.starts)
        if self.wt is not None and prefers_channels_last((n, self.m) + win.outputs):
            # (N, L, K) @ (K, M) -> (N, L, M), cropped to (N, *outputs, M): channels-last
            y = np.matmul(cols.reshape(n, k, planes.length).transpose(0, 2, 1), self.wt)
            return to_first(copy_out(planes.crop_last(y), None if bias is None
                                     else self._along_rows(bias, win.outputs[-1])))
        # (G, M/G, K) @ (N, G, K, L) -> (N, G, M/G, L), cropped to (N, M, *outputs)
        y = np.matmul(self.w, cols.reshape(n, self.group, k, planes.length))
        return copy_out(planes.crop(y, self.m), bias)


def _conv_prepare(attrs: Mapping[str, Any], consts: Sequence[np.ndarray | None],
                  epilogue: Epilogue | None = None,
                  prologue: Prologue | None = None) -> Callable[..., np.ndarray] | None:
    if len(consts) < 2 or consts[1] is None:
        return None
    plan = ConvPlan(consts[1], consts[2] if len(consts) > 2 else None, **attrs)
    baked_bias = len(consts) > 2 and consts[2] is not None
    return lambda x, w, b=None: plan(x, None if baked_bias else b, epilogue, prologue)


def _takes_prologue(attrs: Mapping[str, Any], consts: Sequence[np.ndarray | None]) -> bool:
    # a depthwise conv copies its input into a padded buffer anyway: an activation applied on
    # the way saves a pass over it. Not with strides (measured slower: the copy is strided)
    w = consts[1] if len(consts) > 1 else None
    return w is not None and w.shape[1] == 1 and attrs.get("group", 1) == w.shape[0] and \
        all(s == 1 for s in attrs.get("strides") or [1])


@kernel("Conv", dtypes=_F, prepare=_conv_prepare, fuses=True, takes_prologue=_takes_prologue)
def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *, auto_pad: str = "NOTSET",
         dilations: list[int] | None = None, group: int = 1,
         kernel_shape: list[int] | None = None, pads: list[int] | None = None,
         strides: list[int] | None = None) -> np.ndarray:
    return ConvPlan(w, b, auto_pad=auto_pad, dilations=dilations, group=group,
                    kernel_shape=kernel_shape, pads=pads, strides=strides)(x)


def _place(full: np.ndarray, begins: Sequence[int], sizes: Sequence[int]) -> np.ndarray:
    """full[..., begin:begin + size] per spatial axis, zero-filled where that runs off full."""
    out = np.zeros(full.shape[:2] + tuple(sizes), dtype=full.dtype)
    src, dst = [slice(None)] * 2, [slice(None)] * 2
    for n_full, b, size in zip(full.shape[2:], begins, sizes):
        lo, hi = max(b, 0), min(b + size, n_full)
        src.append(slice(lo, max(hi, lo)))
        dst.append(slice(lo - b, lo - b + max(hi - lo, 0)))
    out[tuple(dst)] = full[tuple(src)]
    return out


@kernel("ConvTranspose", dtypes=_F)
def conv_transpose(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
                   auto_pad: str = "NOTSET", dilations: list[int] | None = None, group: int = 1,
                   kernel_shape: list[int] | None = None, output_padding: list[int] | None = None,
                   output_shape: list[int] | None = None, pads: list[int] | None = None,
                   strides: list[int] | None = None) -> np.ndarray:
    compute = _compute_dtype(x.dtype)
    n, c = x.shape[:2]
    spatial_in = x.shape[2:]
    rank = len(spatial_in)
    k = tuple(w.shape[2:])
    if kernel_shape and tuple(kernel_shape) != k:
        raise ValueError(f"kernel_shape {list(kernel_shape)} does not match W {w.shape}")
    strides = list(strides or [1] * rank)
    dilations = list(dilations or [1] * rank)
    output_padding = list(output_padding or [0] * rank)
    extent = [(kk - 1) * d + 1 for kk, d in zip(k, dilations)]
    m = w.shape[1] * group
    # every input pixel scatters a kernel-sized patch: patches = W^T x per group (one matmul)
    wt = w.astype(compute).reshape(group, c // group, -1).transpose(0, 2, 1)
    patches = np.matmul(wt, x.astype(compute).reshape(n, group, c // group, -1))
    patches = patches.reshape((n, m) + k + spatial_in)
    full_size = [(i - 1) * s + e for i, s, e in zip(spatial_in, strides, extent)]
    full = np.zeros((n, m) + tuple(full_size), dtype=compute)
    for tap in itertools.product(*(range(kk) for kk in k)):
        region = tuple(slice(t * d, t * d + (i - 1) * s + 1, s)
                       for t, d, i, s in zip(tap, dilations, spatial_in, strides))
        full[(slice(None), slice(None)) + region] += patches[(slice(None), slice(None)) + tap]
    # output size and where it starts inside `full` (explicit pads, output_shape or SAME_*)
    natural = [f + p for f, p in zip(full_size, output_padding)]
    if output_shape or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        sizes = list(output_shape[-rank:]) if output_shape else [i * s for i, s in
                                                                 zip(spatial_in, strides)]
        total = [nat - size for nat, size in zip(natural, sizes)]
        begins = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total]
    else:
        p = list(pads or [0] * 2 * rank) if auto_pad != "VALID" else [0] * 2 * rank
        begins = p[:rank]
        sizes = [nat - pb - pe for nat, pb, pe in zip(natural, p[:rank], p[rank:])]
    y = _place(full, begins, sizes)
    if b is not None:
        y += b.astype(compute).reshape((m,) + (1,) * rank)
    return y.astype(x.dtype, copy=False)
