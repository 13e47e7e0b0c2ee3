"""QDQ graphs: DequantizeLinear of constant int8 weights -> constexpr_affine_dequantize (iOS 16+,
the weights stay int8 in the package); activation QuantizeLinear / DequantizeLinear -> MIL
quantize / dequantize (iOS 17+, W8A8). Int32 biases are dequantized at build time. Before iOS 17
CoreML has no activation quantization: a Q -> DQ pair on activations becomes a clip to its range
(weight-only int8, float activations), which the coverage notes say.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport import ir as eir
from edgeexport.delegates.coreml.context import REGISTRY, EmitContext, attr, options_of
from edgeexport.errors import ConversionError
from edgeexport.quantize.embedding import gathered_int8_rows

_STORED = (np.int8, np.uint8)


def _is_const(v: ir.Value | None) -> bool:
    return v is not None and eir.initializer_array(v) is not None


def _check_quant(node: ir.Node, ctx: Any) -> str | None:
    if attr(node, "block_size", 0):
        return f"blocked {node.op_type} has no CoreML mapping"
    for i in (1, 2):
        if len(node.inputs) > i and node.inputs[i] is not None and not _is_const(node.inputs[i]):
            return f"{node.op_type} needs constant scale and zero point for CoreML"
    x = node.inputs[0]
    if node.op_type == "DequantizeLinear" and _is_const(x):
        return None  # weights: folded or constexpr, on every iOS version
    if node.op_type == "DequantizeLinear" and gathered_int8_rows(x):
        return None  # before iOS 17 the Gather dequantizes the table (float rows)
    if options_of(ctx).ios < 17:
        if _is_qdq_pair(node):
            return None  # a clip to the pair's range: weight-only int8 before iOS 17
        return f"activation {node.op_type} outside a Q -> DQ pair needs iOS 17 (--ios 17)"
    qtype = (node.inputs[2].dtype if len(node.inputs) > 2 and node.inputs[2] is not None
             else None)
    if node.op_type == "DequantizeLinear":
        qtype = x.dtype
    if qtype not in (None, ir.DataType.INT8, ir.DataType.UINT8):
        return f"{node.op_type} to {qtype.name} has no CoreML mapping (int8/uint8 only)"
    return None


def _saturate(ctx: EmitContext, x: Any, scale: np.ndarray, zp: np.ndarray | None,
              axis: int | None, dtype: str, name: str) -> Any:
    """clip(x) to the float range a Q -> DQ pair can represent."""
    info = np.iinfo(dtype)
    z = np.zeros_like(scale) if zp is None else zp.astype(np.float32)
    lo = (info.min - z) * scale.astype(np.float32)
    hi = (info.max - z) * scale.astype(np.float32)
    if axis is None:
        return ctx.mb.clip(x=x, alpha=ctx.scalar(float(lo)), beta=ctx.scalar(float(hi)),
                           name=name)
    shape = [1] * len(x.shape)
    shape[axis] = scale.size
    low = ctx.mb.maximum(x=x, y=ctx.to_mil_array(lo.reshape(shape)), name=name + "__lo")
    return ctx.mb.minimum(x=low, y=ctx.to_mil_array(hi.reshape(shape)), name=name)


def _is_qdq_pair(node: ir.Node) -> bool:
    """Q whose every user is a DQ, or DQ fed by such a Q (fake quantization of an activation)."""
    if node.op_type == "DequantizeLinear":
        q = node.inputs[0].producer()
        return q is not None and q.op_type == "QuantizeLinear" and _is_qdq_pair(q)
    users = [u for u, _ in node.outputs[0].uses()]
    graph_outputs = node.graph.outputs if node.graph is not None else []
    return bool(users) and node.outputs[0] not in graph_outputs and all(
        u.op_type == "DequantizeLinear" for u in users)


def _params(node: ir.Node, ctx: EmitContext, x_shape: tuple[int, ...] | None
            ) -> tuple[np.ndarray, np.ndarray | None, int | None]:
    scale = ctx.const_array(node.inputs[1])
    zp = ctx.const_array(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] is not None \
        else None
    axis = None
    if scale.size > 1:
        if x_shape is None:
            raise ConversionError(f"coreml: per-axis {node.op_type} '{node.name}' needs an input "
                                  "of known rank")
        axis = int(attr(node, "axis", 1)) % len(x_shape)
    else:
        scale = scale.reshape(())
        zp = None if zp is None else zp.reshape(())
    return scale, zp, axis


@REGISTRY.op("DequantizeLinear", check=_check_quant,
             conditions="int8 weights (constexpr, iOS 16+) or activations (iOS 17+)")
def emit_dequantize(node: ir.Node, ctx: EmitContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    q = ctx.const_array(x)
    shape = tuple(q.shape) if q is not None else (None if x.shape is None else tuple(x.shape))
    scale, zp, axis = _params(node, ctx, shape)
    if q is not None:
        if q.dtype in _STORED and ctx.ios >= 16 and q.ndim:  # (a 0-d scalar: stored float)
            zero = np.zeros((), q.dtype) if zp is None else zp.astype(q.dtype)
            ctx.set(out, ctx.mb.constexpr_affine_dequantize(
                quantized_data=q, zero_point=zero, scale=ctx.to_mil_array(scale),
                axis=0 if axis is None else axis, name=ctx.name(out)))
            return
        # int32 biases, scalars (and int8 on iOS 15): dequantize now, store as float
        from edgeexport.runtimes.reference.kernels import KERNELS

        real = KERNELS["DequantizeLinear"](q, ctx.const_array(node.inputs[1]),
                                           None if zp is None else ctx.const_array(node.inputs[2]),
                                           axis=int(attr(node, "axis", 1)))
        ctx.set(out, ctx.mb.const(val=ctx.to_mil_array(real), name=ctx.name(out)))
        return
    if x.name in ctx.elided:
        ctx.set(out, ctx.get(x))  # the float tensor the dropped QuantizeLinear received
        return
    kwargs: dict[str, Any] = {"input": ctx.get(x), "scale": ctx.to_mil_array(scale),
                              "name": ctx.name(out)}
    if zp is not None:
        kwargs["zero_point"] = zp
    if axis is not None:
        kwargs["axis"] = axis
    ctx.set(out, ctx.mb.dequantize(**kwargs))


@REGISTRY.op("QuantizeLinear", check=_check_quant,
             conditions="int8/uint8 activations on iOS 17+; before, Q -> DQ pairs become a clip "
                        "(weight-only int8)")
def emit_quantize(node: ir.Node, ctx: EmitContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    scale, zp, axis = _params(node, ctx, tuple(x.shape) if x.shape is not None else None)
    dtype = "uint8" if zp is None or zp.dtype == np.uint8 else "int8"
    if ctx.ios < 17:
        # no activation quantization: keep the pair's saturation (quantizers fold ReLU into it),
        # drop only the rounding
        ctx.set(out, _saturate(ctx, ctx.get(x), scale, zp, axis, dtype, ctx.name(out)))
        ctx.elided.add(out.name)
        return
    kwargs: dict[str, Any] = {"input": ctx.get(x), "scale": ctx.to_mil_array(scale),
                              "output_dtype": dtype, "name": ctx.name(out)}
    if zp is not None:
        kwargs["zero_point"] = zp
    if axis is not None:
        kwargs["axis"] = axis
    ctx.set(out, ctx.mb.quantize(**kwargs))
