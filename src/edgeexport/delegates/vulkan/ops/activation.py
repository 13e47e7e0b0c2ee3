"""Activations -> ncnn ReLU, Clip, Sigmoid, HardSigmoid, HardSwish, Swish (Sigmoid*x), GELU,
TanH, ELU, SELU, CELU, Softplus, Mish, PReLU, Erf, Softmax; and fusion into conv/linear layers.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.vulkan.context import EmitContext
from edgeexport.delegates.vulkan.ops._common import (attr_float, attr_int, attr_str, check_all,
                                                    input_const, shape_of, static)
from edgeexport.delegates.vulkan.ops.elementwise import MAX
from edgeexport.delegates.vulkan.registry import REGISTRY

FLT_MAX = float(np.finfo(np.float32).max)


def clip_bounds(node: ir.Node) -> tuple[float, float] | None:
    """Clip's min/max when they are constants (absent = unbounded)."""
    lo, hi = -FLT_MAX, FLT_MAX
    for i, default in ((1, lo), (2, hi)):
        if i < len(node.inputs) and node.inputs[i] is not None:
            c = input_const(node, i)
            if c is None:
                return None
            if i == 1:
                lo = float(c)
            else:
                hi = float(c)
    return lo, hi


def _check_clip(node: ir.Node, ctx: object) -> str | None:
    return None if clip_bounds(node) is not None else "Clip with non-constant min/max"


def fusable_activation(node: ir.Node) -> tuple[int, list[float]] | None:
    """(activation_type, activation_params) of ncnn's fused activations, or None."""
    op = node.op_type
    if op == "Relu":
        return 1, []
    if op == "LeakyRelu":
        return 2, [attr_float(node, "alpha", 0.01)]
    if op == "Clip":
        bounds = clip_bounds(node)
        return (3, [bounds[0], bounds[1]]) if bounds is not None else None
    if op == "Sigmoid":
        return 4, []
    if op == "Mish":
        return 5, []
    if op == "HardSwish":
        return 6, [1.0 / 6.0, 0.5]
    return None


def fuse_activation(value: ir.Value, ctx: EmitContext) -> tuple[dict[int, object], ir.Value]:
    """When `value`'s only reader is a fusable activation, absorb it: returns the layer params
    (9, 10) and the value the fused layer produces. Otherwise ({}, value)."""
    user = ctx.sole_consumer(value)
    if user is None or user.inputs[0] is not value or ctx.is_absorbed(user):
        return {}, value
    if user.op_type == "Sigmoid" and swish_partner(user, ctx) is not None:
        return {}, value  # Sigmoid*x becomes Swish, which is cheaper than fusing the sigmoid
    act = fusable_activation(user)
    if act is None:
        return {}, value
    ctx.absorb(user)
    params: dict[int, object] = {9: act[0]}
    if act[1]:
        params[10] = [float(x) for x in act[1]]
    return params, user.outputs[0]


def swish_partner(node: ir.Node, ctx: EmitContext) -> ir.Node | None:
    """The Mul that makes Sigmoid(x) * x, when the sigmoid feeds only it."""
    user = ctx.sole_consumer(node.outputs[0])
    if user is None or user.op_type != "Mul":
        return None
    x = node.inputs[0]
    others = [v for v in user.inputs if v is not node.outputs[0]]
    return user if len(others) == 1 and others[0] is x else None


_SIMPLE = {"Relu": "ReLU", "Sigmoid": "Sigmoid", "Tanh": "TanH", "Softplus": "Softplus",
           "Mish": "Mish", "Erf": "Erf"}


