"""Graph plumbing: Constant, Identity, Cast/CastLike and inference-mode Dropout.

Casts to float8 follow the spec's `saturate` rule (see quant.to_float8); casts from float to
integer truncate toward zero, as C does.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import onnx_ir as ir

from edgeexport.ir import np_dtype
from edgeexport.runtimes.reference.kernels import (
    ALL, BFLOAT16, FLOAT8, STANDARD, Unsupported, kernel,
)
from edgeexport.runtimes.reference.kernels.quant import cast_to

_CASTABLE = STANDARD | BFLOAT16 | FLOAT8


@kernel("Constant", dtypes={"T": ALL})
def constant(*, value: np.ndarray | None = None, value_float: float | None = None,
             value_floats: list[float] | None = None, value_int: int | None = None,
             value_ints: list[int] | None = None) -> np.ndarray:
    if value is not None:
        return value
    if value_float is not None:
        return np.array(value_float, dtype=np.float32)
    if value_floats is not None:
        return np.array(value_floats, dtype=np.float32)
    if value_int is not None:
        return np.array(value_int, dtype=np.int64)
    if value_ints is not None:
        return np.array(value_ints, dtype=np.int64)
    raise ValueError("Constant has none of value, value_float(s), value_int(s)")


@kernel("Identity", dtypes={"V": ALL})
def identity(x: np.ndarray) -> np.ndarray:
    return x


@kernel("Cast", dtypes={"T1": _CASTABLE, "T2": _CASTABLE})
def cast(x: np.ndarray, *, saturate: int = 1, to: int = 0) -> np.ndarray:
    return cast_to(x, np_dtype(ir.DataType(to)), saturate=bool(saturate))


@kernel("CastLike", dtypes={"T1": _CASTABLE, "T2": _CASTABLE})
def cast_like(x: np.ndarray, like: np.ndarray, *, saturate: int = 1) -> np.ndarray:
    return cast_to(x, like.dtype, saturate=bool(saturate))


def _dropout_unsupported(attrs: Mapping[str, Any],
                         inputs: Sequence[np.ndarray | None]) -> str | None:
    training = inputs[2] if len(inputs) > 2 else None
    ratio = inputs[1] if len(inputs) > 1 else None
    if training is not None and bool(training) and (ratio is None or float(ratio) != 0.0):
        return "training-mode Dropout is random; the reference runs inference only"
    return None


@kernel("Dropout", dtypes={"T": STANDARD | BFLOAT16, "T1": STANDARD},
        unsupported=_dropout_unsupported)
def dropout(data: np.ndarray, ratio: np.ndarray | None = None,
            training_mode: np.ndarray | None = None, *, seed: int | None = None,
            n_outputs: int = 1) -> tuple[np.ndarray, ...]:
    # seed only matters in training mode, which the reference refuses
    reason = _dropout_unsupported({}, [data, ratio, training_mode])
    if reason:
        raise Unsupported(reason)
    if n_outputs == 1:
        return (data,)
    return data, np.ones(data.shape, dtype=np.bool_)
