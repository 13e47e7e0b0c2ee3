"""Structural check of an ncnn `.param/.bin` pair before ncnn loads it: magic, layer and blob
counts, blob references, parameter syntax, input sizes, and the bytes each weight-reading layer
takes from the .bin (read the way ncnn's ModelBin reads them) against the file's length.
"""

from __future__ import annotations

import struct
from pathlib import Path

from edgeexport.delegates.vulkan.ncnn_format import FLAG_FP16, MAGIC
from edgeexport.errors import UsageError

FLAG_INT8, FLAG_RAW_FP32 = 0x000D4B38, 0x0002C056
#: blob elements above this are refused (ncnn sizes are int, and a fuzzed 1e9 allocates GBs)
MAX_ELEMENTS = 2**28
#: layers that read nothing from the .bin (the weight walk goes on past them)
NO_WEIGHTS = frozenset(
    "Input Pooling Pooling1D Pooling3D ReLU Sigmoid TanH Clip Split Concat Reshape Permute "
    "Flatten Eltwise BinaryOp UnaryOp Softmax Interp Crop Slice Padding Reduction Dropout "
    "HardSigmoid HardSwish Swish GELU Mish ELU Noop ExpandDims Squeeze MatMul ShuffleChannel "
    "PixelShuffle Erf CumulativeSum Power Exp Log Threshold ArgMax AbsVal BNLL Tile Bias Packing "
    "Cast Flip Fold Unfold Einsum CopyTo Shrink Diag GLU Selu Spectrogram GridSample".split())
_FIX = "export the model again (edgeexport convert --target vulkan)"


class _Bad(Exception):
    pass


def verify(param: Path) -> list[str]:
    """Raise UsageError naming the .param or .bin beside it when the pair is not sound; else the
    names of the Input layers' blobs."""
    param = Path(param)
    weights = param.with_suffix(".bin")
    if not weights.exists():
        raise UsageError(f"{weights}: the ncnn weights are missing beside {param.name}; "
                         "keep the .param and .bin of one export together")
    try:
        layers = _parse(param.read_bytes())
    except _Bad as exc:
        raise UsageError(f"{param}: corrupt ncnn .param: {exc}; {_FIX}") from None
    try:
        _walk_weights(layers, weights.stat().st_size, weights)
    except _Bad as exc:
        raise UsageError(f"{weights}: {exc}; the .bin is truncated or belongs to another "
                         f".param: {_FIX}") from None
    return [blob for kind, _, params, blob in layers if kind == "Input"]


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _Bad(f"{what} '{text[:40]}' is not an integer") from None


