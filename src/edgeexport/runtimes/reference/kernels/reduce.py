"""Reductions (axes as an input, opset 18+), ArgMax/ArgMin, CumSum and TopK.

Sums accumulate in the input dtype (numpy would widen int32 to int64), as ONNX defines the output
type to equal the input type; an empty reduction gives the identity element of the op.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from edgeexport.runtimes.reference.kernels import kernel, normalize_axis


def _identity_low(dtype: np.dtype):  # the identity of max: -inf, or the type's minimum
    if dtype.kind == "f":
        return -np.inf
    return False if dtype.kind == "b" else np.iinfo(dtype).min


def _identity_high(dtype: np.dtype):
    if dtype.kind == "f":
        return np.inf
    return True if dtype.kind == "b" else np.iinfo(dtype).max


def _log_sum_exp(x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    # shift by the max for stability; a max of +-inf (or an empty set) is replaced by 0 so that
    # the shift itself cannot make NaN
    m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype)
    s = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return s if keepdims else np.squeeze(s, axis=axis)


_REDUCERS: dict[str, Callable[[np.ndarray, tuple[int, ...], bool], np.ndarray]] = {
    "ReduceSum": lambda x, a, k: np.sum(x, axis=a, keepdims=k, dtype=x.dtype),
    "ReduceMean": lambda x, a, k: np.mean(x, axis=a, keepdims=k),
    "ReduceMax": lambda x, a, k: np.max(x, axis=a, keepdims=k, initial=_identity_low(x.dtype)),
    "ReduceMin": lambda x, a, k: np.min(x, axis=a, keepdims=k, initial=_identity_high(x.dtype)),
    "ReduceProd": lambda x, a, k: np.prod(x, axis=a, keepdims=k, dtype=x.dtype),
    "ReduceL1": lambda x, a, k: np.sum(np.abs(x), axis=a, keepdims=k, dtype=x.dtype),
    "ReduceL2": lambda x, a, k: np.sqrt(np.sum(np.square(x), axis=a, keepdims=k, dtype=x.dtype)),
    "ReduceSumSquare": lambda x, a, k: np.sum(np.square(x), axis=a, keepdims=k, dtype=x.dtype),
    "ReduceLogSumExp": _log_sum_exp,
}


def _reduce_kernel(op: str, fn: Callable[[np.ndarray, tuple[int, ...], bool], np.ndarray]) -> None:
    def run(x: np.ndarray, axes: np.ndarray | None = None, *, keepdims: int = 1,
            noop_with_empty_axes: int = 0) -> np.ndarray:
        if axes is None or axes.size == 0:
            if noop_with_empty_axes:
                return x
            axis = tuple(range(x.ndim))
        else:
            axis = tuple(sorted({normalize_axis(int(a), x.ndim) for a in axes.reshape(-1)}))
        return np.asarray(fn(x, axis, bool(keepdims))).astype(x.dtype, copy=False)

    run.__name__ = run.__qualname__ = op.lower()
    kernel(op)(run)


for _op, _fn in _REDUCERS.items():
    _reduce_kernel(_op, _fn)


def _arg_reduce(x: np.ndarray, axis: int, keepdims: int, select_last_index: int,
                fn: Callable[..., np.ndarray]) -> np.ndarray:
    axis = normalize_axis(axis, x.ndim)
    if select_last_index:
        # the last extremum is the first one of the reversed axis
        idx = x.shape[axis] - 1 - fn(np.flip(x, axis), axis=axis, keepdims=bool(keepdims))
    else:
        idx = fn(x, axis=axis, keepdims=bool(keepdims))
    return idx.astype(np.int64)


@kernel("ArgMax")
def argmax(x: np.ndarray, *, axis: int = 0, keepdims: int = 1,
           select_last_index: int = 0) -> np.ndarray:
    return _arg_reduce(x, axis, keepdims, select_last_index, np.argmax)


@kernel("ArgMin")
def argmin(x: np.ndarray, *, axis: int = 0, keepdims: int = 1,
           select_last_index: int = 0) -> np.ndarray:
    return _arg_reduce(x, axis, keepdims, select_last_index, np.argmin)


@kernel("CumSum")
def cumsum(x: np.ndarray, axis: np.ndarray, *, exclusive: int = 0, reverse: int = 0) -> np.ndarray:
    ax = normalize_axis(int(np.asarray(axis).reshape(-1)[0]), x.ndim)
    if reverse:
        x = np.flip(x, ax)
    y = np.cumsum(x, axis=ax, dtype=x.dtype)
    if exclusive:
        # shift by one along the axis (not y - x, which would round differently)
        head = [slice(None)] * x.ndim
        head[ax] = slice(0, -1)
        pad = [(0, 0)] * x.ndim
        pad[ax] = (1, 0)
        y = np.pad(y[tuple(head)], pad)
    return np.flip(y, ax) if reverse else y


@kernel("TopK")
def topk(x: np.ndarray, k: np.ndarray, *, axis: int = -1, largest: int = 1,
         sorted: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The k largest (smallest) along the axis, in order; of equal values the lower index comes
    first (a stable sort of the negated values). sorted=0 allows any order: sorted it is."""
    ax = normalize_axis(axis, x.ndim)
    n = int(np.asarray(k).reshape(-1)[0])
    if n < 0 or n > x.shape[ax]:
        raise ValueError(f"TopK: k={n} outside 0..{x.shape[ax]}")
    key = x
    if largest:  # descending, ties by index: sort the negation (NaN sorts last either way)
        key = -x if x.dtype.kind in "fi" else ~x if x.dtype.kind == "u" else np.logical_not(x)
    order = np.argsort(key, axis=ax, kind="stable")
    idx = np.take(order, np.arange(n), axis=ax)
    return np.take_along_axis(x, idx, axis=ax), idx.astype(np.int64)
