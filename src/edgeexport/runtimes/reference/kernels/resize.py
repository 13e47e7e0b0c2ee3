"""Resize (opset 19): nearest / linear / cubic, every coordinate_transformation_mode, antialias,
exclude_outside, axes and keep_aspect_ratio_policy.

Interpolation is separable, so the tensor is resized one axis at a time: each output position
gathers a few input positions along that axis (np.take) and weighs them. Coordinates and weights
are computed in float64; the weighing runs in the input's float type.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from edgeexport.runtimes.reference.kernels import NUMERIC, kernel, normalize_axis

_MODES = ("nearest", "linear", "cubic")
_COORDINATES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                "asymmetric", "tf_crop_and_resize")


def _source_coordinates(mode: str, n_in: int, n_out: int, scale: float,
                        roi: tuple[float, float]) -> np.ndarray:
    """x_original for every output index along one axis (the spec's formulas). Like ONNX's own
    reference, "length_resized" is scale * n_in, which differs from n_out only for scales that
    do not divide evenly."""
    x = np.arange(n_out, dtype=np.float64)
    length = scale * n_in
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / length)
        return offset + (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if length > 1 else np.zeros_like(x)
    if mode == "align_corners":
        return x * (n_in - 1) / (length - 1) if length != 1 else np.zeros_like(x)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_crop_and_resize":
        start, end = roi
        if length == 1:
            return np.full_like(x, (start + end) * (n_in - 1) / 2)
        return start * (n_in - 1) + x * (end - start) * (n_in - 1) / (length - 1)
    raise ValueError(f"coordinate_transformation_mode {mode!r} is not one of {_COORDINATES}")


def _nearest(x: np.ndarray, nearest_mode: str) -> np.ndarray:
    if nearest_mode == "round_prefer_floor":
        return np.ceil(x - 0.5)  # halves go down
    if nearest_mode == "round_prefer_ceil":
        return np.floor(x + 0.5)
    if nearest_mode == "floor":
        return np.floor(x)
    if nearest_mode == "ceil":
        return np.ceil(x)
    raise ValueError(f"nearest_mode {nearest_mode!r} is not round_prefer_floor, "
                     "round_prefer_ceil, floor or ceil")


def _cubic(t: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with parameter a, at distance t."""
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def _filter_taps(ratio: np.ndarray, mode: str, scale: float, antialias: bool,
                 a: float) -> tuple[int, np.ndarray]:
    """(first, weights): weights (n_out, n_taps) of the inputs at floor(x) + first + j.

    Without antialias these are the usual 2 (linear: offsets 0, 1) or 4 (cubic: -1..2) taps;
    with antialias and scale < 1 the filter is stretched by 1/scale, so it has more taps, and
    they are normalized to sum to 1."""
    support = 1.0 if mode == "linear" else 2.0
    s = min(scale, 1.0) if antialias else 1.0
    first = int(np.floor(-support / s) + 1)
    distance = (np.arange(first, 2 - first)[None, :] - ratio[:, None]) * s
    w = np.clip(1 - np.abs(distance), 0, 1) if mode == "linear" else _cubic(distance, a)
    return first, (w / w.sum(axis=1, keepdims=True) if antialias else w)


def _resize_axis(x: np.ndarray, axis: int, n_out: int, scale: float, roi: tuple[float, float],
                 attrs: Mapping[str, Any]) -> np.ndarray:
    n_in = x.shape[axis]
    coords = _source_coordinates(attrs["coordinate_transformation_mode"], n_in, n_out, scale, roi)
    if attrs["mode"] == "nearest":
        index = np.clip(_nearest(coords, attrs["nearest_mode"]), 0, n_in - 1).astype(np.intp)
        y = np.take(x, index, axis=axis)
    else:
        base = np.floor(coords)
        first, weights = _filter_taps(coords - base, attrs["mode"], scale,
                                      bool(attrs["antialias"]), attrs["cubic_coeff_a"])
        n_taps = weights.shape[1]
        index = base.astype(np.int64)[:, None] + np.arange(first, first + n_taps)[None, :]
        if attrs["exclude_outside"]:
            weights = np.where((index < 0) | (index >= n_in), 0.0, weights)
            total = weights.sum(axis=1, keepdims=True)
            weights = weights / np.where(total == 0, 1.0, total)
        index = np.clip(index, 0, n_in - 1)  # outside taps repeat the edge
        shape = [1] * x.ndim
        shape[axis] = n_out
        y = None
        for tap in range(n_taps):  # a handful of taps, each a vectorized gather
            term = np.take(x, index[:, tap], axis=axis) * weights[:, tap].astype(x.dtype).reshape(
                shape)
            y = term if y is None else y + term
    if attrs["coordinate_transformation_mode"] == "tf_crop_and_resize":
        outside = (coords < 0) | (coords > n_in - 1)
        if outside.any():
            shape = [1] * x.ndim
            shape[axis] = n_out
            y = np.where(outside.reshape(shape), attrs["extrapolation_value"], y).astype(
                y.dtype, copy=False)
    return y


def _resize_unsupported(attrs: Mapping[str, Any], inputs: Sequence[np.ndarray | None]) -> str | None:
    if attrs.get("mode", "nearest") not in _MODES:
        return f"mode {attrs['mode']!r} is not one of {_MODES}"
    if attrs.get("keep_aspect_ratio_policy", "stretch") not in ("stretch", "not_larger",
                                                               "not_smaller"):
        return f"keep_aspect_ratio_policy {attrs['keep_aspect_ratio_policy']!r} is unknown"
    return None


@kernel("Resize", dtypes={"T1": NUMERIC}, unsupported=_resize_unsupported)
def resize(x: np.ndarray, roi: np.ndarray | None = None, scales: np.ndarray | None = None,
           sizes: np.ndarray | None = None, *, antialias: int = 0, axes: list[int] | None = None,
           coordinate_transformation_mode: str = "half_pixel", cubic_coeff_a: float = -0.75,
           exclude_outside: int = 0, extrapolation_value: float = 0.0,
           keep_aspect_ratio_policy: str = "stretch", mode: str = "nearest",
           nearest_mode: str = "round_prefer_floor") -> np.ndarray:
    attrs = dict(antialias=antialias, coordinate_transformation_mode=coordinate_transformation_mode,
                 cubic_coeff_a=cubic_coeff_a, exclude_outside=exclude_outside,
                 extrapolation_value=extrapolation_value, mode=mode, nearest_mode=nearest_mode)
    if mode not in _MODES:
        raise ValueError(f"Resize mode {mode!r} is not one of {_MODES}")
    rank = x.ndim
    axes_list = [normalize_axis(a, rank) for a in axes] if axes else list(range(rank))
    roi_list = [float(v) for v in roi.reshape(-1)] if roi is not None and roi.size else \
        [0.0] * len(axes_list) + [1.0] * len(axes_list)
    rois = {a: (roi_list[i], roi_list[i + len(axes_list)]) for i, a in enumerate(axes_list)}
    in_sizes = [x.shape[a] for a in axes_list]
    if scales is not None and scales.size:
        factors = [float(s) for s in scales.reshape(-1)]
        out_sizes = [int(np.floor(s * n)) for s, n in zip(factors, in_sizes)]
    elif sizes is not None and sizes.size:
        out_sizes = [int(v) for v in sizes.reshape(-1)]
        factors = [o / n for o, n in zip(out_sizes, in_sizes)]
        if keep_aspect_ratio_policy != "stretch":
            pick = min if keep_aspect_ratio_policy == "not_larger" else max
            scale = pick(factors)
            factors = [scale] * len(in_sizes)
            out_sizes = [int(scale * n + 0.5) for n in in_sizes]  # round half up
    else:
        raise ValueError("Resize needs either scales or sizes")
    compute = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    y = x.astype(compute, copy=False)
    for axis, n_out, scale in zip(axes_list, out_sizes, factors):
        if n_out == y.shape[axis] and scale == 1.0 and rois[axis] == (0.0, 1.0):
            continue  # identity along this axis, whatever the mode
        y = _resize_axis(y, axis, n_out, scale, rois[axis], attrs)
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        return np.clip(np.rint(y), info.min, info.max).astype(x.dtype)
    return y.astype(x.dtype, copy=False)
