"""MatMul, Gemm and Einsum: BLAS through numpy, accumulating in the input dtype (float32 stays
float32, like onnxruntime's sgemm)."""

from __future__ import annotations

import numpy as np

from edgeexport.runtimes.reference.kernels import FLOATS, kernel

_MATMUL_TYPES = FLOATS | {np.dtype(t) for t in (np.int32, np.int64, np.uint32, np.uint64)}


@kernel("MatMul", dtypes={"T": _MATMUL_TYPES})
def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.matmul(a, b)  # numpy's matmul has numpy.matmul (= ONNX) semantics, 1-D included


@kernel("Gemm", dtypes={"T": _MATMUL_TYPES})
def gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None, *, alpha: float = 1.0,
         beta: float = 1.0, transA: int = 0, transB: int = 0) -> np.ndarray:
    y = np.matmul(a.T if transA else a, b.T if transB else b)
    if alpha != 1.0:  # skip the multiply when it is exact anyway: keeps integer Gemm integral
        y = (y * alpha).astype(a.dtype, copy=False)
    if c is not None:
        y = y + (c if beta == 1.0 else (c * beta).astype(c.dtype, copy=False))
    return y


@kernel("Einsum", dtypes={"T": _MATMUL_TYPES})
def einsum(*xs: np.ndarray, equation: str = "") -> np.ndarray:
    # optimize=True contracts pairwise through BLAS instead of one nested loop
    return np.asarray(np.einsum(equation.replace(" ", ""), *xs, optimize=True))
