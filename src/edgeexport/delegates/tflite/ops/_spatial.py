"""Shared geometry of convolution and pooling: ONNX explicit pads -> TFLite SAME/VALID (+ PAD).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import onnx_ir as ir
from ai_edge_litert import schema_py_generated as fb

from edgeexport.delegates.tflite import layout as L
from edgeexport.delegates.tflite.context import EmitContext


def ints(node: ir.Node, name: str, default: Sequence[int]) -> list[int]:
    attr = node.attributes.get(name)
    return list(attr.as_ints()) if attr is not None else list(default)


def geometry(node: ir.Node, in_hw: Sequence[int], kernel: Sequence[int]) -> dict[str, Any]:
    """strides, dilations and (begin, end) pads per spatial axis, with auto_pad resolved and the
    extra end padding that ceil_mode needs."""
    n = len(in_hw)
    strides = ints(node, "strides", [1] * n)
    dil = ints(node, "dilations", [1] * n)
    pads = ints(node, "pads", [0] * (2 * n))
    auto = node.attributes.get("auto_pad")
    auto = auto.as_string() if auto is not None else "NOTSET"
    ceil_mode = bool(node.attributes["ceil_mode"].as_int()) if "ceil_mode" in node.attributes else False
    begin, end = pads[:n], pads[n:]
    for i in range(n):
        eff = (kernel[i] - 1) * dil[i] + 1
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            out = math.ceil(in_hw[i] / strides[i])
            total = max((out - 1) * strides[i] + eff - in_hw[i], 0)
            small, big = total // 2, total - total // 2
            begin[i], end[i] = (small, big) if auto == "SAME_UPPER" else (big, small)
        elif auto == "VALID":
            begin[i] = end[i] = 0
        if ceil_mode:
            out = math.ceil((in_hw[i] + begin[i] + end[i] - eff) / strides[i]) + 1
            if (out - 1) * strides[i] >= in_hw[i] + begin[i]:
                out -= 1  # the last window must start inside the input (ONNX/PyTorch rule)
            need = (out - 1) * strides[i] + eff - (in_hw[i] + begin[i] + end[i])
            end[i] += max(need, 0)
    return {"strides": strides, "dilations": dil, "begin": begin, "end": end}


def tflite_padding(in_hw: Sequence[int], kernel: Sequence[int], g: dict[str, Any]) -> str | None:
    """'VALID' or 'SAME' when TFLite's own padding equals the ONNX pads, else None (needs PAD)."""
    if not any(g["begin"]) and not any(g["end"]):
        return "VALID"
    for i, size in enumerate(in_hw):
        s, eff = g["strides"][i], (kernel[i] - 1) * g["dilations"][i] + 1
        out = math.ceil(size / s)
        total = max((out - 1) * s + eff - size, 0)
        if (g["begin"][i], g["end"][i]) != (total // 2, total - total // 2):
            return None
    return "SAME"


def pad_nhwc(ctx: EmitContext, x: int, g: dict[str, Any], name: str,
             value: float | None = None) -> int:
    """An explicit PAD (PADV2 with `value`) of an NHWC tensor by the geometry's pads."""
    shape = ctx.fb.shape(x)
    n = len(shape) - 2
    pads = [[0, 0]] + [[g["begin"][i], g["end"][i]] for i in range(n)] + [[0, 0]]
    out_shape = [d + a + b for d, (a, b) in zip(shape, pads)]
    q = ctx.fb.tensors[x].quantization
    qd = None
    if q is not None and q.scale:
        qd = {"scale": q.scale, "zero_point": q.zeroPoint}
    out = ctx.temp(name + "/pad", out_shape, ctx.fb.dtype(x), quant=qd)
    padt = ctx.const_tensor(np.asarray(pads, np.int32), f"pads{np.asarray(pads).ravel()}",
                            weight=False)
    if value is None:
        ctx.fb.op("PAD", [x, padt], [out], fb.PadOptionsT())
    else:
        dt = ctx.fb.dtype(x)
        if qd is not None:  # the padding value in the quantized domain
            v = np.clip(np.round(value / qd["scale"][0]) + qd["zero_point"][0],
                        np.iinfo(dt).min, np.iinfo(dt).max)
            cval = ctx.const_tensor(np.asarray([v], dt), f"padval{v}{dt}", weight=False,
                                    quant=qd)
        else:
            cval = ctx.const_tensor(np.asarray([value], dt), f"padval{value}", weight=False)
        ctx.fb.op("PADV2", [x, padt, cval], [out], fb.PadV2OptionsT())
    return out


def nhwc(rank: int) -> L.Perm:
    return L.channels_last(rank)
