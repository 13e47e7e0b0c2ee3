"""Comparisons, boolean logic and Where; every result of a comparison is a bool tensor.
"""

from __future__ import annotations

import numpy as np

from edgeexport.runtimes.reference.kernels import BFLOAT16, STANDARD, kernel

def _binary(op: str, ufunc: np.ufunc) -> None:
    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return ufunc(a, b)

    run.__name__ = run.__qualname__ = op.lower()
    kernel(op)(run)


for _op, _fn in {"Equal": np.equal, "Less": np.less, "LessOrEqual": np.less_equal,
                 "Greater": np.greater, "GreaterOrEqual": np.greater_equal,
                 "And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor}.items():
    _binary(_op, _fn)


@kernel("Not")
def not_(x: np.ndarray) -> np.ndarray:
    return np.logical_not(x)


@kernel("Where", dtypes={"T": STANDARD | BFLOAT16})
def where(cond: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where(cond, x, y)