@REGISTRY.op(*_SIMPLE, check=static)
def emit_simple(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    if node.op_type == "Sigmoid":
        mul = swish_partner(node, ctx)
        if mul is not None:
            ctx.absorb(mul)
            ctx.emit(node, "Swish", [x.name], {}, kept=x.kept, output=mul.outputs[0])
            return
    ctx.emit(node, _SIMPLE[node.op_type], [x.name], {}, kept=x.kept)


@REGISTRY.op("LeakyRelu", check=static)
def emit_leaky(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    ctx.emit(node, "ReLU", [x.name], {0: attr_float(node, "alpha", 0.01)}, kept=x.kept)


@REGISTRY.op("Clip", check=check_all(static, _check_clip), conditions="constant min/max")
def emit_clip(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    lo, hi = clip_bounds(node)
    ctx.emit(node, "Clip", [x.name], {0: lo, 1: hi}, kept=x.kept)


@REGISTRY.op("HardSigmoid", check=static)
def emit_hardsigmoid(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    ctx.emit(node, "HardSigmoid", [x.name],
             {0: attr_float(node, "alpha", 0.2), 1: attr_float(node, "beta", 0.5)}, kept=x.kept)


@REGISTRY.op("HardSwish", check=static)
def emit_hardswish(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    ctx.emit(node, "HardSwish", [x.name], {0: 1.0 / 6.0, 1: 0.5}, kept=x.kept)


@REGISTRY.op("Gelu", check=static)
def emit_gelu(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    fast = 1 if attr_str(node, "approximate", "none") == "tanh" else 0
    if fast or ctx.fp16:
        ctx.emit(node, "GELU", [x.name], {0: fast}, kept=x.kept)
        return
    # ncnn's Vulkan GELU always uses the tanh approximation (~1e-4 off); for fp32 parity
    # build the exact form 0.5 * x * (1 + erf(x / sqrt(2))) from layers that are exact there
    out = node.outputs[0].name
    steps = [("BinaryOp", {0: 2, 1: 1, 2: float(np.sqrt(0.5))}), ("Erf", {}),
             ("BinaryOp", {0: 0, 1: 1, 2: 1.0}), ("BinaryOp", {0: 2, 1: 1, 2: 0.5})]
    prev = x.name
    for i, (kind, params) in enumerate(steps):
        name = ctx.unique(f"{out}_erf{i}")
        ctx.add(kind, f"{node.name}_erf{i}", [prev], [name], params)
        prev = name
    ctx.emit(node, "BinaryOp", [x.name, prev], {0: 2}, kept=x.kept)


@REGISTRY.op("Elu", "Celu", check=static)
def emit_elu(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    ctx.emit(node, node.op_type.upper(), [x.name], {0: attr_float(node, "alpha", 1.0)},
             kept=x.kept)


@REGISTRY.op("Selu", check=static)
def emit_selu(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    ctx.emit(node, "SELU", [x.name], {0: attr_float(node, "alpha", 1.67326319217681884765625),
                                      1: attr_float(node, "gamma", 1.05070102214813232421875)},
             kept=x.kept)


def _check_prelu(node: ir.Node, ctx: object) -> str | None:
    slope = input_const(node, 1)
    shape = shape_of(node.inputs[0])
    if slope is None:
        return "PRelu with a non-constant slope"
    if slope.size == 1:
        return None
    if shape is None or len(shape) != 4 or slope.size != shape[1]:
        return "PRelu slope must be a scalar or per channel of an NCHW tensor"
    return None


@REGISTRY.op("PRelu", check=check_all(static, _check_prelu),
             conditions="scalar or per-channel slope")
def emit_prelu(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    slope = input_const(node, 1).astype(np.float32).ravel()
    name = x.name
    if slope.size > 1:
        name = ctx.as_ncnn_shape(x, x.shape[1:], node.name + "_chw")
    ctx.emit(node, "PReLU", [name], {0: int(slope.size)}, [(slope, False)],
             kept=(1, 2, 3) if slope.size > 1 else x.kept)


#: ncnn's Vulkan Softmax starts its running max at -99999999 (-1e8 in float32), so a row whose
#: values all lie below it (a fully masked attention row: DeBERTa's query mask fills whole rows
#: with float32's lowest value) has every exp() underflow: 0 / 0 = NaN. Flooring the input there
#: is exact for every value above the floor, keeps the 0 that exp() gives every value far below
#: a row's max, and gives a fully masked row (all fills equal) PyTorch's uniform result.
GPU_SOFTMAX_FLOOR = -1e8


@REGISTRY.op("Softmax", "LogSoftmax", check=static)
def emit_softmax(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    axis = attr_int(node, "axis", -1) % len(x.shape)
    if axis not in x.kept:  # keep the softmax axis in the blob
        full = tuple(a for a in range(len(x.shape)) if a in x.kept or a == axis)
        name = ctx.as_ncnn_shape(x, tuple(x.shape[a] for a in full), node.name + "_axis")
        x = type(x)(name, full, x.shape)
    src = x.name
    if not ctx.fp16:  # (fp16 blobs cannot go below -65504)
        src = ctx.unique(node.outputs[0].name + "_floor")
        ctx.add("BinaryOp", node.name + "_floor", [x.name], [src],
                {0: MAX, 1: 1, 2: GPU_SOFTMAX_FLOOR})
    if node.op_type == "Softmax":
        ctx.emit(node, "Softmax", [src], {0: x.axis(axis), 1: 1}, kept=x.kept)
        return
    # log(softmax): an element far below its row's max is log(0) = -inf with or without the floor
    tmp = ctx.unique(node.outputs[0].name + "_softmax")
    ctx.add("Softmax", node.name + "_softmax", [src], [tmp], {0: x.axis(axis), 1: 1})
    ctx.emit(node, "UnaryOp", [tmp], {0: 8}, kept=x.kept)  # 8 = LOG
