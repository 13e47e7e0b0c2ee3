"""Quantized IR for ncnn: constants behind Cast (fp16 scheme) and DequantizeLinear (int8 weights)
folded to float, and the int8 parameters ncnn's Convolution/InnerProduct take, read from QDQ.

ncnn's int8 layers quantize their float input symmetrically (q = round(x * s), |q| <= 127) and
hold int8 weights with one scale per output channel (q = round(w * s): the reciprocal of ONNX's
scale). The IR's activations are asymmetric per-tensor, range [scale * (-128 - zp),
scale * (127 - zp)]: a two-sided range is widened to be symmetric; a one-sided one (after ReLU)
is centred by subtracting its midpoint first (a BinaryOp, the bias absorbs it), so it keeps its
255 levels instead of losing one bit (MobileNetV2 on 8 photos: min cosine 0.9885 -> 0.9960).
Every other activation Q/DQ pair runs in float: ncnn has no int8 elementwise layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport import ir as eir

_FLOATS = (ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.DOUBLE)


def _qparams(node: ir.Node) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(scale, zero point, axis) of a Q/DQ node with constant parameters, else None."""
    scale = eir.initializer_array(node.inputs[1]) if len(node.inputs) > 1 else None
    if scale is None:
        return None
    zp = (eir.initializer_array(node.inputs[2])
          if len(node.inputs) > 2 and node.inputs[2] is not None else np.zeros_like(scale))
    if zp is None:
        return None
    a = node.attributes.get("axis")
    return (np.asarray(scale, np.float64), np.asarray(zp, np.int64),
            a.as_int() if a is not None else 1)


def folded(value: ir.Value) -> np.ndarray | None:
    """The constant behind a value: an initializer or Constant, a Cast of one to float (fp16
    weights), or a DequantizeLinear of one (int8 weights), dequantized."""
    arr = eir.initializer_array(value)
    if arr is not None:
        return arr
    p = value.producer()
    if p is None:
        return None
    if p.op_type == "Cast" and value.dtype in _FLOATS:
        src = folded(p.inputs[0])
        return None if src is None else src.astype(np.float32)
    if p.op_type == "DequantizeLinear":
        q, params = folded(p.inputs[0]), _qparams(p)
        if q is None or params is None:
            return None
        scale, zp, axis = params
        if scale.size > 1:
            shape = [1] * q.ndim
            shape[axis % q.ndim] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        return ((q.astype(np.float64) - zp) * scale).astype(np.float32)
    return None


@dataclass(frozen=True)
class Int8Weight:
    """int8 weights with ncnn's per-output-channel scales (q = round(w * scale))."""

    data: np.ndarray
    scales: np.ndarray


def int8_weight(value: ir.Value, out_axis: int) -> Int8Weight | None:
    """The int8 form of a DequantizeLinear of a symmetric int8 constant quantized per tensor or
    along `out_axis` (the output channels), else None (the layer then stays float)."""
    p = value.producer()
    if p is None or p.op_type != "DequantizeLinear":
        return None
    q, params = eir.initializer_array(p.inputs[0]), _qparams(p)
    if q is None or params is None or q.dtype != np.int8 or np.any(params[1] != 0):
        return None
    scale, _, axis = params
    n = q.shape[out_axis]
    if scale.size == 1:
        scale = np.full(n, float(scale.ravel()[0]))
    elif axis % q.ndim != out_axis % q.ndim or scale.size != n:
        return None
    if np.any(scale <= 0):
        return None
    return Int8Weight(q, (1.0 / scale.ravel()).astype(np.float32))


def input_scale(value: ir.Value) -> tuple[float, float] | None:
    """(ncnn's symmetric input scale, shift) for an activation read through a per-tensor int8
    DequantizeLinear, else None. A range on one side of zero (after ReLU) is centred first:
    the layer reads x - shift, so its 255 levels span the range, not half of it; a two-sided
    range is widened to the largest magnitude it holds (shift 0)."""
    p = value.producer()
    if p is None or p.op_type != "DequantizeLinear" or folded(p.inputs[0]) is not None:
        return None
    params = _qparams(p)
    if params is None or params[0].size != 1 or p.inputs[0].dtype != ir.DataType.INT8:
        return None
    scale, zp = float(params[0].ravel()[0]), int(params[1].ravel()[0])
    lo, hi = scale * (-128 - zp), scale * (127 - zp)
    shift = (lo + hi) / 2 if lo >= 0 or hi <= 0 else 0.0
    amax = max(abs(lo - shift), abs(hi - shift))
    return (127.0 / amax, shift) if amax > 0 else None


def why_not_fake_quant(node: ir.Node) -> str | None:
    """Q/DQ of activations run as float in ncnn: only per-tensor int8 pairs are taken (a
    per-axis DequantizeLinear of computed values belongs to an int8 table lookup)."""
    params = _qparams(node)
    if params is None:
        return "quantization parameters must be constant"
    if node.op_type == "DequantizeLinear" and folded(node.inputs[0]) is not None:
        return None  # a quantized weight: folded into its reader
    if params[0].size != 1:
        p = node.inputs[0].producer()
        if p is not None and p.op_type == "Gather" and table_scales(p) is not None:
            return None  # an int8 embedding table: Embed reads it dequantized
        return ("per-axis dequantization of computed int8 values is mapped only after a "
                "Gather of an int8 table with one scale per column")
    return None


