"""Normalizations: LayerNormalization -> layer_norm over the trailing axes, inference
BatchNormalization -> batch_norm, InstanceNormalization -> instance_norm.
"""

from __future__ import annotations

from typing import Any

import onnx_ir as ir

from edgeexport.delegates.coreml.context import (
    REGISTRY, EmitContext, all_checks, attr, const_inputs, float_input,
)


def _check_layer_norm(node: ir.Node, ctx: Any) -> str | None:
    if len(node.outputs) > 1 and any(o is not None and o.uses() for o in node.outputs[1:]):
        return "LayerNormalization mean / inv_std_dev outputs have no CoreML mapping"
    x = node.inputs[0]
    if x is None or x.shape is None:
        return "LayerNormalization needs an input of known rank for CoreML"
    return None


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
        epsilon=ctx.scalar(attr(node, "epsilon", 1e-5)), name=ctx.name(node.outputs[0]), **kwargs))


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
        beta=ctx.get(bias), epsilon=ctx.scalar(attr(node, "epsilon", 1e-5)),
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
        epsilon=ctx.scalar(attr(node, "epsilon", 1e-5)), name=ctx.name(node.outputs[0])))
