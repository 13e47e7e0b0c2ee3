"""Normalizations: BatchNormalization (inference and training mode), Layer/Instance/Group norm.

Statistics are computed in float32 for float16 inputs (the spec's stash_type), in the input
type otherwise; variance is the biased (population) one everywhere, as ONNX defines it.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import onnx_ir as ir

from edgeexport.ir import np_dtype
from edgeexport.runtimes.reference.kernels import FLOATS, kernel, normalize_axis

_F = {"T": FLOATS, "T1": FLOATS, "T2": FLOATS, "U": FLOATS}


def _per_channel(p: np.ndarray, ndim: int) -> np.ndarray:
    return p.reshape((-1,) + (1,) * (ndim - 2))


def _bn_affine(scale: np.ndarray, b: np.ndarray, mean: np.ndarray, var: np.ndarray,
               epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """BatchNorm as y = x * a + c, a = scale / sqrt(var + eps), c = b - mean * a."""
    a = scale / np.sqrt(var + epsilon)
    return a, b - mean * a


def _bn_apply(x: np.ndarray, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    y = np.multiply(x, _per_channel(a, x.ndim))
    y += _per_channel(c, x.ndim)  # in place on our own fresh array: one pass less
    return y


def _bn_prepare(attrs: Mapping[str, Any],
                consts: Sequence[np.ndarray | None]) -> Callable[..., np.ndarray] | None:
    # constant parameters (the usual case) fold into a, c once instead of on every run
    if attrs.get("training_mode", 0) or len(consts) < 5 or any(c is None for c in consts[1:5]):
        return None
    a, c = _bn_affine(*consts[1:5], epsilon=attrs.get("epsilon", 1e-5))
    return lambda x, *_: _bn_apply(x, a, c)


@kernel("BatchNormalization", dtypes=_F, prepare=_bn_prepare)
def batch_normalization(x: np.ndarray, scale: np.ndarray, b: np.ndarray, mean: np.ndarray,
                        var: np.ndarray, *, epsilon: float = 1e-5, momentum: float = 0.9,
                        training_mode: int = 0) -> np.ndarray | tuple[np.ndarray, ...]:
    if not training_mode:
        return _bn_apply(x, *_bn_affine(scale, b, mean, var, epsilon))
    axes = (0,) + tuple(range(2, x.ndim))
    batch_mean, batch_var = x.mean(axis=axes), x.var(axis=axes)
    y = _bn_apply(x, *_bn_affine(scale, b, batch_mean, batch_var, epsilon))
    running_mean = mean * momentum + batch_mean * (1 - momentum)
    running_var = var * momentum + batch_var * (1 - momentum)
    return y, running_mean.astype(mean.dtype), running_var.astype(var.dtype)


def _stash_dtype(x: np.ndarray, stash_type: int) -> np.dtype:
    if stash_type == 1 and x.dtype == np.float64:
        return x.dtype  # never compute a double tensor's statistics in less than double
    return np_dtype(ir.DataType(stash_type))


@kernel("LayerNormalization", dtypes=_F)
def layer_normalization(x: np.ndarray, scale: np.ndarray, b: np.ndarray | None = None, *,
                        axis: int = -1, epsilon: float = 1e-5,
                        stash_type: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    axes = tuple(range(normalize_axis(axis, x.ndim), x.ndim))
    xs = x.astype(_stash_dtype(x, stash_type), copy=False)
    mean = xs.mean(axis=axes, keepdims=True)
    d = xs - mean
    inv_std = 1 / np.sqrt((d * d).mean(axis=axes, keepdims=True) + epsilon)
    # normalized in the stash type, cast to X's type, then scaled in X's type (the spec's body)
    y = (d * inv_std).astype(x.dtype, copy=False) * scale
    if b is not None:
        y = y + b
    return y, mean, inv_std


def _normalize(x: np.ndarray, axes: tuple[int, ...], epsilon: float) -> np.ndarray:
    xs = x.astype(np.float32) if x.dtype == np.float16 else x
    mean = xs.mean(axis=axes, keepdims=True)
    d = xs - mean
    return (d / np.sqrt((d * d).mean(axis=axes, keepdims=True) + epsilon)).astype(x.dtype)


@kernel("InstanceNormalization", dtypes=_F)
def instance_normalization(x: np.ndarray, scale: np.ndarray, b: np.ndarray, *,
                           epsilon: float = 1e-5) -> np.ndarray:
    y = _normalize(x, tuple(range(2, x.ndim)), epsilon)
    return y * _per_channel(scale, x.ndim) + _per_channel(b, x.ndim)


@kernel("GroupNormalization", dtypes=_F)
def group_normalization(x: np.ndarray, scale: np.ndarray, b: np.ndarray, *, epsilon: float = 1e-5,
                        num_groups: int = 0, stash_type: int = 1) -> np.ndarray:
    n, c = x.shape[:2]
    grouped = x.reshape(n, num_groups, -1)
    y = _normalize(grouped.astype(_stash_dtype(x, stash_type), copy=False), (2,), epsilon)
    # opset 18 gives scale and bias per group; opset 21 per channel. The sizes tell them apart.
    if scale.size == num_groups and num_groups != c:
        y = y * scale.reshape(1, -1, 1) + b.reshape(1, -1, 1)
        return y.reshape(x.shape).astype(x.dtype, copy=False)
    y = y.reshape(x.shape).astype(x.dtype, copy=False)
    return y * _per_channel(scale, x.ndim) + _per_channel(b, x.ndim)
