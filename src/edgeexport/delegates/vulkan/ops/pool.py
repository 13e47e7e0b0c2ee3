"""MaxPool / AveragePool / GlobalAveragePool / GlobalMaxPool -> ncnn Pooling (2-D, NCHW, batch 1).

Global pooling in ncnn yields a 1-D blob of C values: the output keeps only the channel axis.
"""

from __future__ import annotations

import onnx_ir as ir

from edgeexport.delegates.vulkan.context import EmitContext
from edgeexport.delegates.vulkan.ops._common import (attr_int, attr_ints, attr_str, check_all,
                                                    shape_of, static)
from edgeexport.delegates.vulkan.registry import REGISTRY

MAX, AVG = 0, 1


def _check_pool2d(node: ir.Node, ctx: object) -> str | None:
    shape = shape_of(node.inputs[0])
    if shape is None or len(shape) != 4:
        return "only 2-D pooling (NCHW input) is mapped to ncnn"
    if shape[0] != 1:
        return "batch must be 1 (ncnn blobs have no batch axis)"
    if any(d != 1 for d in attr_ints(node, "dilations", [1, 1])):
        return "dilated pooling has no ncnn equivalent"
    if len(node.outputs) > 1 and node.outputs[1] is not None:
        return "MaxPool indices output is not mapped"
    return None


def global_pool(node: ir.Node, ctx: EmitContext, kind: int, input_value: ir.Value,
                output: ir.Value) -> None:
    """Pooling over H and W of an NCHW value; the output keeps the channel axis only."""
    x = ctx.blob(input_value)
    n, c, h, w = x.shape
    xin = ctx.as_ncnn_shape(x, (c, h, w), node.name + "_chw")
    ctx.emit(node, "Pooling", [xin], {0: kind, 4: 1}, kept=(1,), output=output)


@REGISTRY.op("GlobalAveragePool", "GlobalMaxPool", check=check_all(static, _check_pool2d),
             conditions="NCHW, batch 1")
def emit_global(node: ir.Node, ctx: EmitContext) -> None:
    kind = AVG if node.op_type == "GlobalAveragePool" else MAX
    global_pool(node, ctx, kind, node.inputs[0], node.outputs[0])


@REGISTRY.op("MaxPool", "AveragePool", check=check_all(static, _check_pool2d),
             conditions="2-D, batch 1, no dilation")
def emit_pool(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    n, c, h, w = x.shape
    xin = ctx.as_ncnn_shape(x, (c, h, w), node.name + "_chw")
    k = attr_ints(node, "kernel_shape")
    s = attr_ints(node, "strides", [1, 1])
    auto = attr_str(node, "auto_pad", "NOTSET")
    top, left, bottom, right = attr_ints(node, "pads", [0, 0, 0, 0])
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, kk, ss in ((h, k[0], s[0]), (w, k[1], s[1])):
            total = max(0, (-(-size // ss) - 1) * ss + kk - size)
            lo, hi = total // 2, total - total // 2
            pads.append((lo, hi) if auto == "SAME_UPPER" else (hi, lo))
        (top, bottom), (left, right) = pads
    elif auto == "VALID":
        top = left = bottom = right = 0
    # ceil_mode: the output size is given; pad the tail so floor division reaches it
    out_h, out_w = node.outputs[0].shape[2], node.outputs[0].shape[3]
    bottom += max(0, (out_h - 1) * s[0] + k[0] - (h + top + bottom))
    right += max(0, (out_w - 1) * s[1] + k[1] - (w + left + right))
    params = {0: MAX if node.op_type == "MaxPool" else AVG, 1: k[1], 11: k[0], 2: s[1],
              12: s[0], 3: left, 13: top, 14: right, 15: bottom, 5: 1,
              6: attr_int(node, "count_include_pad", 0)}
    ctx.emit(node, "Pooling", [xin], params, kept=(1, 2, 3))
