"""Elementwise arithmetic and math: numpy ufuncs with ONNX's multidirectional broadcasting.

Results keep the input dtype (numpy 2 treats Python scalars as weak, so float32 stays float32).
"""

from __future__ import annotations

import functools

import numpy as np

from edgeexport.runtimes.reference.kernels import FLOATS, NUMERIC, SIGNED, kernel

_F = {"T": FLOATS}


@kernel("Add")
def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.add(a, b)


@kernel("Sub")
def sub(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.subtract(a, b)


@kernel("Mul")
def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.multiply(a, b)


@kernel("Div")
def div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu":
        # integer division truncates toward zero (C semantics), numpy's // floors
        q = np.floor_divide(a, b)
        return q + ((q < 0) & (q * b != a)).astype(q.dtype)
    return np.divide(a, b)


@kernel("Pow", dtypes={"T": FLOATS | {np.dtype(np.int32), np.dtype(np.int64)}, "T1": NUMERIC})
def pow_(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # the result has X's type: compute in the promoted type, then round once
    return np.power(x, y).astype(x.dtype, copy=False)


@kernel("Mod", dtypes={"T": NUMERIC})
def mod(a: np.ndarray, b: np.ndarray, *, fmod: int = 0) -> np.ndarray:
    if fmod:
        return np.fmod(a, b)  # sign of the dividend, like C fmod
    if a.dtype.kind == "f":
        raise ValueError("Mod on floating-point inputs requires fmod=1")
    return np.mod(a, b)  # sign of the divisor, like Python %


@kernel("Max")
def max_(*xs: np.ndarray) -> np.ndarray:
    return functools.reduce(np.maximum, xs)


@kernel("Min")
def min_(*xs: np.ndarray) -> np.ndarray:
    return functools.reduce(np.minimum, xs)


@kernel("Sum", dtypes=_F)
def sum_(*xs: np.ndarray) -> np.ndarray:
    return functools.reduce(np.add, xs)


@kernel("Mean", dtypes=_F)
def mean(*xs: np.ndarray) -> np.ndarray:
    return functools.reduce(np.add, xs) / len(xs)


def _unary(op: str, ufunc: np.ufunc, dtypes: dict | None = None) -> None:
    def run(x: np.ndarray) -> np.ndarray:
        return ufunc(x)

    run.__name__ = run.__qualname__ = op.lower()
    kernel(op, dtypes=dtypes if dtypes is not None else _F)(run)


# Abs and Neg are defined for integers too; the rest of the table is float-only in ONNX.
_unary("Abs", np.abs, {"T": NUMERIC})
_unary("Neg", np.negative, {"T": SIGNED | FLOATS})
_unary("Sign", np.sign, {"T": NUMERIC})
for _op, _fn in {
    "Sqrt": np.sqrt, "Reciprocal": np.reciprocal, "Exp": np.exp, "Log": np.log,
    "Floor": np.floor, "Ceil": np.ceil, "Round": np.round,  # np.round: half to even, as ONNX
    "Sin": np.sin, "Cos": np.cos, "Tan": np.tan, "Asin": np.arcsin, "Acos": np.arccos,
    "Atan": np.arctan, "Sinh": np.sinh, "Cosh": np.cosh, "Asinh": np.arcsinh,
    "Acosh": np.arccosh, "Atanh": np.arctanh,
}.items():
    _unary(_op, _fn)


def erf_f64(x: np.ndarray) -> np.ndarray:
    """erf in float64 to ~1e-14, by the everywhere-convergent series with positive terms

        erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))

    (no cancellation). numpy has no erf; |erf(x)| rounds to 1 in float64 beyond |x| = 6, so x is
    clipped there and the number of terms is fixed by that bound.
    """
    x = np.asarray(x, dtype=np.float64)
    nan = np.isnan(x)
    x = np.clip(np.where(nan, 0.0, x), -6.0, 6.0)
    x2 = x * x
    term = x.copy()
    total = x.copy()
    # term ratio 2x^2/(2n+3) < 1 after n = x^2; 2*36+40 terms leave a relative tail below 1e-17
    n_terms = int(2 * min(float(np.max(x2, initial=0.0)), 36.0)) + 40
    for n in range(n_terms):
        term *= x2 * (2.0 / (2 * n + 3))
        total += term
    y = np.clip(total * np.exp(-x2) * (2.0 / np.sqrt(np.pi)), -1.0, 1.0)
    return np.where(nan, np.nan, y)


@kernel("Erf", dtypes={"T": FLOATS})
def erf(x: np.ndarray) -> np.ndarray:
    # evaluated in float64 and rounded once: the correctly rounded value for float32/float16
    return erf_f64(x).astype(x.dtype)


@kernel("IsNaN", dtypes={"T1": FLOATS})
def isnan(x: np.ndarray) -> np.ndarray:
    return np.isnan(x)


@kernel("IsInf", dtypes={"T1": FLOATS})
def isinf(x: np.ndarray, *, detect_negative: int = 1, detect_positive: int = 1) -> np.ndarray:
    inf = np.isinf(x)
    if not detect_negative:
        inf &= x > 0
    if not detect_positive:
        inf &= x < 0
    return inf
