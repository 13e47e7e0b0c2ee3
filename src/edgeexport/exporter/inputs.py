"""Input specifications: names, shapes and dtypes of a model's inputs, parsed from the command
line (`--input-shape [name=]1,3,224,224[:dtype]`) or read from a file that carries them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from edgeexport.errors import UsageError

_DTYPES = {
    "float32": np.float32, "float": np.float32, "f32": np.float32, "float16": np.float16,
    "f16": np.float16, "int64": np.int64, "long": np.int64, "i64": np.int64, "int32": np.int32,
    "i32": np.int32, "uint8": np.uint8, "u8": np.uint8, "int8": np.int8, "bool": np.bool_,
}
#: no dimension of an edge model's input comes near this; a typo like 2**40 must not allocate
MAX_DIM = 2**31 - 1
_SPEC = re.compile(r"^(?:(?P<name>[A-Za-z_][\w.\-]*)=)?(?P<shape>[0-9?]+(?:[x,][0-9?]+)*)?"
                   r"(?::(?P<dtype>\w+))?$")


@dataclass(frozen=True)
class InputSpec:
    """One model input. `shape` holds ints; a None entry is a symbolic dimension."""

    name: str | None
    shape: tuple[int | None, ...]
    dtype: np.dtype = np.dtype(np.float32)

    def describe(self) -> str:
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name or '?'}=[{dims}]:{np.dtype(self.dtype).name}"


def parse_input_spec(text: str) -> InputSpec:
    """Parse `[name=]d0,d1,...[:dtype]` (dims may also be separated by 'x')."""
    m = _SPEC.match(text.strip())
    if not m or not m.group("shape"):
        raise UsageError(f"--input-shape '{text}' is not of the form [name=]1,3,224,224[:dtype] "
                         f"(dtype one of {', '.join(sorted(set(_DTYPES)))})")
    dims = tuple(None if d == "?" else int(d) for d in re.split(r"[x,]", m.group("shape")))
    if any(d is not None and d <= 0 for d in dims):
        raise UsageError(f"--input-shape '{text}': every dimension must be a positive integer")
    if any(d is not None and d > MAX_DIM for d in dims):
        raise UsageError(f"--input-shape '{text}': dimension {max(d or 0 for d in dims)} is "
                         f"larger than {MAX_DIM}; check the dims")
    dtype_name = (m.group("dtype") or "float32").lower()
    if dtype_name not in _DTYPES:
        raise UsageError(f"--input-shape '{text}': unknown dtype '{dtype_name}' "
                         f"(use one of {', '.join(sorted(set(_DTYPES)))})")
    return InputSpec(m.group("name"), dims, np.dtype(_DTYPES[dtype_name]))


def sample_inputs(specs: list[InputSpec], *, seed: int = 0, int_high: dict[str, int] | None = None,
                  batch: int | None = None) -> list[np.ndarray]:
    """Deterministic sample inputs: standard normal floats; integers in [0, high) where `int_high`
    knows the range of an input (e.g. an embedding's vocabulary), else {0, 1}."""
    rng = np.random.default_rng(seed)
    arrays = []
    for spec in specs:
        shape = tuple((batch or 1) if d is None else d for d in spec.shape)
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            arrays.append(rng.standard_normal(shape).astype(dtype))
        elif dtype.kind == "b":
            arrays.append(rng.integers(0, 2, shape).astype(bool))
        else:
            high = (int_high or {}).get(spec.name or "", 2)
            arrays.append(rng.integers(0, high, shape).astype(dtype))
    return arrays

