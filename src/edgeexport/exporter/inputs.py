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


def split_samples(data: dict[str, np.ndarray], specs: list[InputSpec],
                  source: str) -> list[dict[str, np.ndarray]]:
    """Arrays by input name -> one feed dict per sample.

    Samples are stacked on a new leading axis (array rank = input rank + 1), or, when the model's
    batch is 1, along the batch axis (array rank = input rank). Shapes and dtypes are checked.
    """
    if not data:
        raise UsageError(f"{source}: holds no arrays")
    names = [s.name for s in specs]
    if len(specs) == 1 and list(data) != names and len(data) == 1:
        data = {names[0]: next(iter(data.values()))}  # a single-input model: any array name
    missing = [n for n in names if n not in data]
    if missing:
        raise UsageError(f"{source}: no array for input(s) {', '.join(map(str, missing))} "
                         f"(it has {', '.join(data)}); name arrays after the model's inputs")
    per_input, counts = {}, set()
    for spec in specs:
        arr = np.asarray(data[spec.name])
        rank = len(spec.shape)
        if arr.ndim == rank + 1:
            samples = list(arr)
        elif arr.ndim == rank and rank and spec.shape[0] in (1, None):
            samples = [arr[i:i + 1] for i in range(arr.shape[0])]
        else:
            raise UsageError(f"{source}: array '{spec.name}' has shape {list(arr.shape)}; input "
                             f"{spec.describe()} wants samples of rank {rank} stacked on a new "
                             "leading axis")
        for s in samples:
            bad = [i for i, (d, want) in enumerate(zip(s.shape, spec.shape))
                   if want is not None and d != want]
            if bad:
                raise UsageError(f"{source}: sample shape {list(s.shape)} of '{spec.name}' does "
                                 f"not match the input {spec.describe()}")
        want_kind = np.dtype(spec.dtype).kind
        if arr.dtype.kind != want_kind and not (want_kind == "f" and arr.dtype.kind in "iu"):
            raise UsageError(f"{source}: array '{spec.name}' is {arr.dtype.name}, the input "
                             f"wants {np.dtype(spec.dtype).name}")
        per_input[spec.name] = [np.ascontiguousarray(s, dtype=spec.dtype) for s in samples]
        counts.add(len(samples))
    if len(counts) != 1:
        raise UsageError(f"{source}: inputs have different sample counts {sorted(counts)}")
    n = counts.pop()
    if n == 0:
        raise UsageError(f"{source}: holds zero samples")
    return [{name: per_input[name][i] for name in names} for i in range(n)]