def _parse(raw: bytes) -> list[tuple[str, str, dict[int, object], str]]:
    """(type, name, params, first top blob) per layer, after the checks."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise _Bad("not a text file (non-ASCII bytes)") from None
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != [str(MAGIC)]:
        raise _Bad(f"the first line must be the magic {MAGIC}")
    if len(lines) < 2 or len(lines[1]) != 2:
        raise _Bad("the second line must be 'layer_count blob_count'")
    n_layers, n_blobs = _int(lines[1][0], "layer count"), _int(lines[1][1], "blob count")
    if n_layers <= 0 or n_blobs <= 0 or n_layers != len(lines) - 2:
        raise _Bad(f"the header says {n_layers} layers and {n_blobs} blobs, the file has "
                   f"{len(lines) - 2} layer lines")
    produced: set[str] = set()
    layers = []
    for row, tokens in enumerate(lines[2:], start=3):
        if len(tokens) < 4:
            raise _Bad(f"line {row}: a layer needs 'type name bottom_count top_count'")
        kind, name = tokens[0], tokens[1]
        n_in, n_out = _int(tokens[2], f"line {row} bottom count"), _int(tokens[3],
                                                                         f"line {row} top count")
        if n_in < 0 or n_out < 0 or 4 + n_in + n_out > len(tokens):
            raise _Bad(f"line {row} ({name}): bottom count {n_in} / top count {n_out} do not "
                       "match the names that follow")
        bottoms = tokens[4:4 + n_in]
        for b in bottoms:
            if b not in produced:
                raise _Bad(f"line {row} ({name}): input blob '{b}' is not produced by an earlier "
                           "layer")
        produced.update(tokens[4 + n_in:4 + n_in + n_out])
        params = _params(tokens[4 + n_in + n_out:], row)
        if kind == "Input":
            dims = [v for k, v in params.items() if k in (0, 1, 2, 11) and isinstance(v, int)]
            elements = 1
            for d in dims:
                if d < 0:
                    raise _Bad(f"line {row}: Input '{name}' has dimension {d}")
                elements *= max(d, 1)
            if elements > MAX_ELEMENTS:
                raise _Bad(f"line {row}: Input '{name}' has {elements} elements, more than "
                           f"{MAX_ELEMENTS}")
        tops = tokens[4 + n_in:4 + n_in + n_out]
        layers.append((kind, name, params, tops[0] if tops else ""))
    if len(produced) > n_blobs:
        raise _Bad(f"the layers produce {len(produced)} blobs, the header says {n_blobs}")
    return layers


def _params(tokens: list[str], row: int) -> dict[int, object]:
    params: dict[int, object] = {}
    for tok in tokens:
        key, eq, value = tok.partition("=")
        k = _int(key, f"line {row} parameter key")
        if not eq or not (0 <= k <= 31 or -23300 - 31 <= k <= -23300):
            raise _Bad(f"line {row}: parameter '{tok[:40]}' is not key=value with a key ncnn "
                       "knows")
        if k <= -23300:  # array: count,v1,v2,...
            items = value.split(",")
            if _int(items[0], f"line {row} array length") != len(items) - 1:
                raise _Bad(f"line {row}: array parameter '{tok[:40]}' has the wrong length")
            params[-23300 - k] = items[1:]
            continue
        try:
            params[k] = int(value) if "." not in value and "e" not in value.lower() \
                else float(value)
        except ValueError:
            raise _Bad(f"line {row}: parameter value '{value[:40]}' is not a number") from None
    return params


def _walk_weights(layers: list[tuple[str, str, dict[int, object], str]], size: int,
                  weights: Path) -> None:
    """Follow ncnn's reads through the .bin for the layers whose reads are known; stop at the
    first layer of another kind (its reads cannot be told from its params)."""
    with open(weights, "rb") as f:
        pos = 0

        def need(n: int, name: str) -> None:
            if n < 0 or pos + n > size:
                raise _Bad(f"layer '{name}' reads up to byte {pos + n}, the file has {size} bytes")

        def raw(count: int, name: str) -> None:  # ncnn's type-1 read: float32 values
            nonlocal pos
            need(4 * count, name)
            pos += 4 * count

        def auto(count: int, name: str) -> None:  # type-0 read: a 4-byte tag says the storage
            nonlocal pos
            need(4, name)
            f.seek(pos)
            tag_bytes = f.read(4)
            tag = struct.unpack("<I", tag_bytes)[0]
            pos += 4
            if tag == FLAG_FP16:
                n = (2 * count + 3) // 4 * 4
            elif tag == FLAG_INT8:
                n = (count + 3) // 4 * 4
            elif tag == FLAG_RAW_FP32 or tag == 0:
                n = 4 * count
            else:  # a 256-entry codebook, then one uint8 index per value
                n = 256 * 4 + (count + 3) // 4 * 4
            need(n, name)
            pos += n

        for kind, name, p, _ in layers:
            def get(k: int, default: int = 0) -> int:
                v = p.get(k, default)
                if not isinstance(v, int) or v < 0 or v > MAX_ELEMENTS:
                    raise _Bad(f"layer '{name}' ({kind}) has parameter {k}={v}")
                return v

            if kind in NO_WEIGHTS:
                continue
            if kind in ("Convolution", "ConvolutionDepthWise", "Deconvolution",
                        "DeconvolutionDepthWise", "Convolution1D", "InnerProduct"):
                if p.get(8, 0):  # int8 scales follow: not walked
                    return
                size_key = 2 if kind == "InnerProduct" else 6
                bias = p.get(1 if kind == "InnerProduct" else 5, 0)
                auto(get(size_key), name)
                if bias:
                    raw(get(0), name)
            elif kind == "MemoryData":
                n = 1
                for k in (0, 1, 11, 2):
                    n *= max(get(k), 1)
                raw(n, name)
            elif kind == "BatchNorm":
                raw(4 * get(0), name)
            elif kind == "Scale":
                if p.get(0) == -233:
                    continue
                raw(get(0) * (2 if p.get(1, 0) else 1), name)
            elif kind == "Embed":
                auto(get(3), name)
                if p.get(2, 0):
                    raw(get(0), name)
            elif kind == "LayerNorm":
                if p.get(2, 1):
                    raw(2 * get(0), name)
            elif kind == "PReLU":
                raw(get(0), name)
            else:
                return
