"""Convolutions: Conv -> CONV_2D / DEPTHWISE_CONV_2D (groups split otherwise), 1-D convs as 2-D,
ConvTranspose -> TRANSPOSE_CONV. All channels-last, activations fused into the op.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from ai_edge_litert import schema_py_generated as fb

from edgeexport.delegates.tflite import layout as L
from edgeexport.delegates.tflite.context import EmitContext, is_const
from edgeexport.delegates.tflite.ops._spatial import geometry, ints, pad_nhwc, tflite_padding
from edgeexport.delegates.tflite.registry import REGISTRY

_PAD = {"SAME": fb.Padding.SAME, "VALID": fb.Padding.VALID}


def check_conv(node: ir.Node, ctx: object) -> str | None:
    x, w = node.inputs[0], node.inputs[1]
    if x.shape is None or len(x.shape) not in (3, 4):
        return "only 1-D and 2-D convolutions (input rank 3 or 4)"
    if not all(isinstance(d, int) for d in x.shape):
        return "dynamic input shape"
    if not is_const(w):
        return "weights must be a constant"
    return None


def _weights(node: ir.Node, ctx: EmitContext) -> tuple[np.ndarray, np.ndarray | None]:
    """Float weights and bias, or the int8 weights when the QDQ emitters registered them."""
    w = node.inputs[1]
    arr = ctx.const(w)  # float weights (dequantized ones in a float node)
    if arr is None:
        arr = ctx.quant[w.name]["int_value"]
    b = node.inputs[2] if len(node.inputs) > 2 else None
    bias = None
    if b is not None:
        bias = ctx.const(b)
        if bias is None:
            bias = ctx.quant[b.name]["int_value"]
    return arr, bias


@REGISTRY.op("Conv", check=check_conv, conditions="1-D/2-D, constant weights")
def emit_conv(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    shape = ctx.shape(x)
    W, bias = _weights(node, ctx)
    if len(shape) == 3:  # 1-D: a 2-D conv over [N, 1, W, C]
        return _conv1d(node, ctx, W, bias)
    _conv2d(node, ctx, ctx.input(x, L.channels_last(4)), shape[2:], W, bias)


def _conv2d(node: ir.Node, ctx: EmitContext, xin: int, hw: tuple[int, ...], W: np.ndarray,
            bias: np.ndarray | None, out_value: ir.Value | None = None) -> None:
    group = node.attributes["group"].as_int() if "group" in node.attributes else 1
    O, I = W.shape[0], W.shape[1]
    C = I * group
    kernel = list(W.shape[2:])
    g = geometry(node, hw, kernel)
    padding = tflite_padding(hw, kernel, g)
    if padding is None:
        xin = pad_nhwc(ctx, xin, g, node.name or node.outputs[0].name)
        padding = "VALID"
    wq = ctx.quant.get(node.inputs[1].name) if ctx.int8_node else None
    bq = ctx.quant.get(node.inputs[2].name) if len(node.inputs) > 2 and ctx.int8_node else None
    if bias is None:
        bias = np.zeros(O, np.int32 if wq else np.float32)
    value = out_value or node.outputs[0]
    out, act = ctx.fuse_activation(value)
    name = node.inputs[1].name
    if group == 1 or (group == C and O % C == 0):
        depthwise = group != 1
        if depthwise:  # [O, 1, kh, kw] -> [1, kh, kw, O]
            wt = W.reshape(O, *kernel).transpose(1, 2, 0)[None]
        else:
            wt = W.transpose(0, 2, 3, 1)
        wquant = None
        if wq is not None:
            wquant = {"scale": wq["scale"], "zero_point": np.zeros_like(wq["scale"], np.int64),
                      "axis": 3 if depthwise else 0}
        wt_i = ctx.const_tensor(wt, name, weight=True, quant=wquant)
        b_i = ctx.const_tensor(bias, (node.inputs[2].name if len(node.inputs) > 2 else
                                      name + "/bias"), weight=True,
                               quant=None if wq is None else _bias_quant(bq, wq, ctx, node))
        y = ctx.output(out, L.channels_last(4))
        if depthwise:
            opt = fb.DepthwiseConv2DOptionsT()
            opt.depthMultiplier = O // C
        else:
            opt = fb.Conv2DOptionsT()
        opt.padding = _PAD[padding]
        opt.strideH, opt.strideW = g["strides"]
        opt.dilationHFactor, opt.dilationWFactor = g["dilations"]
        opt.fusedActivationFunction = act
        ctx.fb.op("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", [xin, wt_i, b_i], [y], opt)
        if wq is not None:
            ctx.fb.set_version("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", 3)
        return
    _grouped(node, ctx, xin, W, bias, g, padding, ctx.output(out, L.channels_last(4)), act)


def _bias_quant(bq: dict | None, wq: dict, ctx: EmitContext, node: ir.Node) -> dict:
    """int32 bias with scale = input scale x weight scale (what the int8 kernels assume)."""
    in_scale = ctx.quant[node.inputs[0].name]["scale"]
    scale = np.asarray(wq["scale"], np.float64) * float(np.asarray(in_scale).ravel()[0])
    return {"scale": scale, "zero_point": np.zeros_like(scale, np.int64), "axis": 0}


def _grouped(node: ir.Node, ctx: EmitContext, xin: int, W: np.ndarray, bias: np.ndarray,
             g: dict, padding: str, y: int, act: int) -> None:
    """A grouped conv that is not depthwise: SPLIT the channels, one CONV_2D per group, CONCAT
    into the NHWC tensor y. (TFLite's grouped CONV_2D is not implemented by every
    kernel/delegate.)"""
    group = node.attributes["group"].as_int()
    O = W.shape[0]
    shape = ctx.fb.shape(xin)
    cg = shape[3] // group
    base = node.outputs[0].name
    parts = [ctx.temp(f"{base}/in{i}", shape[:3] + [cg], np.float32) for i in range(group)]
    sopt = fb.SplitOptionsT()
    sopt.numSplits = group
    ctx.fb.op("SPLIT", [ctx.int32([3], "axis3"), xin], parts, sopt)
    oshape = ctx.fb.shape(y)
    og = O // group
    outs = []
    for i in range(group):
        wt = W[i * og:(i + 1) * og].transpose(0, 2, 3, 1)
        o = ctx.temp(f"{base}/g{i}", oshape[:3] + [og], np.float32)
        opt = fb.Conv2DOptionsT()
        opt.padding = _PAD[padding]
        opt.strideH, opt.strideW = g["strides"]
        opt.dilationHFactor, opt.dilationWFactor = g["dilations"]
        opt.fusedActivationFunction = act
        ctx.fb.op("CONV_2D", [parts[i], ctx.const_tensor(wt, f"{node.inputs[1].name}/g{i}"),
                              ctx.const_tensor(bias[i * og:(i + 1) * og],
                                               f"{node.inputs[1].name}/b{i}")], [o], opt)
        outs.append(o)
    copt = fb.ConcatenationOptionsT()
    copt.axis = 3
    ctx.fb.op("CONCATENATION", outs, [y], copt)


def _conv1d(node: ir.Node, ctx: EmitContext, W: np.ndarray, bias: np.ndarray | None) -> None:
    """Conv1d as Conv2d on [N, 1, W, C] (stored layout NWC for the 1-D values)."""
    x = node.inputs[0]
    n, c, w = ctx.shape(x)
    xin = ctx.input(x, L.channels_last(3))  # [N, W, C]
    x4 = ctx.temp(f"{x.name}/4d", [n, 1, w, c], ctx.fb.dtype(xin))
    ctx.reshape(xin, x4)
    shim = _Conv1dAs2d(node)
    out, act = ctx.fuse_activation(node.outputs[0])
    o = node.outputs[0]
    on, oc, ow = ctx.shape(o)
    g = geometry(shim, [1, w], [1, W.shape[2]])
    padding = tflite_padding([1, w], [1, W.shape[2]], g)
    if padding is None:
        x4 = pad_nhwc(ctx, x4, g, node.name or o.name)
        padding = "VALID"
    W4 = W[:, :, None, :]
    group = node.attributes["group"].as_int() if "group" in node.attributes else 1
    if bias is None:
        bias = np.zeros(W.shape[0], np.float32)
    y4 = ctx.temp(f"{out.name}/4d", [on, 1, ow, oc], np.float32)
    if group == 1 or (group == c and oc % c == 0):
        dw = group != 1
        wt = W4.reshape(oc, 1, W.shape[2]).transpose(1, 2, 0)[None] if dw else \
            W4.transpose(0, 2, 3, 1)
        opt = fb.DepthwiseConv2DOptionsT() if dw else fb.Conv2DOptionsT()
        if dw:
            opt.depthMultiplier = oc // c
        opt.padding = _PAD[padding]
        opt.strideH, opt.strideW = g["strides"]
        opt.dilationHFactor, opt.dilationWFactor = g["dilations"]
        opt.fusedActivationFunction = act
        ctx.fb.op("DEPTHWISE_CONV_2D" if dw else "CONV_2D",
                  [x4, ctx.const_tensor(wt, node.inputs[1].name),
                   ctx.const_tensor(bias, node.inputs[1].name + "/bias")], [y4], opt)
    else:  # grouped: one CONV_2D per group, as for 2-D
        _grouped(node, ctx, x4, W4, bias, g, padding, y4, act)
    y = ctx.output(out, L.channels_last(3))
    ctx.reshape(y4, y)


class _Conv1dAs2d:
    """A view of a 1-D Conv node's attributes as a 2-D conv with a height of 1."""

    def __init__(self, node: ir.Node) -> None:
        k = ints(node, "strides", [1])
        d = ints(node, "dilations", [1])
        p = ints(node, "pads", [0, 0])
        self.attributes = {k2: v for k2, v in node.attributes.items()
                           if k2 not in ("strides", "dilations", "pads", "kernel_shape")}
        self.attributes["strides"] = ir.AttrInt64s("strides", [1, k[0]])
        self.attributes["dilations"] = ir.AttrInt64s("dilations", [1, d[0]])
        self.attributes["pads"] = ir.AttrInt64s("pads", [0, p[0], 0, p[1]])


