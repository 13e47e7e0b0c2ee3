"""Normalizations -> ncnn LayerNorm (over the trailing axes, viewed as rows), BatchNorm (2-D to
4-D), InstanceNorm and GroupNorm (NCHW or (1, C, L), batch 1, per-channel affine).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.vulkan.context import Blob, EmitContext
from edgeexport.delegates.vulkan.ops._common import (attr_float, attr_int, check_all,
                                                    input_const, shape_of, static)
from edgeexport.delegates.vulkan.registry import REGISTRY


def _check_layernorm(node: ir.Node, ctx: object) -> str | None:
    shape = shape_of(node.inputs[0])
    if shape is None:
        return "unknown input shape"
    axis = attr_int(node, "axis", -1) % len(shape)
    if any(d != 1 for d in shape[:axis]) and int(np.prod(shape[:axis])) <= 0:
        return "empty tensor"
    for i in (1, 2):
        if i < len(node.inputs) and node.inputs[i] is not None and input_const(node, i) is None:
            return "scale and bias must be constant"
    if len([o for o in node.outputs if o is not None]) > 1:
        return "mean / inv_std_dev outputs are not mapped"
    return None


@REGISTRY.op("LayerNormalization", check=check_all(static, _check_layernorm),
             conditions="constant scale/bias")
def emit_layernorm(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    axis = attr_int(node, "axis", -1) % len(x.shape)
    size = int(np.prod(x.shape[axis:]))
    rows = int(np.prod(x.shape[:axis]))
    view = (size,) if rows == 1 else (rows, size)
    # ncnn normalizes each innermost row when affine_size == w: view the tensor as rows
    xin = ctx.as_ncnn_shape(x, view, node.name + "_rows")
    gamma = input_const(node, 1)
    beta = input_const(node, 2) if len(node.inputs) > 2 and node.inputs[2] is not None else None
    gamma = np.broadcast_to(np.asarray(gamma, np.float32), x.shape[axis:]).ravel()
    beta = (np.zeros(size, np.float32) if beta is None
            else np.broadcast_to(np.asarray(beta, np.float32), x.shape[axis:]).ravel())
    params = {0: size, 1: attr_float(node, "epsilon", 1e-5), 2: 1}
    weights = [(gamma, False), (beta, False)]
    if view == x.ncnn_shape:
        ctx.emit(node, "LayerNorm", [xin], params, weights, kept=x.kept)
        return
    name = ctx.unique(node.outputs[0].name + "_rows")
    ctx.add("LayerNorm", node.name, [xin], [name], params, weights)
    ctx.reshaped_as(node.outputs[0], Blob(name, tuple(range(len(view))), view))


def _check_nchw(node: ir.Node, ctx: object) -> str | None:
    shape = shape_of(node.inputs[0])
    if shape is None or len(shape) not in (3, 4) or shape[0] != 1:
        return "only NCHW and (1, C, L) input with batch 1 is mapped"
    if any(input_const(node, i) is None for i in range(1, len(node.inputs))):
        return "parameters must be constant"
    return None


def _chw(node: ir.Node, ctx: EmitContext) -> tuple[str, int]:
    """The input as an ncnn (C, H, W) blob; (1, C, L) (audio front ends) as (C, 1, L)."""
    x = ctx.blob(node.inputs[0])
    c, *spatial = x.shape[1:]
    h, w = spatial if len(spatial) == 2 else (1, spatial[0])
    return ctx.as_ncnn_shape(x, (c, h, w), node.name + "_chw"), c


def _emit_chw(node: ir.Node, ctx: EmitContext, type_: str, xin: str, params: dict[int, object],
              weights: list[tuple[np.ndarray, bool]]) -> None:
    """One per-channel layer on the (C, H, W) view; a (1, C, L) output is viewed back."""
    out = node.outputs[0]
    if len(out.shape) == 4:
        ctx.emit(node, type_, [xin], params, weights, kept=(1, 2, 3))
        return
    name = ctx.unique(out.name + "_chw")
    ctx.add(type_, node.name, [xin], [name], params, weights)
    c, length = out.shape[1], out.shape[2]
    ctx.reshaped_as(out, Blob(name, None, tuple(out.shape), (c, 1, length)))


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float32).ravel()


def _check_batchnorm(node: ir.Node, ctx: object) -> str | None:
    shape = shape_of(node.inputs[0])
    if shape is None or len(shape) not in (2, 3, 4) or shape[0] != 1:
        return "only (1, C), (1, C, L) and NCHW input with batch 1 is mapped"
    if any(input_const(node, i) is None for i in range(1, len(node.inputs))):
        return "parameters must be constant"
    if attr_int(node, "training_mode", 0):
        return "training-mode BatchNormalization is not mapped"
    return None


@REGISTRY.op("BatchNormalization", check=check_all(static, _check_batchnorm),
             conditions="inference mode, batch 1, (1, C), (1, C, L) or NCHW")
def emit_batchnorm(node: ir.Node, ctx: EmitContext) -> None:
    # ncnn's BatchNorm normalizes per outermost axis of its blob (w of a 1-D blob, rows of a
    # 2-D one, channels of a 3-D one): (C,), (C, L) and (C, H, W) are all per channel
    x = ctx.blob(node.inputs[0])
    view = tuple(x.shape[1:])
    xin = ctx.as_ncnn_shape(x, view, node.name + "_c")
    scale, bias, mean, var = (input_const(node, i) for i in (1, 2, 3, 4))
    weights = [(_f32(scale), False), (_f32(mean), False), (_f32(var), False), (_f32(bias), False)]
    ctx.emit(node, "BatchNorm", [xin], {0: view[0], 1: attr_float(node, "epsilon", 1e-5)},
             weights, kept=tuple(range(1, len(x.shape))))


@REGISTRY.op("InstanceNormalization", check=check_all(static, _check_nchw),
             conditions="NCHW or (1, C, L), batch 1")
def emit_instancenorm(node: ir.Node, ctx: EmitContext) -> None:
    xin, c = _chw(node, ctx)
    weights = [(_f32(input_const(node, 1)), False), (_f32(input_const(node, 2)), False)]
    _emit_chw(node, ctx, "InstanceNorm", xin, {0: c, 1: attr_float(node, "epsilon", 1e-5), 2: 1},
              weights)


@REGISTRY.op("GroupNormalization", check=check_all(static, _check_nchw),
             conditions="NCHW or (1, C, L), batch 1")
def emit_groupnorm(node: ir.Node, ctx: EmitContext) -> None:
    xin, c = _chw(node, ctx)
    groups = attr_int(node, "num_groups", 1)
    scale, bias = input_const(node, 1), input_const(node, 2)
    # opset 18+ gives per-channel scale/bias; older ones per group: expand to channels
    scale = np.repeat(_f32(scale), c // scale.size)
    bias = np.repeat(_f32(bias), c // bias.size)
    _emit_chw(node, ctx, "GroupNorm", xin, {0: groups, 1: c, 2: attr_float(node, "epsilon", 1e-5),
                                            3: 1}, [(scale, False), (bias, False)])
