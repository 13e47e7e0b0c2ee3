"""Conv (1-D, 2-D; int8 from QDQ) -> ncnn Convolution / ConvolutionDepthWise (grouped),
ConvTranspose -> Deconvolution / DeconvolutionDepthWise, each with a following ReLU/Clip/Sigmoid/
HardSwish fused in.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.vulkan.context import Blob, EmitContext, static_shape
from edgeexport.delegates.vulkan.ops._common import (attr_int, attr_ints, attr_str, check_all,
                                                    input_const, shape_of, static)
from edgeexport.delegates.vulkan.ops.activation import fuse_activation
from edgeexport.delegates.vulkan.quant import as_int8
from edgeexport.delegates.vulkan.registry import REGISTRY


def _check_conv2d(node: ir.Node, ctx: object) -> str | None:
    shape = shape_of(node.inputs[0])
    ranks = (3, 4) if node.op_type == "Conv" else (4,)
    if shape is None or len(shape) not in ranks:
        return ("only 1-D and 2-D convolution (NCL / NCHW input) is mapped to ncnn"
                if node.op_type == "Conv" else "only 2-D (NCHW) ConvTranspose is mapped to ncnn")
    if shape[0] != 1:
        return "batch must be 1 (ncnn blobs have no batch axis)"
    if input_const(node, 1) is None:
        return "weights must be constant"
    if len(node.inputs) > 2 and node.inputs[2] is not None and input_const(node, 2) is None:
        return "bias must be constant"
    if node.op_type == "ConvTranspose" and node.attributes.get("output_shape") is not None:
        return "ConvTranspose output_shape is not mapped (give pads instead)"
    if attr_str(node, "auto_pad", "NOTSET") not in ("NOTSET", "VALID", "SAME_UPPER",
                                                     "SAME_LOWER"):
        return "unknown auto_pad"
    if node.op_type == "ConvTranspose" and attr_str(node, "auto_pad", "NOTSET") != "NOTSET":
        return "ConvTranspose with auto_pad is not mapped"
    return None


def _pads(node: ir.Node, in_hw: tuple[int, int], k: list[int], s: list[int],
          d: list[int], explicit: list[int]) -> list[int]:
    """[top, left, bottom, right] from auto_pad (static shapes) or the explicit pads."""
    auto = attr_str(node, "auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for i in range(2):
            out = -(-in_hw[i] // s[i])
            total = max(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in_hw[i])
            small, big = total // 2, total - total // 2
            pads.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return [pads[0][0], pads[1][0], pads[0][1], pads[1][1]]
    if auto == "VALID":
        return [0, 0, 0, 0]
    return explicit


def _geometry(node: ir.Node, weight: np.ndarray, in_hw: tuple[int, int]) -> dict[int, object]:
    k = attr_ints(node, "kernel_shape", list(weight.shape[2:]))
    s = attr_ints(node, "strides", [1] * len(k))
    d = attr_ints(node, "dilations", [1] * len(k))
    pads = attr_ints(node, "pads", [0] * 2 * len(k))
    if len(k) == 1:  # 1-D: a 2-D convolution over a height of 1
        k, s, d, pads = [1] + k, [1] + s, [1] + d, [0, pads[0], 0, pads[1]]
    top, left, bottom, right = _pads(node, in_hw, k, s, d, pads)
    return {1: k[1], 11: k[0], 2: d[1], 12: d[0], 3: s[1], 13: s[0],
            4: left, 14: top, 15: right, 16: bottom}


@REGISTRY.op("Conv", check=check_all(static, _check_conv2d),
             conditions="1-D or 2-D, batch 1, constant weights; int8 from QDQ")
def emit_conv(node: ir.Node, ctx: EmitContext) -> None:
    """1-D convolutions run as 2-D ones over a height of 1: ncnn's Convolution has Vulkan and
    int8 kernels for every group size, its Convolution1D family lacks some of them."""
    x = ctx.blob(node.inputs[0])
    c, h, w = x.shape[1], (x.shape[2] if len(x.shape) == 4 else 1), x.shape[-1]
    xin = ctx.as_ncnn_shape(x, (c, h, w), node.name + "_chw")
    weight = input_const(node, 1).astype(np.float32)
    bias = input_const(node, 2)
    group = attr_int(node, "group", 1)
    params = {0: int(weight.shape[0]), **_geometry(node, weight, (h, w)),
              5: int(bias is not None), 6: int(weight.size)}
    act, out = fuse_activation(node.outputs[0], ctx)
    params.update(act)
    # ncnn's weight order [kw, kh, inch, outch] (innermost first) is ONNX's OIHW as it is
    weights = [(weight, True)] + ([(bias.astype(np.float32), False)] if bias is not None else [])
    xin = as_int8(node, ctx, xin, params, weights)
    type_ = "Convolution" if group == 1 else "ConvolutionDepthWise"
    if group != 1:
        params[7] = group
    if len(x.shape) == 4:
        ctx.emit(node, type_, [xin], params, weights, kept=(1, 2, 3), output=out)
        return
    oshape = static_shape(out)
    name = ctx.unique(out.name + "_chw")
    ctx.add(type_, node.name or type_, [xin], [name], params, weights)
    ctx.reshaped_as(out, Blob(name, (1, 2, 3), (1, oshape[1], 1, oshape[2])))


@REGISTRY.op("ConvTranspose", check=check_all(static, _check_conv2d),
             conditions="2-D, batch 1, constant weights, explicit pads")
def emit_conv_transpose(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    n, c, h, w = x.shape
    xin = ctx.as_ncnn_shape(x, (c, h, w), node.name + "_chw")
    weight = input_const(node, 1).astype(np.float32)  # (inch, outch/group, kh, kw)
    bias = input_const(node, 2)
    group = attr_int(node, "group", 1)
    inch, outg = weight.shape[:2]
    # ncnn wants (outch, inch) order within each group
    wt = weight.reshape(group, inch // group, outg, -1).transpose(0, 2, 1, 3)
    opad = attr_ints(node, "output_padding", [0, 0])
    params = {0: int(outg * group), **_geometry(node, weight, (h, w)),
              5: int(bias is not None), 6: int(weight.size), 18: opad[1], 19: opad[0]}
    act, out = fuse_activation(node.outputs[0], ctx)
    params.update(act)
    weights = [(np.ascontiguousarray(wt), True)]
    if bias is not None:
        weights.append((bias.astype(np.float32), False))
    if group == 1:
        ctx.emit(node, "Deconvolution", [xin], params, weights, kept=(1, 2, 3), output=out)
    else:
        params[7] = group
        ctx.emit(node, "DeconvolutionDepthWise", [xin], params, weights, kept=(1, 2, 3),
                 output=out)
