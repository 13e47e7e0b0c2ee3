"""The mil-interpreter's own kernels, for the MIL ops whose coremltools value inference is missing,
slow or broken. Written from the MIL op definitions (coremltools.converters.mil.mil.ops.defs), never
from the reference runtime: the interpreter is compared with it, so it must not share its bugs.

A kernel is fn(op, inputs by MIL parameter name) -> list of outputs. fp16 values are computed in
float32 and rounded to the declared dtype afterwards (by the interpreter).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Kernel = Callable[[Any, dict[str, Any]], list[np.ndarray]]
KERNELS: dict[str, Kernel] = {}


def _kernel(*op_types: str) -> Callable[[Kernel], Kernel]:
    def register(fn: Kernel) -> Kernel:
        for t in op_types:
            if t in KERNELS:
                raise ValueError(f"mil-interpreter kernel for {t} registered twice")
            KERNELS[t] = fn
        return fn
    return register


def _f32(x: Any) -> np.ndarray:
    x = np.asarray(x)
    return x.astype(np.float32) if x.dtype == np.float16 else x


def _ints(v: Any, n: int, default: int) -> list[int]:
    return [default] * n if v is None else [int(i) for i in np.asarray(v).ravel()]


# -- windows: conv and pooling -------------------------------------------------------------------

def _pads(a: dict[str, Any], size: list[int], window: list[int], strides: list[int]
          ) -> list[tuple[int, int]]:
    """(before, after) per spatial axis. MIL `same` puts the odd element after, `same_lower`
    before; `custom` reads pad as [begin, end] per axis."""
    pad_type = str(a.get("pad_type") or "valid")
    if pad_type == "custom":
        pad = _ints(a.get("pad"), 2 * len(size), 0)
        return [(pad[2 * i], pad[2 * i + 1]) for i in range(len(size))]
    if pad_type == "valid":
        return [(0, 0)] * len(size)
    out = []
    for n, k, s in zip(size, window, strides):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        small, big = total // 2, total - total // 2
        out.append((small, big) if pad_type == "same" else (big, small))
    return out


def _windows(x: np.ndarray, window: list[int], strides: list[int], dilations: list[int]
             ) -> np.ndarray:
    """A view of x (N, C, *D, already padded) as (N, C, *out, *window)."""
    spatial = len(window)
    span = [(k - 1) * d + 1 for k, d in zip(window, dilations)]
    v = sliding_window_view(x, span, axis=tuple(range(2, 2 + spatial)))
    return v[(slice(None), slice(None), *(slice(None, None, s) for s in strides),
              *(slice(None, None, d) for d in dilations))]


def _letters(n: int, start: str) -> str:
    return "".join(chr(ord(start) + i) for i in range(n))


def _conv_args(a: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, int, list[int], list[int]]:
    """x, weight (float32), groups, strides, dilations of conv / conv_transpose."""
    w = _f32(a["weight"]).astype(np.float32)
    spatial = w.ndim - 2
    return (_f32(a["x"]), w, int(a.get("groups") or 1), _ints(a.get("strides"), spatial, 1),
            _ints(a.get("dilations"), spatial, 1))


def _plus_bias(y: np.ndarray, a: dict[str, Any]) -> np.ndarray:
    if a.get("bias") is None:
        return y
    return y + _f32(a["bias"]).reshape(-1, *[1] * (y.ndim - 2))


@_kernel("conv")
def _conv(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # y[n, o, p] = sum_{c in o's group, k} x[n, c, p * stride + k * dilation - pad_begin] w[o, c, k]
    x, w, groups, strides, dilations = _conv_args(a)
    spatial = w.ndim - 2
    span = [(k - 1) * d + 1 for k, d in zip(w.shape[2:], dilations)]
    pads = _pads(a, list(x.shape[2:]), span, strides)
    x = np.pad(x, [(0, 0), (0, 0), *pads])
    win = _windows(x, list(w.shape[2:]), strides, dilations)  # (N, C, *out, *K)
    n, c = x.shape[:2]
    kernel_axes = list(range(2 + spatial, 2 + 2 * spatial))
    out_size = win.shape[2:2 + spatial]
    if groups == 1:  # one GEMM: (C_out, C * K) @ (C * K, positions)
        if w.shape[2:] == (1,) * spatial and strides == [1] * spatial:
            cols = x.reshape(n, c, -1)
        else:
            cols = win.transpose(0, 1, *kernel_axes, *range(2, 2 + spatial))
            cols = cols.reshape(n, -1, math.prod(out_size))
        y = np.matmul(w.reshape(w.shape[0], -1), cols).reshape(n, w.shape[0], *out_size)
    elif c == groups:  # depthwise: one multiply-add per kernel tap, no GEMM to feed
        m = w.shape[0] // groups
        y = np.zeros((n, groups, m, *out_size), np.float32)
        tmp = np.empty_like(y)
        taps = w.reshape(1, groups, m, *w.shape[2:])
        for tap in np.ndindex(*w.shape[2:]):
            np.multiply(win[(slice(None), slice(None), None, Ellipsis, *tap)],
                        taps[(Ellipsis, *tap)].reshape(1, groups, m, *[1] * spatial), out=tmp)
            y += tmp
        y = y.reshape(n, w.shape[0], *out_size)
    else:
        win = win.reshape(n, groups, c // groups, *win.shape[2:])
        wg = w.reshape(groups, w.shape[0] // groups, *w.shape[1:])
        out, ker = _letters(spatial, "h"), _letters(spatial, "r")
        y = np.einsum(f"ngc{out}{ker},goc{ker}->ngo{out}", win, wg, optimize=True)
        y = y.reshape(n, w.shape[0], *y.shape[3:])
    return [_plus_bias(y, a)]


@_kernel("conv_transpose")
def _conv_transpose(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # every input element scatters x[n, c, i] * w[c, o, k] into y[n, o, i * stride + k * dilation]
    # (weight is [C_in, C_out / groups, *K]); then the padding is cropped off
    x, w, groups, strides, dilations = _conv_args(a)
    spatial = w.ndim - 2
    n, c, size, kernel = x.shape[0], x.shape[1], list(x.shape[2:]), list(w.shape[2:])
    xg = x.reshape(n, groups, c // groups, *size)
    wg = w.reshape(groups, c // groups, *w.shape[1:])
    ins, ker = _letters(spatial, "h"), _letters(spatial, "r")
    t = np.einsum(f"ngc{ins},gco{ker}->ngo{ins}{ker}", xg, wg, optimize=True)
    t = t.reshape(n, -1, *size, *kernel)
    full = [(i - 1) * s + (k - 1) * d + 1 for i, s, k, d in zip(size, strides, kernel, dilations)]
    y = np.zeros((n, t.shape[1], *full), np.float32)
    for offset in np.ndindex(*kernel):
        dst = tuple(slice(k * d, k * d + (i - 1) * s + 1, s)
                    for k, d, i, s in zip(offset, dilations, size, strides))
        y[(slice(None), slice(None), *dst)] += t[(Ellipsis, *offset)]
    y = y[(slice(None), slice(None), *_transpose_crop(a, full, size, strides))]
    return [_plus_bias(y, a)]


def _transpose_crop(a: dict[str, Any], full: list[int], size: list[int], strides: list[int]
                    ) -> list[slice]:
    pad_type = str(a.get("pad_type") or "valid")
    if a.get("output_shape") is not None:
        want = _ints(a["output_shape"], len(full) + 2, 0)[2:]
    elif pad_type == "same":
        want = [i * s for i, s in zip(size, strides)]
    else:
        want = full
    if pad_type == "custom":
        begin = _ints(a.get("pad"), 2 * len(full), 0)[0::2]
        if a.get("output_shape") is None:
            end = _ints(a.get("pad"), 2 * len(full), 0)[1::2]
            want = [f - b - e for f, b, e in zip(full, begin, end)]
    else:
        begin = [(f - w) // 2 for f, w in zip(full, want)]
    return [slice(b, b + w) for b, w in zip(begin, want)]


@_kernel("max_pool", "avg_pool")
def _pool(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    x = _f32(a["x"])
    kernel = _ints(a["kernel_sizes"], 0, 1)
    spatial = len(kernel)
    strides = _ints(a.get("strides"), spatial, 1)
    size = list(x.shape[2:])
    pads = _pads(a, size, kernel, strides)
    if a.get("ceil_mode") is not None and bool(a["ceil_mode"]):
        # one more window where a partial one is left, unless (with padding) it would start in
        # the end padding
        ceil = []
        for n, k, s, (b, e) in zip(size, kernel, strides, pads):
            out = -(-(n + b + e - k) // s) + 1
            if (out - 1) * s >= n + b and (b > 0 or e > 0):
                out -= 1
            ceil.append(max((out - 1) * s + k - (n + b + e), 0))
    else:
        ceil = [0] * spatial
    outer = [(0, 0), (0, 0), *((b, e + c) for (b, e), c in zip(pads, ceil))]
    ones = [1] * spatial
    if op.op_type == "max_pool":
        padded = np.pad(x, outer, constant_values=-np.inf)
        return [_windows(padded, kernel, strides, ones).max(axis=tuple(range(-spatial, 0)))]
    axes = tuple(range(-spatial, 0))
    total = _windows(np.pad(x, outer), kernel, strides, ones).sum(axis=axes)
    # the denominator counts real elements, plus the explicit padding unless it is excluded;
    # never the extra end that ceil_mode adds
    exclude = bool(a.get("exclude_padding_from_average", False))
    mask = np.ones([1, 1, *size], np.float32)
    mask = np.pad(mask, [(0, 0), (0, 0), *pads], constant_values=0.0 if exclude else 1.0)
    mask = np.pad(mask, [(0, 0), (0, 0), *((0, c) for c in ceil)])
    count = _windows(mask, kernel, strides, ones).sum(axis=axes)
    return [total / count]


# -- reductions, normalization --------------------------------------------------------------------

def _logsumexp(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    y = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return y if keepdims else np.squeeze(y, axis=axis)


_REDUCE: dict[str, Callable[..., np.ndarray]] = {
    "reduce_mean": np.mean, "reduce_sum": np.sum, "reduce_max": np.max, "reduce_min": np.min,
    "reduce_prod": np.prod,
    "reduce_l1_norm": lambda x, axis, keepdims: np.sum(np.abs(x), axis=axis, keepdims=keepdims),
    "reduce_l2_norm": lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis,
                                                               keepdims=keepdims)),
    "reduce_sum_square": lambda x, axis, keepdims: np.sum(x * x, axis=axis, keepdims=keepdims),
    "reduce_log_sum_exp": _logsumexp,
}


@_kernel(*_REDUCE)
def _reduce(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # MIL: axes None reduces every axis; keep_dims keeps them as size 1
    x = _f32(a["x"])
    axes = None if a.get("axes") is None else tuple(int(i) % max(x.ndim, 1)
                                                    for i in np.asarray(a["axes"]).ravel())
    keep = bool(a["keep_dims"]) if a.get("keep_dims") is not None else False
    return [np.asarray(_REDUCE[op.op_type](x, axis=axes, keepdims=keep))]


def _affine_per_channel(a: dict[str, Any], x: np.ndarray, mean: np.ndarray, var: np.ndarray
                        ) -> np.ndarray:
    shape = (1, -1, *[1] * (x.ndim - 2))
    y = (x - mean) / np.sqrt(var + np.float32(a["epsilon"]))
    if a.get("gamma") is not None:
        y = y * _f32(a["gamma"]).reshape(shape)
    if a.get("beta") is not None:
        y = y + _f32(a["beta"]).reshape(shape)
    return y


@_kernel("batch_norm")
def _batch_norm(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # (x - mean) / sqrt(variance + epsilon) * gamma + beta, per channel (axis 1)
    x = _f32(a["x"])
    shape = (1, -1, *[1] * (x.ndim - 2))
    return [_affine_per_channel(a, x, _f32(a["mean"]).reshape(shape),
                                _f32(a["variance"]).reshape(shape))]


@_kernel("instance_norm")
def _instance_norm(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # the same per (batch, channel), with mean and variance over the spatial axes
    x = _f32(a["x"])
    axes = tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    return [_affine_per_channel(a, x, mean, ((x - mean) ** 2).mean(axis=axes, keepdims=True))]


# -- resampling, layout -------------------------------------------------------------------------

@_kernel("upsample_nearest_neighbor")
def _upsample_nearest(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # out[i] = in[floor(i / scale)], out size floor(in * scale), on the last two axes
    x = a["x"]
    for axis, key in ((-2, "scale_factor_height"), (-1, "scale_factor_width")):
        scale = float(a.get(key) or 1)
        n = x.shape[axis]
        idx = np.minimum(np.floor(np.arange(int(n * scale)) / scale).astype(np.int64), n - 1)
        x = np.take(x, idx, axis=axis)
    return [x]


@_kernel("upsample_bilinear")
def _upsample_bilinear(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # grid point i of Xout (spacing recomputed from the sizes): align_corners i * (Xin-1)/(Xout-1);
    # half-pixel centers i * Xin/Xout + 0.5 * Xin/Xout - 0.5; else i * Xin/Xout; clamped to
    # [0, Xin - 1]. half_pixel_centers (iOS 16) defaults to not align_corners
    x = _f32(a["x"])
    align = True if a.get("align_corners") is None else bool(a["align_corners"])
    half = not align if a.get("half_pixel_centers") is None else bool(a["half_pixel_centers"])
    for axis, key in ((-2, "scale_factor_height"), (-1, "scale_factor_width")):
        n = x.shape[axis]
        out = int(math.floor(n * float(a.get(key) or 1)))
        i = np.arange(out, dtype=np.float64)
        if align:
            grid = i * ((n - 1) / (out - 1) if out > 1 else 0.0)
        else:
            grid = i * (n / out) + (0.5 * n / out - 0.5 if half else 0.0)
        grid = np.clip(grid, 0, n - 1)
        lo = np.floor(grid).astype(np.int64)
        hi = np.minimum(lo + 1, n - 1)
        frac = (grid - lo).astype(np.float32).reshape([-1] + [1] * (-axis - 1))
        x = np.take(x, lo, axis=axis) * (1 - frac) + np.take(x, hi, axis=axis) * frac
    return [x]


@_kernel("depth_to_space", "pixel_shuffle")
def _depth_to_space(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # depth_to_space (TensorFlow's): channel (by, bx, c) -> pixel (y*b + by, x*b + bx) of c;
    # pixel_shuffle (PyTorch's): channel (c, by, bx)
    x = a["x"]
    n, ch, h, w = x.shape
    if op.op_type == "pixel_shuffle":
        b = int(a["upscale_factor"])
        y = x.reshape(n, ch // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    else:
        b = int(a["block_size"])
        y = x.reshape(n, b, b, ch // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    return [y.reshape(n, ch // (b * b), h * b, w * b)]


@_kernel("space_to_depth")
def _space_to_depth(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # pixel (y*b + by, x*b + bx) of channel c -> channel (by, bx, c): depth_to_space undone
    x, b = a["x"], int(a["block_size"])
    n, ch, h, w = x.shape
    y = x.reshape(n, ch, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return [y.reshape(n, ch * b * b, h // b, w // b)]


@_kernel("cumsum")
def _cumsum(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # coremltools' value inference breaks on exclusive=True (np.zeros(shape, array))
    # (exclusive: the sum of the elements before, 0 first; reverse: summed from the end)
    x, axis = _f32(a["x"]), int(a.get("axis") or 0)
    reverse = a.get("reverse") is not None and bool(a["reverse"])
    if reverse:
        x = np.flip(x, axis)
    y = np.cumsum(x, axis=axis, dtype=x.dtype)
    if a.get("exclusive") is not None and bool(a["exclusive"]):
        first = np.zeros_like(np.take(x, [0], axis=axis))
        y = np.concatenate([first, np.take(y, np.arange(x.shape[axis] - 1), axis=axis)], axis)
    return [np.flip(y, axis) if reverse else y]


@_kernel("band_part")
def _band_part(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # keeps (lower < 0 or i - j <= lower) and (upper < 0 or j - i <= upper) on the last two axes;
    # coremltools' value inference loops over every element in Python
    x = a["x"]
    lower = -1 if a.get("lower") is None else int(a["lower"])
    upper = -1 if a.get("upper") is None else int(a["upper"])
    i = np.arange(x.shape[-2])[:, None]
    j = np.arange(x.shape[-1])[None, :]
    keep = ((lower < 0) | (i - j <= lower)) & ((upper < 0) | (j - i <= upper))
    return [np.where(keep, x, np.zeros((), x.dtype))]


@_kernel("range_1d")
def _range_1d(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # coremltools' value inference gives up (None) above its constant-folding size
    start = np.asarray(a["start"])
    return [np.arange(start, np.asarray(a["end"]), np.asarray(a["step"]), dtype=start.dtype)]


@_kernel("split")
def _split(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    x, axis = a["x"], int(a["axis"])
    sizes = a.get("split_sizes")
    if sizes is None:
        sizes = [x.shape[axis] // int(a["num_splits"])] * int(a["num_splits"])
    return list(np.split(x, np.cumsum([int(s) for s in sizes])[:-1], axis=axis))


# -- quantization -------------------------------------------------------------------------------

@_kernel("gather_nd")
def _gather_nd(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # MIL gather_nd: the last axis of indices (K values) picks along x's axes b..b+K-1, after
    # its b = batch_dims leading axes that x and indices share (batch_dims from iOS 16)
    x, idx = np.asarray(a["x"]), np.asarray(a["indices"]).astype(np.int64)
    b = int(a.get("batch_dims") or 0)
    k = idx.shape[-1]
    xb = x.reshape((-1,) + x.shape[b:])
    ib = idx.reshape((xb.shape[0], -1, k))
    rows = np.arange(xb.shape[0])[:, None]
    out = xb[(rows,) + tuple(ib[..., j] for j in range(k))]
    return [out.reshape(idx.shape[:-1] + x.shape[b + k:])]


def _affine(a: dict[str, Any], data: np.ndarray, axis_key: str = "axis") -> tuple[Any, Any]:
    scale, zp = np.asarray(a["scale"]), a.get("zero_point")
    axis = a.get(axis_key)
    if scale.ndim == 1 and scale.size > 1 or (axis is not None and scale.ndim == 1):
        shape = [1] * data.ndim
        shape[int(axis) % data.ndim] = scale.size
        scale = scale.reshape(shape)
        if zp is not None:  # a zero point may stay scalar beside per-channel scales
            zp = np.asarray(zp)
            zp = zp.reshape(shape) if zp.size > 1 else zp.reshape(())
    return scale, zp


@_kernel("quantize")
def _quantize(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # MIL quantize: round(x / scale) + zero_point, clipped to the output type (round half even)
    x = a["input"]
    scale, zp = _affine(a, x)
    q = np.rint(x.astype(np.float32) / scale.astype(np.float32))
    if zp is not None:
        q = q + zp.astype(np.float32)
    dtype = np.dtype(str(a["output_dtype"]))
    info = np.iinfo(dtype)
    return [np.clip(q, info.min, info.max).astype(dtype)]


@_kernel("dequantize", "constexpr_affine_dequantize")
def _dequantize(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # scale * (q - zero_point), in the scale's dtype (which is the output dtype)
    q = a["input"] if "input" in a else a["quantized_data"]
    scale, zp = _affine(a, q)
    d = q.astype(np.int32) - (0 if zp is None else zp.astype(np.int32))
    return [(d.astype(np.float32) * scale.astype(np.float32)).astype(scale.dtype)]


__all__ = ["KERNELS", "Kernel"]
