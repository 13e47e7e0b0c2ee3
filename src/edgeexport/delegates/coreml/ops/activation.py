"""Activations and softmax. Most have a MIL op of their own; HardSwish is x * sigmoid_hard(x)
as coremltools composes it, Clip becomes clip / relu6 / maximum / minimum by its bounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.coreml.context import (
    REGISTRY, EmitContext, all_checks, attr, const_inputs, float_input,
)

#: ONNX op -> (MIL op, {MIL parameter: (ONNX attribute, default)})
_SIMPLE: dict[str, tuple[str, dict[str, tuple[str, float]]]] = {
    "Relu": ("relu", {}),
    "Sigmoid": ("sigmoid", {}),
    "Tanh": ("tanh", {}),
    "Softplus": ("softplus", {}),
    "Softsign": ("softsign", {}),
    "LeakyRelu": ("leaky_relu", {"alpha": ("alpha", 0.01)}),
    "Elu": ("elu", {"alpha": ("alpha", 1.0)}),
    "HardSigmoid": ("sigmoid_hard", {"alpha": ("alpha", 0.2), "beta": ("beta", 0.5)}),
}


@REGISTRY.op(*_SIMPLE, check=float_input)
def emit_simple(node: ir.Node, ctx: EmitContext) -> None:
    mil_op, params = _SIMPLE[node.op_type]
    kwargs = {p: ctx.scalar(attr(node, a, d)) for p, (a, d) in params.items()}
    ctx.set(node.outputs[0], getattr(ctx.mb, mil_op)(x=ctx.get(node.inputs[0]),
                                                     name=ctx.name(node.outputs[0]), **kwargs))


@REGISTRY.op("HardSwish", check=float_input)
def emit_hard_swish(node: ir.Node, ctx: EmitContext) -> None:
    x, out = ctx.get(node.inputs[0]), node.outputs[0]
    gate = ctx.mb.sigmoid_hard(x=x, alpha=ctx.scalar(1.0 / 6), beta=ctx.scalar(0.5),
                               name=ctx.name(out) + "__gate")
    ctx.set(out, ctx.mb.mul(x=x, y=gate, name=ctx.name(out)))


@REGISTRY.op("Gelu", check=float_input)
def emit_gelu(node: ir.Node, ctx: EmitContext) -> None:
    mode = "TANH_APPROXIMATION" if attr(node, "approximate", "none") == "tanh" else "EXACT"
    ctx.set(node.outputs[0], ctx.mb.gelu(x=ctx.get(node.inputs[0]), mode=mode,
                                         name=ctx.name(node.outputs[0])))


@REGISTRY.op("Softmax", check=float_input)
def emit_softmax(node: ir.Node, ctx: EmitContext) -> None:
    ctx.set(node.outputs[0], ctx.mb.softmax(x=ctx.get(node.inputs[0]),
                                            axis=int(attr(node, "axis", -1)),
                                            name=ctx.name(node.outputs[0])))


def _bound(node: ir.Node, i: int) -> float | None:
    from edgeexport import ir as eir

    if i >= len(node.inputs) or node.inputs[i] is None:
        return None
    return float(np.asarray(eir.initializer_array(node.inputs[i])).reshape(()))


@REGISTRY.op("Clip", check=all_checks(float_input, const_inputs(1, 2)),
             conditions="constant bounds")
def emit_clip(node: ir.Node, ctx: EmitContext) -> None:
    lo, hi = _bound(node, 1), _bound(node, 2)
    x, out = ctx.get(node.inputs[0]), node.outputs[0]
    name = ctx.name(out)
    mb: Any = ctx.mb
    if lo == 0.0 and hi == 6.0:
        var = mb.relu6(x=x, name=name)
    elif lo is not None and hi is not None:
        var = mb.clip(x=x, alpha=ctx.scalar(lo), beta=ctx.scalar(hi), name=name)
    elif lo is not None:
        var = mb.maximum(x=x, y=ctx.to_mil_array(np.array(lo, np.float32)), name=name)
    elif hi is not None:
        var = mb.minimum(x=x, y=ctx.to_mil_array(np.array(hi, np.float32)), name=name)
    else:
        var = mb.identity(x=x, name=name)
    ctx.set(out, var)


@REGISTRY.op("PRelu", check=float_input)
def emit_prelu(node: ir.Node, ctx: EmitContext) -> None:
    # max(x, 0) + slope * min(x, 0): ONNX broadcasts the slope freely, MIL prelu only per channel
    x, out = ctx.get(node.inputs[0]), node.outputs[0]
    zero = ctx.to_mil_array(np.array(0.0, np.float32))
    pos = ctx.mb.maximum(x=x, y=zero, name=ctx.name(out) + "__pos")
    neg = ctx.mb.minimum(x=x, y=zero, name=ctx.name(out) + "__neg")
    scaled = ctx.mb.mul(x=neg, y=ctx.get(node.inputs[1]), name=ctx.name(out) + "__slope")
    ctx.set(out, ctx.mb.add(x=pos, y=scaled, name=ctx.name(out)))


@REGISTRY.op("LogSoftmax", check=float_input)
def emit_log_softmax(node: ir.Node, ctx: EmitContext) -> None:
    # x - logsumexp(x): stable, where log(softmax(x)) underflows to -inf
    x, out = ctx.get(node.inputs[0]), node.outputs[0]
    lse = ctx.mb.reduce_log_sum_exp(x=x, axes=[int(attr(node, "axis", -1))], keep_dims=True,
                                    name=ctx.name(out) + "__lse")
    ctx.set(out, ctx.mb.sub(x=x, y=lse, name=ctx.name(out)))


@REGISTRY.op("Mish", check=float_input)
def emit_mish(node: ir.Node, ctx: EmitContext) -> None:
    x, out = ctx.get(node.inputs[0]), node.outputs[0]
    sp = ctx.mb.softplus(x=x, name=ctx.name(out) + "__softplus")
    th = ctx.mb.tanh(x=sp, name=ctx.name(out) + "__tanh")
    ctx.set(out, ctx.mb.mul(x=x, y=th, name=ctx.name(out)))


@REGISTRY.op("Selu", "Celu", check=float_input)
def emit_selu_celu(node: ir.Node, ctx: EmitContext) -> None:
    # selu = gamma * elu(x, alpha); celu = alpha * elu(x / alpha, 1)
    x, out = ctx.get(node.inputs[0]), node.outputs[0]
    name = ctx.name(out)
    if node.op_type == "Selu":
        alpha = attr(node, "alpha", 1.67326319217681884765625)
        gamma = attr(node, "gamma", 1.05070102214813232421875)
        e = ctx.mb.elu(x=x, alpha=ctx.scalar(alpha), name=name + "__elu")
        ctx.set(out, ctx.mb.mul(x=e, y=ctx.scalar(gamma), name=name))
        return
    alpha = attr(node, "alpha", 1.0)
    z = ctx.mb.real_div(x=x, y=ctx.scalar(alpha), name=name + "__div")
    e = ctx.mb.elu(x=z, alpha=ctx.scalar(1.0), name=name + "__elu")
    ctx.set(out, ctx.mb.mul(x=e, y=ctx.scalar(alpha), name=name))
