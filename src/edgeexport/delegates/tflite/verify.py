"""Structural check of a .tflite file before LiteRT sees it: the flatbuffer is walked with the
schema module's accessors, bounds-checked, so a corrupt file is a clear error instead of a crash.

LiteRT trusts tensor, buffer and operator-code indices (XNNPACK indexes its tensor table with
them unchecked); every index, count and buffer size is checked here against the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert import schema_py_generated as fb

from edgeexport.errors import UsageError

#: TensorType -> bytes per element (types not listed are not size-checked: strings, int4, ...)
_ITEMSIZE = {fb.TensorType.FLOAT32: 4, fb.TensorType.FLOAT16: 2, fb.TensorType.INT32: 4,
             fb.TensorType.UINT8: 1, fb.TensorType.INT64: 8, fb.TensorType.BOOL: 1,
             fb.TensorType.INT16: 2, fb.TensorType.INT8: 1, fb.TensorType.FLOAT64: 8,
             fb.TensorType.UINT32: 4, fb.TensorType.UINT16: 2, fb.TensorType.UINT64: 8}
_NP = {fb.TensorType.FLOAT32: "float32", fb.TensorType.FLOAT16: "float16",
       fb.TensorType.INT32: "int32", fb.TensorType.UINT8: "uint8", fb.TensorType.INT64: "int64",
       fb.TensorType.BOOL: "bool", fb.TensorType.INT16: "int16", fb.TensorType.INT8: "int8"}
_TYPES = {v for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
_BUILTINS = {v for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
#: tensors above this many elements are refused (LiteRT's sizes are int32 byte counts)
MAX_ELEMENTS = 2**31 - 1


class _Bad(Exception):
    pass


@dataclass
class TfliteInput:
    name: str
    shape: tuple[int, ...]
    dtype: str | None


def verify(path: Path) -> list[TfliteInput]:
    """Raise UsageError naming PATH when it is not a sound .tflite; else the main subgraph's
    inputs (name, shape, numpy dtype name)."""
    path = Path(path)
    data = path.read_bytes()
    fix = "convert the model again (edgeexport convert --target rpi or nnapi)"
    if not data:
        raise UsageError(f"{path}: the file is empty; {fix}")
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise UsageError(f"{path}: not a TFLite flatbuffer (no TFL3 identifier); {fix}")
    try:
        return _walk(data)
    except _Bad as exc:
        raise UsageError(f"{path}: corrupt .tflite: {exc}; {fix}") from None
    except (struct.error, IndexError, ValueError, TypeError, UnicodeDecodeError,
            OverflowError) as exc:
        raise UsageError(f"{path}: corrupt .tflite (the flatbuffer does not parse: "
                         f"{type(exc).__name__}); {fix}") from None


def _count(n: int, what: str, size: int, limit: int) -> int:
    """A vector length: each element takes at least `size` bytes of the file."""
    if n < 0 or n * size > limit:
        raise _Bad(f"{n} {what} cannot fit in a {limit}-byte file")
    return n


def _walk(data: bytes) -> list[TfliteInput]:
    size = len(data)
    model = fb.Model.GetRootAs(data, 0)
    n_buffers = _count(model.BuffersLength(), "buffers", 4, size)
    n_codes = _count(model.OperatorCodesLength(), "operator codes", 4, size)
    n_subgraphs = _count(model.SubgraphsLength(), "subgraphs", 4, size)
    if n_subgraphs == 0:
        raise _Bad("no subgraph")
    lengths = [_buffer_length(model.Buffers(i), i, size) for i in range(n_buffers)]
    for i in range(n_codes):
        oc = model.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if code not in _BUILTINS:
            raise _Bad(f"operator code {i} names builtin op {code}, unknown to this LiteRT")
        if code == fb.BuiltinOperator.CUSTOM:
            name = (oc.CustomCode() or b"?").decode(errors="replace")
            raise _Bad(f"custom op '{name}' (operator code {i}) has no LiteRT kernel here")
    inputs: list[TfliteInput] = []
    for s in range(n_subgraphs):
        sub = model.Subgraphs(s)
        n_tensors = _count(sub.TensorsLength(), "tensors", 4, size)
        tensors = [_tensor(sub.Tensors(t), t, n_buffers, lengths, size) for t in range(n_tensors)]

        def index(t: int, what: str, optional: bool = False) -> int:
            if not (0 <= t < n_tensors or (optional and t == -1)):
                raise _Bad(f"{what} refers to tensor {t}; subgraph {s} has {n_tensors} tensors")
            return t

        for i in range(_count(sub.InputsLength(), "inputs", 4, size)):
            index(sub.Inputs(i), f"subgraph {s} input {i}")
        for i in range(_count(sub.OutputsLength(), "outputs", 4, size)):
            index(sub.Outputs(i), f"subgraph {s} output {i}")
        for k in range(_count(sub.OperatorsLength(), "operators", 4, size)):
            op = sub.Operators(k)
            if not 0 <= op.OpcodeIndex() < n_codes:
                raise _Bad(f"operator {k} uses operator code {op.OpcodeIndex()} of {n_codes}")
            for i in range(_count(op.InputsLength(), "operator inputs", 4, size)):
                index(op.Inputs(i), f"operator {k} input {i}", optional=True)
            for i in range(_count(op.OutputsLength(), "operator outputs", 4, size)):
                index(op.Outputs(i), f"operator {k} output {i}")
            for i in range(_count(op.IntermediatesLength(), "intermediates", 4, size)):
                index(op.Intermediates(i), f"operator {k} intermediate {i}")
        if s == 0:
            inputs = [tensors[sub.Inputs(i)] for i in range(sub.InputsLength())]
    for i in range(_count(model.SignatureDefsLength(), "signatures", 4, size)):
        if not 0 <= model.SignatureDefs(i).SubgraphIndex() < n_subgraphs:
            raise _Bad(f"signature {i} names subgraph {model.SignatureDefs(i).SubgraphIndex()}")
    for i in range(_count(model.MetadataLength(), "metadata entries", 4, size)):
        if not 0 <= model.Metadata(i).Buffer() < n_buffers:
            raise _Bad(f"metadata {i} refers to buffer {model.Metadata(i).Buffer()} of "
                       f"{n_buffers}")
    return inputs


def _buffer_length(buf: Any, i: int, size: int) -> int:
    if buf is None:
        raise _Bad(f"buffer {i} is missing")
    if buf.Offset() > 1:  # data stored after the flatbuffer (models over 2 GB)
        if buf.Offset() + buf.Size() > size:
            raise _Bad(f"buffer {i} ends at byte {buf.Offset() + buf.Size()}, past the file's "
                       f"{size} bytes")
        return buf.Size()
    n = buf.DataLength()
    if n and len(buf.DataAsNumpy()) != n:  # numpy refuses a range past the end of the file
        raise _Bad(f"buffer {i} runs past the end of the file")
    return n


def _tensor(t: Any, i: int, n_buffers: int, lengths: list[int], size: int) -> TfliteInput:
    name = (t.Name() or b"").decode(errors="replace")
    dims = [int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else []
    _count(len(dims), "dims", 4, size)
    if any(d < 0 for d in dims):
        raise _Bad(f"tensor {i} '{name}' has shape {dims}: dimensions must be >= 0")
    elements = int(np.prod(dims, dtype=object)) if dims else 1
    if elements > MAX_ELEMENTS:
        raise _Bad(f"tensor {i} '{name}' has {elements} elements (shape {dims}), more than "
                   f"{MAX_ELEMENTS}")
    if t.Type() not in _TYPES:
        raise _Bad(f"tensor {i} '{name}' has unknown type {t.Type()}")
    if not 0 <= t.Buffer() < n_buffers:
        raise _Bad(f"tensor {i} '{name}' refers to buffer {t.Buffer()}; the model has "
                   f"{n_buffers} buffers")
    have = lengths[t.Buffer()]
    need = elements * _ITEMSIZE.get(t.Type(), 0)
    if have and t.Sparsity() is None and have < need:
        raise _Bad(f"tensor {i} '{name}' {dims} needs {need} bytes but its buffer holds {have} "
                   "bytes")
    return TfliteInput(name, tuple(dims), _NP.get(t.Type()))