def table_scales(gather: ir.Node) -> np.ndarray | None:
    """The per-column scales when a Gather reads a constant int8 table whose gathered rows go
    only through a DequantizeLinear along the last axis (quantize.embedding's form): ncnn's
    Embed then holds the table dequantized (stored fp16 or fp32 like any weight)."""
    table = eir.initializer_array(gather.inputs[0])
    out = gather.outputs[0]
    uses = list(out.uses())
    if table is None or table.dtype != np.int8 or len(uses) != 1 or out.is_graph_output():
        return None
    dq = uses[0].node
    params = _qparams(dq) if dq.op_type == "DequantizeLinear" else None
    if params is None or np.any(params[1] != 0) or params[0].size != table.shape[-1]:
        return None
    rank = len(out.shape) if out.shape is not None else 0
    if rank == 0 or params[2] % rank != rank - 1:
        return None
    return params[0].astype(np.float32).ravel()


def _attr(node: ir.Node, name: str, default: float) -> float:
    a = node.attributes.get(name)
    return default if a is None else a.value


def int8_form(node: ir.Node) -> tuple[Int8Weight, tuple[float, float]] | str:
    """(int8 weights as ncnn stores them, (input scale, shift)) when ncnn runs a Conv / Gemm /
    MatMul of a QDQ graph as its int8 layer; otherwise why the layer runs float (weights
    dequantized).
    Linear weights come back (N, K): ncnn's InnerProduct order."""
    if len(node.inputs) < 2 or node.inputs[1] is None:
        return "no weight input"
    w_value = node.inputs[1]
    out_axis = 0
    if node.op_type == "Gemm":
        if _attr(node, "alpha", 1.0) != 1.0:
            return "Gemm alpha != 1 rescales the int8 weights"
        out_axis = 0 if _attr(node, "transB", 0) else 1
    elif node.op_type == "MatMul":
        out_axis = 1
    if folded(w_value) is None:
        return "a product of two computed tensors (ncnn's MatMul has no int8 form)"
    s_in = input_scale(node.inputs[0])
    if s_in is None:
        return "its input is not an int8 per-tensor DequantizeLinear"
    w = int8_weight(w_value, out_axis)
    if w is None:
        return "its weights are not int8 symmetric per output channel"
    if node.op_type in ("Gemm", "MatMul"):
        if w.data.ndim != 2:
            return "batched constant weights"
        data = w.data if out_axis == 0 else w.data.T
        return Int8Weight(np.ascontiguousarray(data), w.scales), s_in
    group = int(_attr(node, "group", 1))
    if group not in (1, w.data.shape[0]):
        return ("grouped convolution with several outputs per group: ncnn's int8 depthwise "
                "layer has one weight scale per group")
    return w, s_in


def is_quantized(node: ir.Node) -> bool:
    """A node of a QDQ graph that reads a DequantizeLinear (what the int8 scheme made int8)."""
    return any(v is not None and v.producer() is not None
               and v.producer().op_type == "DequantizeLinear" for v in node.inputs)


def as_int8(node: ir.Node, ctx: Any, xin: str, params: dict[int, object],
            weights: list) -> str:
    """Make a float Convolution / InnerProduct layer (params, [weight, bias?]) ncnn's int8 one
    when `int8_form` allows: int8 weight blob, then weight scales and the input scale after
    the bias (int8_scale_term = 1: the layer quantizes its float input, outputs float).
    Returns the blob the layer reads: `xin`, or `xin - shift` (a BinaryOp, and a Padding that
    pads with the shifted zero: ncnn's int8 Vulkan convolution pads with 0 only) for a
    one-sided input range; the bias absorbs shift * sum(weights)."""
    form = int8_form(node) if is_quantized(node) else None
    if not isinstance(form, tuple):
        return xin
    w8, (s_in, shift) = form
    params[8] = 1
    weights[0] = (w8.data, True)
    if shift:
        n = w8.data.shape[0]
        w_sum = w8.data.reshape(n, -1).astype(np.float64).sum(1) / w8.scales
        bias = weights[1][0] if len(weights) > 1 else np.zeros(n, np.float32)
        weights[1:] = [((bias + shift * w_sum).astype(np.float32), False)]
        params[5 if node.op_type == "Conv" else 1] = 1
        base = f"{node.name}_shift"
        shifted = ctx.unique(base)
        ctx.add("BinaryOp", base, [xin], [shifted], {0: 1, 1: 1, 2: float(shift)})  # SUB
        xin = shifted
        pads = {k: int(params.get(k, 0)) for k in (14, 16, 4, 15)}  # top bottom left right
        if any(pads.values()):
            padded = ctx.unique(f"{node.name}_pad")
            ctx.add("Padding", f"{node.name}_pad", [xin], [padded],
                    {0: pads[14], 1: pads[16], 2: pads[4], 3: pads[15], 4: 0, 5: -float(shift)})
            params.update({k: 0 for k in pads})
            xin = padded
    weights += [(w8.scales, False), (np.array([s_in], np.float32), False)]
    return xin


#: the ops whose ncnn layers have int8 forms (Convolution, ConvolutionDepthWise, InnerProduct)
INT8_LAYERS = ("Conv", "Gemm", "MatMul")


def int8_notes(model: ir.Model, registry: object) -> list[str]:
    """Coverage notes of a QDQ graph: how many layers ncnn runs int8, and each quantized
    layer that runs float with the reason (its weights are then stored dequantized)."""
    layers = [n for n in model.graph if n.op_type in INT8_LAYERS and is_quantized(n)
              and registry.why_not(n, None) is None]
    if not layers:
        return []
    floats = [(n, form) for n in layers if isinstance(form := int8_form(n), str)]
    notes = [f"int8: {len(layers) - len(floats)} of {len(layers)} quantized Conv/Gemm/MatMul "
             "run as ncnn int8 layers; ncnn quantizes their input symmetrically (a two-sided "
             "range widened, a one-sided one centred first); other activations run float"]
    notes += [f"int8: {n.name or '?'} ({n.op_type}) runs float: {why}" for n, why in floats]
    return notes
