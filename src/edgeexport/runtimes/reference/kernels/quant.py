"""QuantizeLinear / DequantizeLinear (per-tensor, per-axis, blocked) and the float8 cast rule.

Quantization computes x / scale in float32 and rounds half to even, like onnxruntime; the narrow
types (int4, uint4, float8) are ml_dtypes arrays.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx_ir as ir

from edgeexport.ir import np_dtype
from edgeexport.runtimes.reference.kernels import (
    BFLOAT16, FLOAT8, INT4, kernel, normalize_axis,
)

_FNUZ = {np.dtype(ml_dtypes.float8_e4m3fnuz), np.dtype(ml_dtypes.float8_e5m2fnuz)}
_QUANTIZED = FLOAT8 | INT4 | {np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.uint16)}
_SCALES = BFLOAT16 | {np.dtype(np.float32), np.dtype(np.float16)}


def _integer_range(dtype: np.dtype) -> tuple[int, int]:
    info = ml_dtypes.iinfo(dtype) if dtype in INT4 else np.iinfo(dtype)
    return int(info.min), int(info.max)


def to_float8(x: np.ndarray, dtype: np.dtype, *, saturate: bool = True) -> np.ndarray:
    """Round to a float8 type (round to nearest even), with the spec's `saturate` table: when
    saturating, values beyond the largest finite one clamp to it, and so do infinities except
    for the FNUZ types (which map them to NaN); otherwise overflow gives inf or NaN."""
    x = np.asarray(x).astype(np.float32, copy=False)
    if saturate:
        big = float(ml_dtypes.finfo(dtype).max)
        clamped = np.clip(x, -big, big)
        x = np.where(np.isinf(x), x, clamped) if dtype in _FNUZ else clamped
    return x.astype(dtype)


def cast_to(x: np.ndarray, dtype: np.dtype, *, saturate: bool = True) -> np.ndarray:
    """ONNX Cast: float8 targets follow `saturate`; everything else is numpy's astype."""
    dtype = np.dtype(dtype)
    if dtype in FLOAT8:
        return to_float8(x, dtype, saturate=saturate)
    if x.dtype in FLOAT8 or x.dtype in BFLOAT16 or dtype in BFLOAT16:
        # ml_dtypes converts through float32 exactly; going direct to ints is not defined there
        return x.astype(np.float32).astype(dtype)
    return x.astype(dtype)


def _along(param: np.ndarray, x: np.ndarray, axis: int, block_size: int) -> np.ndarray:
    """Broadcast a scale / zero point to x: per-tensor (scalar), per-axis (1-D) or blocked."""
    if param.ndim == 0 or (param.size == 1 and not block_size):
        return param.reshape(())
    axis = normalize_axis(axis, x.ndim)
    if block_size:
        # same rank as x, ceil(dim / block_size) along axis: each entry covers one block
        return np.repeat(param, block_size, axis=axis).take(np.arange(x.shape[axis]), axis=axis)
    shape = [1] * x.ndim
    shape[axis] = param.size
    return param.reshape(shape)


@kernel("QuantizeLinear", dtypes={"T1": _SCALES | {np.dtype(np.int32)}, "T2": _QUANTIZED})
def quantize_linear(x: np.ndarray, y_scale: np.ndarray, y_zero_point: np.ndarray | None = None, *,
                    axis: int = 1, block_size: int = 0, output_dtype: int = 0,
                    saturate: int = 1) -> np.ndarray:
    if y_zero_point is not None:
        out = y_zero_point.dtype
    else:
        out = np_dtype(ir.DataType(output_dtype)) if output_dtype else np.dtype(np.uint8)
    scaled = x.astype(np.float32) / _along(y_scale, x, axis, block_size).astype(np.float32)
    if out in FLOAT8:
        if y_zero_point is not None:
            scaled = scaled + _along(y_zero_point, x, axis, block_size).astype(np.float32)
        return to_float8(scaled, out, saturate=bool(saturate))
    q = np.rint(scaled)  # round half to even
    if y_zero_point is not None:
        q = q + _along(y_zero_point, x, axis, block_size).astype(np.float32)
    lo, hi = _integer_range(out)
    return np.clip(q, lo, hi).astype(out)


@kernel("DequantizeLinear", dtypes={"T1": _QUANTIZED | {np.dtype(np.int32)}, "T2": _SCALES})
def dequantize_linear(x: np.ndarray, x_scale: np.ndarray, x_zero_point: np.ndarray | None = None,
                      *, axis: int = 1, block_size: int = 0) -> np.ndarray:
    if x.dtype in FLOAT8:
        y = x.astype(np.float32)
        if x_zero_point is not None:
            y = y - _along(x_zero_point, x, axis, block_size).astype(np.float32)
    else:
        # subtract exactly in int64 first: int32 (bias) values do not all fit float32's mantissa
        diff = x.astype(np.int64)
        if x_zero_point is not None:
            diff = diff - _along(x_zero_point, x, axis, block_size).astype(np.int64)
        y = diff.astype(np.float32)
    y = y * _along(x_scale, x, axis, block_size).astype(np.float32)
    return y.astype(x_scale.dtype, copy=False)
