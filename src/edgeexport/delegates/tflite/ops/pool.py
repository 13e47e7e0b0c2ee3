"""Pooling: MaxPool / AveragePool -> MAX_POOL_2D / AVERAGE_POOL_2D (channels-last), global pools
-> MEAN / REDUCE_MAX over the spatial axes.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from ai_edge_litert import schema_py_generated as fb

from edgeexport.delegates.tflite import layout as L
from edgeexport.delegates.tflite.context import EmitContext
from edgeexport.delegates.tflite.ops._spatial import geometry, ints, pad_nhwc, tflite_padding
from edgeexport.delegates.tflite.registry import REGISTRY

_PAD = {"SAME": fb.Padding.SAME, "VALID": fb.Padding.VALID}


def check_pool(node: ir.Node, ctx: object) -> str | None:
    x = node.inputs[0]
    if x.shape is None or len(x.shape) not in (3, 4):
        return "only 1-D and 2-D pooling (input rank 3 or 4)"
    if len(node.outputs) > 1 and node.outputs[1] is not None and node.outputs[1].uses():
        return "MaxPool indices output"
    if ints(node, "dilations", [1, 1]) != [1, 1]:
        return "dilated pooling"
    if node.op_type == "AveragePool":
        shape = [int(d) for d in x.shape]
        k = ints(node, "kernel_shape", [])
        if len(shape) == 3:
            shape, k, node = shape[:2] + [1] + shape[2:], [1] + k, _Pool1dAs2d(node)
        g = geometry(node, shape[2:], k)
        plain = ints(node, "pads", [0] * (2 * len(k)))
        if list(g["end"]) != list(plain[len(k):]) and "ceil_mode" in node.attributes and \
                node.attributes["ceil_mode"].as_int():
            return "ceil_mode windows past the input (their divisor is clipped)"
        include = node.attributes.get("count_include_pad")
        if (not (include and include.as_int()) and tflite_padding(shape[2:], k, g) is None):
            return "padding that excludes the pad from the average and is not TFLite's SAME"
    return None


@REGISTRY.op("MaxPool", "AveragePool", check=check_pool,
             conditions="1-D/2-D; AveragePool pads must equal SAME unless count_include_pad")
def emit_pool(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    hw = ctx.shape(x)[2:]
    k = ints(node, "kernel_shape", [])
    if len(hw) == 1:  # 1-D: pool [N, 1, W, C]
        n, c, w = ctx.shape(x)
        src = ctx.input(x, L.channels_last(3))
        xin = ctx.temp(f"{x.name}/4d", [n, 1, w, c], ctx.fb.dtype(src))
        ctx.reshape(src, xin)
        hw, k, node1 = [1, w], [1] + k, _Pool1dAs2d(node)
        g = geometry(node1, hw, k)
        return _pool(node, ctx, xin, hw, k, g, one_d=True)
    g = geometry(node, hw, k)
    xin = ctx.input(x, L.channels_last(4))
    _pool(node, ctx, xin, hw, k, g)


def _pool(node: ir.Node, ctx: EmitContext, xin: int, hw: list[int], k: list[int], g: dict,
          one_d: bool = False) -> None:
    padding = tflite_padding(hw, k, g)
    is_max = node.op_type == "MaxPool"
    include = node.attributes.get("count_include_pad")
    if not is_max and include is not None and include.as_int() and padding == "SAME":
        padding = None  # TFLite's SAME average leaves the pad out of the count
    if padding is None:
        # MaxPool pads with -inf (lowest float); AveragePool counting the pad pads with zeros
        xin = pad_nhwc(ctx, xin, g, node.name or node.outputs[0].name,
                       value=float(np.finfo(np.float32).min) if is_max else None)
        padding = "VALID"
    out, act = ctx.fuse_activation(node.outputs[0])
    if one_d:
        n, c, w = ctx.shape(out)
        y4 = ctx.temp(f"{out.name}/4d", [n, 1, w, c], ctx.fb.dtype(xin))
    else:
        y4 = ctx.output(out, L.channels_last(4))
    opt = fb.Pool2DOptionsT()
    opt.padding = _PAD[padding]
    opt.strideH, opt.strideW = g["strides"]
    opt.filterHeight, opt.filterWidth = k
    opt.fusedActivationFunction = act
    ctx.fb.op("MAX_POOL_2D" if is_max else "AVERAGE_POOL_2D", [xin], [y4], opt)
    if one_d:
        ctx.reshape(y4, ctx.output(out, L.channels_last(3)))


class _Pool1dAs2d:
    """A 1-D pool's attributes seen as a 2-D pool of height 1."""

    def __init__(self, node: ir.Node) -> None:
        self.attributes = {k: v for k, v in node.attributes.items()
                           if k not in ("strides", "dilations", "pads", "kernel_shape")}
        s, p = ints(node, "strides", [1]), ints(node, "pads", [0, 0])
        self.attributes["strides"] = ir.AttrInt64s("strides", [1, s[0]])
        self.attributes["pads"] = ir.AttrInt64s("pads", [0, p[0], 0, p[1]])
        self.attributes["dilations"] = ir.AttrInt64s("dilations", [1, 1])


def check_global(node: ir.Node, ctx: object) -> str | None:
    x = node.inputs[0]
    if x.shape is None or len(x.shape) < 3:
        return "input rank below 3"
    return None


@REGISTRY.op("GlobalAveragePool", "GlobalMaxPool", check=check_global, conditions="rank >= 3")
def emit_global_pool(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    rank = ctx.rank(x)
    lay = ctx.layout(x)
    xin = ctx.input(x)
    axes = [L.physical_axis(a, lay) for a in range(2, rank)]
    y = ctx.output(node.outputs[0], lay)
    opt = fb.ReducerOptionsT()
    opt.keepDims = True
    ctx.fb.op("MEAN" if node.op_type == "GlobalAveragePool" else "REDUCE_MAX",
              [xin, ctx.int32(sorted(axes), f"axes{sorted(axes)}")], [y], opt)
