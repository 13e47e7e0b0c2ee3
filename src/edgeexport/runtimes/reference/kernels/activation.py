"""Activations, Clip and the softmaxes, as the ONNX spec writes them (float types only, except
Relu/LeakyRelu/PRelu/Clip which ONNX also defines on integers). Relu and Clip also have an
in-place form, which the interpreter fuses into the Conv before or after them (the same ufunc,
with out=).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from edgeexport.runtimes.reference.kernels import (
    FLOATS, NUMERIC, SIGNED, Prologue, kernel, normalize_axis,
)
from edgeexport.runtimes.reference.kernels.elementwise import erf_f64

_F = {"T": FLOATS}


def _relu_inplace(attrs: Mapping[str, Any], consts: Sequence[np.ndarray | None]) -> Prologue:
    return lambda x, out: np.maximum(x, x.dtype.type(0), out=out)


@kernel("Relu", dtypes={"T": SIGNED | FLOATS}, inplace=_relu_inplace)
def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, x.dtype.type(0))


@kernel("LeakyRelu", dtypes=_F)
def leaky_relu(x: np.ndarray, *, alpha: float = 0.01) -> np.ndarray:
    return np.where(x >= 0, x, x * alpha)


@kernel("PRelu", dtypes={"T": FLOATS | {np.dtype(t) for t in (np.int32, np.int64, np.uint32,
                                                              np.uint64)}})
def prelu(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
    return np.where(x < 0, x * slope, x).astype(x.dtype, copy=False)


@kernel("Elu", dtypes=_F)
def elu(x: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    return np.where(x > 0, x, alpha * np.expm1(x))


@kernel("Selu", dtypes=_F)
def selu(x: np.ndarray, *, alpha: float = 1.67326319217681884765625,
         gamma: float = 1.05070102214813232421875) -> np.ndarray:
    return gamma * np.where(x > 0, x, alpha * np.expm1(x))


@kernel("Celu", dtypes={"T": frozenset({np.dtype(np.float32)})})
def celu(x: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    return np.maximum(x, 0) + np.minimum(0, alpha * np.expm1(x / alpha))


@kernel("Sigmoid", dtypes=_F)
def sigmoid(x: np.ndarray) -> np.ndarray:
    # exp(-x) overflows to inf for very negative x, giving the right limit 0
    return 1 / (1 + np.exp(-x))


@kernel("HardSigmoid", dtypes=_F)
def hard_sigmoid(x: np.ndarray, *, alpha: float = 0.2, beta: float = 0.5) -> np.ndarray:
    return np.clip(alpha * x + beta, 0, 1)


@kernel("HardSwish", dtypes=_F)
def hard_swish(x: np.ndarray) -> np.ndarray:
    return x * np.clip(x * (1 / 6) + 0.5, 0, 1)


@kernel("Tanh", dtypes=_F)
def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


@kernel("Softplus", dtypes=_F)
def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0, x)  # log(exp(x) + 1) without overflow for large x


@kernel("Softsign", dtypes=_F)
def softsign(x: np.ndarray) -> np.ndarray:
    return x / (1 + np.abs(x))


@kernel("Mish", dtypes=_F)
def mish(x: np.ndarray) -> np.ndarray:
    return x * np.tanh(np.logaddexp(0, x))


@kernel("Gelu", dtypes=_F)
def gelu(x: np.ndarray, *, approximate: str = "none") -> np.ndarray:
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    if approximate != "none":
        raise ValueError(f"Gelu approximate={approximate!r} is not 'none' or 'tanh'")
    return 0.5 * x * (1 + erf_f64(x * math.sqrt(0.5)).astype(x.dtype))


def _clip(x: np.ndarray, lo: np.ndarray | None, hi: np.ndarray | None,
          out: np.ndarray | None = None) -> np.ndarray:
    if lo is None and hi is None:
        return x
    # np.clip is min(max(x, lo), hi): when lo > hi every value becomes hi, as the spec says
    return np.clip(x, None if lo is None else lo.astype(x.dtype, copy=False),
                   None if hi is None else hi.astype(x.dtype, copy=False), out=out)


def _clip_inplace(attrs: Mapping[str, Any], consts: Sequence[np.ndarray | None]) -> Prologue:
    lo, hi = (list(consts[1:3]) + [None, None])[:2]
    if lo is None and hi is None:
        return lambda x, out: np.copyto(out, x)
    return lambda x, out: _clip(x, lo, hi, out=out)


@kernel("Clip", dtypes={"T": NUMERIC}, inplace=_clip_inplace)
def clip(x: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> np.ndarray:
    return _clip(x, lo, hi)


@kernel("Softmax", dtypes=_F)
def softmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    axis = normalize_axis(axis, x.ndim)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


@kernel("LogSoftmax", dtypes=_F)
def log_softmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    axis = normalize_axis(axis, x.ndim)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
