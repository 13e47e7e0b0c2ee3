"""Conv and pooling: ONNX NCHW maps directly onto MIL conv / max_pool / avg_pool (explicit pads
reordered from ONNX's [begins..., ends...] to MIL's [begin, end] per spatial axis).
"""

from __future__ import annotations

from typing import Any

import onnx_ir as ir

from edgeexport.delegates.coreml.context import (
    REGISTRY, EmitContext, all_checks, attr, float_input,
)


def _pad_args(node: ir.Node, spatial: int) -> dict[str, Any]:
    auto_pad = attr(node, "auto_pad", "NOTSET")
    if auto_pad == "SAME_UPPER":
        return {"pad_type": "same"}
    if auto_pad == "SAME_LOWER":
        return {"pad_type": "same_lower"}
    if auto_pad == "VALID":
        return {"pad_type": "valid"}
    pads = list(attr(node, "pads", None) or [0] * (2 * spatial))
    mil = [p for i in range(spatial) for p in (pads[i], pads[i + spatial])]
    return {"pad_type": "custom", "pad": mil}


def _check_rank(node: ir.Node, ctx: Any) -> str | None:
    x = node.inputs[0]
    if x is None or x.shape is None or len(x.shape) not in (3, 4, 5):
        return f"{node.op_type} needs a 1-D, 2-D or 3-D input of known rank for CoreML"
    if attr(node, "auto_pad", "NOTSET") == "SAME_LOWER" and node.op_type != "Conv":
        return f"{node.op_type} with auto_pad SAME_LOWER has no CoreML mapping"
    return None


def _check_conv(node: ir.Node, ctx: Any) -> str | None:
    if node.inputs[1] is None or node.inputs[1].shape is None:
        return "Conv weights of unknown shape"
    return None


def _conv_kwargs(node: ir.Node, ctx: EmitContext) -> dict[str, Any]:
    """The arguments MIL's conv and conv_transpose share, from the ONNX node."""
    x, w = node.inputs[0], node.inputs[1]
    b = node.inputs[2] if len(node.inputs) > 2 else None
    spatial = len(w.shape) - 2
    kwargs = dict(x=ctx.get(x), weight=ctx.get(w),
                  strides=list(attr(node, "strides", None) or [1] * spatial),
                  dilations=list(attr(node, "dilations", None) or [1] * spatial),
                  groups=int(attr(node, "group", 1)), name=ctx.name(node.outputs[0]),
                  **_pad_args(node, spatial))
    if b is not None:
        kwargs["bias"] = ctx.get(b)
    return kwargs


@REGISTRY.op("Conv", check=all_checks(_check_rank, float_input, _check_conv),
             conditions="1-D to 3-D, float")
def emit_conv(node: ir.Node, ctx: EmitContext) -> None:
    kwargs = _conv_kwargs(node, ctx)
    ctx.set(node.outputs[0], ctx.mb.conv(**kwargs))


def _check_pool(node: ir.Node, ctx: Any) -> str | None:
    if any(d != 1 for d in attr(node, "dilations", None) or []):
        return f"{node.op_type} with dilations has no CoreML mapping"
    if attr(node, "storage_order", 0):
        return "MaxPool with storage_order 1 has no CoreML mapping"
    if len(node.outputs) > 1 and node.outputs[1] is not None and node.outputs[1].uses():
        return "MaxPool indices output has no CoreML mapping"
    return None


@REGISTRY.op("MaxPool", "AveragePool", check=all_checks(_check_rank, float_input, _check_pool),
             conditions="no dilations, no indices output")
def emit_pool(node: ir.Node, ctx: EmitContext) -> None:
    kernel = list(attr(node, "kernel_shape"))
    spatial = len(kernel)
    kwargs = dict(x=ctx.get(node.inputs[0]), kernel_sizes=kernel,
                  strides=list(attr(node, "strides", None) or [1] * spatial),
                  ceil_mode=bool(attr(node, "ceil_mode", 0)), name=ctx.name(node.outputs[0]),
                  **_pad_args(node, spatial))
    if node.op_type == "MaxPool":
        var = ctx.mb.max_pool(**kwargs)
    else:
        var = ctx.mb.avg_pool(exclude_padding_from_average=not attr(node, "count_include_pad", 0),
                              **kwargs)
    ctx.set(node.outputs[0], var)


@REGISTRY.op("GlobalAveragePool", "GlobalMaxPool", check=all_checks(_check_rank, float_input))
def emit_global_pool(node: ir.Node, ctx: EmitContext) -> None:
    axes = list(range(2, ctx.rank(node.inputs[0])))
    op = ctx.mb.reduce_mean if node.op_type == "GlobalAveragePool" else ctx.mb.reduce_max
    ctx.set(node.outputs[0], op(x=ctx.get(node.inputs[0]), axes=axes, keep_dims=True,
                                name=ctx.name(node.outputs[0])))


def _check_conv_transpose(node: ir.Node, ctx: Any) -> str | None:
    if attr(node, "auto_pad", "NOTSET") != "NOTSET" or attr(node, "output_shape", None):
        return "ConvTranspose with auto_pad or output_shape has no CoreML mapping (use pads)"
    if any(attr(node, "output_padding", None) or []):
        return "ConvTranspose with output_padding has no CoreML mapping"
    if node.inputs[1] is None or node.inputs[1].shape is None:
        return "ConvTranspose weights of unknown shape"
    return None


@REGISTRY.op("ConvTranspose", check=all_checks(_check_rank, float_input, _check_conv_transpose),
             conditions="explicit pads, no output_padding / output_shape")
def emit_conv_transpose(node: ir.Node, ctx: EmitContext) -> None:
    kwargs = _conv_kwargs(node, ctx)
    ctx.set(node.outputs[0], ctx.mb.conv_transpose(**kwargs))
