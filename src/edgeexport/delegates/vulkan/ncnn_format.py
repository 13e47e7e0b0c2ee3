"""ncnn's file formats: the text `.param` (magic 7767517, one line per layer) and the `.bin` of
concatenated weight buffers (4-byte aligned; fp16 buffers tagged 0x01306B47, int8 0x000D4B38).

This is the only module that knows the byte layout; the op emitters hand it layers and arrays.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

import numpy as np

MAGIC = 7767517
#: tag in front of a weight buffer that ncnn reads with "auto" storage type: 0 = float32
FLAG_FP32 = 0
FLAG_FP16 = 0x01306B47
FLAG_INT8 = 0x000D4B38

#: ncnn reads each value into a 16-byte buffer: 9 significant digits (exact for float32) fit
_FLOAT_FMT = "{:.8e}"


@dataclass
class Layer:
    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, object] = field(default_factory=dict)
    #: weight buffers in the order the layer's load_model reads them: (array, auto_storage)
    weights: list[tuple[np.ndarray, bool]] = field(default_factory=list)


_NAME_OK = re.compile(r"[^A-Za-z0-9_.:/\-]")


def sanitize(name: str) -> str:
    """ncnn names are whitespace-separated tokens of at most 255 characters."""
    name = _NAME_OK.sub("_", name) or "_"
    return name[:250]


def _format_value(value: object) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return _format_float(float(value))
    if isinstance(value, str):
        return value
    raise TypeError(f"unsupported ncnn param value {value!r}")


def _format_float(v: float) -> str:
    if np.isinf(v):
        # ncnn parses with strtod-like code; the largest finite float keeps clamps meaningful
        v = float(np.finfo(np.float32).max) * (1 if v > 0 else -1)
    return _FLOAT_FMT.format(v)


def format_params(params: dict[int, object]) -> str:
    parts = []
    for key in sorted(params):
        value = params[key]
        if isinstance(value, (list, tuple)):
            if not 0 <= key <= 19:
                raise ValueError(f"array param key {key} out of range")
            items = list(value)
            is_float = any(isinstance(x, (float, np.floating)) for x in items)
            text = ",".join(_format_float(float(x)) if is_float else str(int(x)) for x in items)
            # -23300-key=count,values... is understood by every ncnn version
            parts.append(f"{-23300 - key}={len(items)}" + (f",{text}" if items else ""))
        else:
            parts.append(f"{key}={_format_value(value)}")
    return " ".join(parts)


def param_text(layers: list[Layer]) -> str:
    """The whole .param file. Blob count is the number of distinct blob names."""
    blobs: set[str] = set()
    for layer in layers:
        blobs.update(layer.inputs)
        blobs.update(layer.outputs)
    lines = [str(MAGIC), f"{len(layers)} {len(blobs)}"]
    for layer in layers:
        head = (f"{layer.type:<24} {layer.name:<24} {len(layer.inputs)} {len(layer.outputs)} "
                + " ".join(layer.inputs + layer.outputs))
        params = format_params(layer.params)
        lines.append(head.rstrip() + (" " + params if params else ""))
    return "\n".join(lines) + "\n"


def weight_bytes(layers: list[Layer], fp16: bool) -> bytes:
    """The .bin: every layer's buffers in layer order. `auto` buffers carry a storage tag and are
    fp16 when asked; the others (biases, norms, MemoryData) are raw float32 as ncnn reads them."""
    out = bytearray()
    for layer in layers:
        for array, auto in layer.weights:
            if auto and array.dtype == np.int8:  # int8 layers' weights (int8_scale_term)
                out += struct.pack("<I", FLAG_INT8) + np.ascontiguousarray(array).tobytes()
                out += b"\0" * (-len(out) % 4)
                continue
            data = np.ascontiguousarray(array, dtype=np.float32).ravel()
            if auto:
                if fp16:
                    out += struct.pack("<I", FLAG_FP16)
                    out += data.astype("<f2").tobytes()
                else:
                    out += struct.pack("<I", FLAG_FP32)
                    out += data.astype("<f4").tobytes()
            else:
                out += data.astype("<f4").tobytes()
            out += b"\0" * (-len(out) % 4)
    return bytes(out)


def ncnn_shape_params(shape: tuple[int, ...]) -> dict[int, object]:
    """Input/MemoryData/Reshape keys for an outermost-first ncnn shape: w=0, h=1, d=11, c=2."""
    keys = {1: [0], 2: [1, 0], 3: [2, 1, 0], 4: [2, 11, 1, 0]}.get(len(shape))
    if keys is None:
        raise ValueError(f"ncnn blobs have 1 to 4 dimensions, not {len(shape)}")
    return {k: int(d) for k, d in zip(keys, shape)}
