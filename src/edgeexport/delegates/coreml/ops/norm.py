"""Normalizations: LayerNormalization -> layer_norm over the trailing axes, inference
BatchNormalization -> batch_norm, InstanceNormalization -> instance_norm, GroupNormalization ->
layer_norm over each group of a reshaped input, then the per-channel (or per-group) affine.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.coreml.context import (
    REGISTRY, EmitContext, all_checks, attr, const_inputs, float_input, need_static_input_shape,
    static_shape,
)


def _check_layer_norm(node: ir.Node, ctx: Any) -> str | None:
    if len(node.outputs) > 1 and any(o is not None and o.uses() for o in node.outputs[1:]):
        return "LayerNormalization mean / inv_std_dev outputs have no CoreML mapping"
    x = node.inputs[0]
    if x is None or x.shape is None:
        return "LayerNormalization needs an input of known rank for CoreML"
    return None


def _epsilon(node: ir.Node, ctx: EmitContext) -> np.floating:
    """The epsilon in the program's precision, kept above 0: BERT-family eps 1e-12 is 0 in
    fp16, and a row of equal values (DeiT's zero class tokens) would give 0 / 0."""
    eps = float(attr(node, "epsilon", 1e-5))
    if ctx.fp16:
        eps = max(eps, float(np.finfo(np.float16).smallest_subnormal))
    return ctx.scalar(eps)


@REGISTRY.op("LayerNormalization",
             check=all_checks(float_input, const_inputs(1, 2), _check_layer_norm),
             conditions="constant scale and bias; Y output only")
def emit_layer_norm(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    rank = ctx.rank(x)
    axis = int(attr(node, "axis", -1)) % rank
    kwargs: dict[str, Any] = {}
    for key, i in (("gamma", 1), ("beta", 2)):
        arr = ctx.const_array(node.inputs[i]) if len(node.inputs) > i else None
        if arr is not None:
            # MIL wants gamma/beta with exactly the normalized shape
            kwargs[key] = ctx.to_mil_array(arr.reshape(tuple(x.shape)[axis:]))
    ctx.set(node.outputs[0], ctx.mb.layer_norm(
        x=ctx.get(x), axes=list(range(axis, rank)),
        epsilon=_epsilon(node, ctx), name=ctx.name(node.outputs[0]), **kwargs))


def _check_bn(node: ir.Node, ctx: Any) -> str | None:
    if attr(node, "training_mode", 0):
        return "BatchNormalization in training mode has no CoreML mapping"
    x = node.inputs[0]
    if x is None or x.shape is None or len(x.shape) not in (3, 4, 5):
        return "BatchNormalization needs a rank 3-5 input for CoreML"
    return None


@REGISTRY.op("BatchNormalization", check=all_checks(float_input, const_inputs(1, 2, 3, 4),
                                                    _check_bn),
             conditions="inference mode, constant statistics")
def emit_batch_norm(node: ir.Node, ctx: EmitContext) -> None:
    x, scale, bias, mean, var = node.inputs[:5]
    ctx.set(node.outputs[0], ctx.mb.batch_norm(
        x=ctx.get(x), mean=ctx.get(mean), variance=ctx.get(var), gamma=ctx.get(scale),
        beta=ctx.get(bias), epsilon=_epsilon(node, ctx),
        name=ctx.name(node.outputs[0])))


def _check_instance_norm(node: ir.Node, ctx: Any) -> str | None:
    x = node.inputs[0]
    if x is None or x.shape is None or len(x.shape) not in (3, 4):
        return "InstanceNormalization needs a rank 3 or 4 input for CoreML"
    return None


@REGISTRY.op("InstanceNormalization",
             check=all_checks(float_input, const_inputs(1, 2), _check_instance_norm),
             conditions="rank 3-4, constant scale and bias")
def emit_instance_norm(node: ir.Node, ctx: EmitContext) -> None:
    x, scale, bias = node.inputs[:3]
    ctx.set(node.outputs[0], ctx.mb.instance_norm(
        x=ctx.get(x), gamma=ctx.get(scale), beta=ctx.get(bias),
        epsilon=_epsilon(node, ctx), name=ctx.name(node.outputs[0])))


def _check_group_norm(node: ir.Node, ctx: Any) -> str | None:
    shape = static_shape(node.inputs[0])
    groups = int(attr(node, "num_groups", 0))
    if len(shape) < 2 or groups <= 0 or shape[1] % groups:
        return "GroupNormalization needs num_groups dividing the channels of a rank >= 2 input"
    for i in (1, 2):
        if node.inputs[i].shape is None or math.prod(node.inputs[i].shape) not in (groups,
                                                                                   shape[1]):
            return "GroupNormalization scale and bias need one value per channel or per group"
    return None


@REGISTRY.op("GroupNormalization",
             check=all_checks(float_input, const_inputs(1, 2), need_static_input_shape,
                              _check_group_norm),
             conditions="static input shape, constant scale and bias")
def emit_group_norm(node: ir.Node, ctx: EmitContext) -> None:
    # [N, C, ...] -> [N, G, C/G * ...]: layer_norm over the last axis normalizes each group
    x, out = node.inputs[0], node.outputs[0]
    name = ctx.name(out)
    shape = static_shape(x)
    n, c, groups = shape[0], shape[1], int(attr(node, "num_groups"))
    grouped = ctx.mb.reshape(x=ctx.get(x), shape=np.array([n, groups, -1], np.int32),
                             name=name + "__groups")
    y = ctx.mb.layer_norm(x=grouped, axes=[2], epsilon=_epsilon(node, ctx),
                          name=name + "__norm")
    scale, bias = ctx.const_array(node.inputs[1]), ctx.const_array(node.inputs[2])
    # opset 18 gives scale and bias per group, opset 21 per channel: the sizes tell them apart
    per_group = scale.size == groups and groups != c
    if per_group:
        y = ctx.mb.mul(x=y, y=ctx.to_mil_array(scale.reshape(groups, 1)), name=name + "__scale")
        y = ctx.mb.add(x=y, y=ctx.to_mil_array(bias.reshape(groups, 1)), name=name + "__bias")
    y = ctx.mb.reshape(x=y, shape=np.array(shape, np.int32),
                       name=name if per_group else name + "__ungroup")
    if not per_group:
        channel = (c,) + (1,) * (len(shape) - 2)
        y = ctx.mb.mul(x=y, y=ctx.to_mil_array(scale.reshape(channel)), name=name + "__scale")
        y = ctx.mb.add(x=y, y=ctx.to_mil_array(bias.reshape(channel)), name=name)
    ctx.set(out, y)