def check_conv_transpose(node: ir.Node, ctx: object) -> str | None:
    x, w = node.inputs[0], node.inputs[1]
    if x.shape is None or len(x.shape) != 4:
        return "only 2-D transposed convolutions"
    if not is_const(w):
        return "weights must be a constant"
    group = node.attributes["group"].as_int() if "group" in node.attributes else 1
    if group != 1:
        return "grouped transposed convolution"
    if ints(node, "dilations", [1, 1]) != [1, 1]:
        return "dilated transposed convolution"
    return None


@REGISTRY.op("ConvTranspose", check=check_conv_transpose,
             conditions="2-D, group 1, dilation 1, constant weights")
def emit_conv_transpose(node: ir.Node, ctx: EmitContext) -> None:
    x, w = node.inputs[0], node.inputs[1]
    W = ctx.const(w)  # [Cin, Cout, kh, kw]
    b = ctx.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] is not None else None
    o = node.outputs[0]
    n, oc, oh, ow = ctx.shape(o)
    strides = ints(node, "strides", [1, 1])
    pads = ints(node, "pads", [0, 0, 0, 0])
    kh, kw = W.shape[2:]
    # TFLite computes the full (VALID) transposed conv; crop the ONNX pads afterwards
    full_h = (ctx.shape(x)[2] - 1) * strides[0] + kh
    full_w = (ctx.shape(x)[3] - 1) * strides[1] + kw
    xin = ctx.input(x, L.channels_last(4))
    wt = W.transpose(1, 2, 3, 0)  # [Cout, kh, kw, Cin]
    bias = b if b is not None else np.zeros(oc, np.float32)
    need_crop = (pads != [0, 0, 0, 0]) or full_h != oh or full_w != ow
    out, act = (o, fb.ActivationFunctionType.NONE) if need_crop else ctx.fuse_activation(o)
    full = ctx.temp(f"{o.name}/full", [n, full_h, full_w, oc], np.float32) if need_crop \
        else ctx.output(out, L.channels_last(4))
    opt = fb.TransposeConvOptionsT()
    opt.padding = fb.Padding.VALID
    opt.strideH, opt.strideW = strides
    opt.fusedActivationFunction = act
    ctx.fb.op("TRANSPOSE_CONV", [ctx.int32([n, full_h, full_w, oc], f"{o.name}/oshape"),
                                 ctx.const_tensor(wt, w.name), xin,
                                 ctx.const_tensor(bias, w.name + "/bias")], [full], opt)
    if need_crop:
        y = ctx.output(out, L.channels_last(4))
        begin = [0, pads[0], pads[1], 0]
        ctx.fb.op("SLICE", [full, ctx.int32(begin, f"{o.name}/begin"),
                            ctx.int32([n, oh, ow, oc], f"{o.name}/size")], [y],
                  fb.SliceOptionsT())
