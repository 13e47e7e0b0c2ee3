"""Activations: RELU/RELU6/LOGISTIC/TANH/HARD_SWISH/GELU/... (when not fused into the producer),
Clip as RELU6 / RELU_N1_TO_1 / MINIMUM+MAXIMUM, softmaxes on the last stored axis.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from ai_edge_litert import schema_py_generated as fb

from edgeexport.delegates.tflite import layout as L
from edgeexport.delegates.tflite.context import EmitContext, clip_bounds
from edgeexport.delegates.tflite.ops.elementwise import _static, constant_second_input, operand, unary
from edgeexport.delegates.tflite.registry import REGISTRY

_SIMPLE = {"Relu": "RELU", "Sigmoid": "LOGISTIC", "Tanh": "TANH", "HardSwish": "HARD_SWISH"}


@REGISTRY.op(*_SIMPLE, check=_static, conditions="static shapes")
def emit_simple(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    lay = ctx.layout(x)
    unary(ctx, _SIMPLE[node.op_type], ctx.input(x, lay), node.outputs[0], lay)


def _check_clip(node: ir.Node, ctx: object) -> str | None:
    if clip_bounds(node) is None:
        return "min/max must be constants"
    return _static(node, ctx)


@REGISTRY.op("Clip", check=_check_clip, conditions="constant bounds")
def emit_clip(node: ir.Node, ctx: EmitContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    lay = ctx.layout(x)
    xin = ctx.input(x, lay)
    lo, hi = clip_bounds(node)
    named = {(0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1", (0.0, np.inf): "RELU",
             (0.0, 1.0): "RELU_0_TO_1"}
    if (lo, hi) in named:
        unary(ctx, named[(lo, hi)], xin, out, lay)
        return
    dt = ctx.fb.dtype(xin)
    cur = xin
    if np.isfinite(hi):
        nxt = ctx.output(out, lay) if not np.isfinite(lo) else \
            ctx.temp(f"{out.name}/min", ctx.fb.shape(xin), dt)
        ctx.fb.op("MINIMUM", [cur, ctx.const_tensor(np.asarray(hi, dt), f"clip{hi}{dt}",
                                                   weight=False)], [nxt])
        cur = nxt
    if np.isfinite(lo):
        y = ctx.output(out, lay)
        ctx.fb.op("MAXIMUM", [cur, ctx.const_tensor(np.asarray(lo, dt), f"clip{lo}{dt}",
                                                   weight=False)], [y])
    elif not np.isfinite(hi):
        ctx.alias(out, x)


def _alpha(node: ir.Node, default: float) -> float:
    a = node.attributes.get("alpha")
    return a.as_float() if a is not None else default


@REGISTRY.op("LeakyRelu", check=_static, conditions="static shapes")
def emit_leaky_relu(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    lay = ctx.layout(x)
    opt = fb.LeakyReluOptionsT()
    opt.alpha = _alpha(node, 0.01)
    unary(ctx, "LEAKY_RELU", ctx.input(x, lay), node.outputs[0], lay, opt)


@REGISTRY.op("PRelu", check=constant_second_input("slope"), conditions="constant slope")
def emit_prelu(node: ir.Node, ctx: EmitContext) -> None:
    x, slope = node.inputs
    lay = ctx.layout(x)
    y = ctx.output(node.outputs[0], lay)
    ctx.fb.op("PRELU", [ctx.input(x, lay), operand(ctx, slope, lay)], [y])


@REGISTRY.op("Elu", check=_static, conditions="static shapes")
def emit_elu(node: ir.Node, ctx: EmitContext) -> None:
    if _alpha(node, 1.0) != 1.0:
        from edgeexport.delegates.tflite.ops.math import elu_any_alpha

        elu_any_alpha(node, ctx)
        return
    x = node.inputs[0]
    lay = ctx.layout(x)
    unary(ctx, "ELU", ctx.input(x, lay), node.outputs[0], lay)


@REGISTRY.op("Gelu", check=_static, conditions="static shapes")
def emit_gelu(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    lay = ctx.layout(x)
    opt = fb.GeluOptionsT()
    approx = node.attributes.get("approximate")
    opt.approximate = approx is not None and approx.as_string() == "tanh"
    unary(ctx, "GELU", ctx.input(x, lay), node.outputs[0], lay, opt)


@REGISTRY.op("HardSigmoid", check=_static, conditions="static shapes")
def emit_hard_sigmoid(node: ir.Node, ctx: EmitContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    lay = ctx.layout(x)
    xin = ctx.input(x, lay)
    beta = node.attributes.get("beta")
    a, b = _alpha(node, 0.2), beta.as_float() if beta is not None else 0.5
    shape = ctx.fb.shape(xin)
    t = ctx.temp(f"{out.name}/ax", shape, np.float32)
    ctx.fb.op("MUL", [xin, ctx.const_tensor(np.float32(a), f"hs_a{a}")], [t], fb.MulOptionsT())
    t2 = ctx.temp(f"{out.name}/axb", shape, np.float32)
    ctx.fb.op("ADD", [t, ctx.const_tensor(np.float32(b), f"hs_b{b}")], [t2], fb.AddOptionsT())
    unary(ctx, "RELU_0_TO_1", t2, out, lay)


@REGISTRY.op("Softplus", check=_static, conditions="static shapes")
def emit_softplus(node: ir.Node, ctx: EmitContext) -> None:
    # log(1 + exp(x)) = relu(x) + log(1 + exp(-|x|)): no overflow for large x
    x, out = node.inputs[0], node.outputs[0]
    lay = ctx.layout(x)
    xin = ctx.input(x, lay)
    shape = ctx.fb.shape(xin)

    def t(tag: str) -> int:
        return ctx.temp(f"{out.name}/{tag}", shape, np.float32)

    a, na, e, lg, r = t("abs"), t("neg"), t("exp"), t("log1p"), t("relu")
    ctx.fb.op("ABS", [xin], [a])
    ctx.fb.op("NEG", [a], [na])
    ctx.fb.op("EXP", [na], [e])
    e1 = t("exp1")
    ctx.fb.op("ADD", [e, ctx.const_tensor(np.float32(1), "one")], [e1], fb.AddOptionsT())
    ctx.fb.op("LOG", [e1], [lg])
    ctx.fb.op("RELU", [xin], [r])
    y = ctx.output(out, lay)
    ctx.fb.op("ADD", [r, lg], [y], fb.AddOptionsT())


def _check_softmax(node: ir.Node, ctx: object) -> str | None:
    return _static(node, ctx)


@REGISTRY.op("Softmax", "LogSoftmax", check=_check_softmax, conditions="static shapes")
def emit_softmax(node: ir.Node, ctx: EmitContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = ctx.rank(x)
    a = node.attributes.get("axis")
    axis = (a.as_int() if a is not None else -1) % rank
    lay = ctx.layout(x)
    if L.physical_axis(axis, lay) != rank - 1:
        # keep the stored order of the other axes, move the softmax axis last
        lay = tuple([p for p in lay if p != axis] + [axis])
    xin = ctx.input(x, lay)
    y = ctx.output(out, lay)
    if node.op_type == "Softmax":
        opt = fb.SoftmaxOptionsT()
        opt.beta = 1.0
        ctx.fb.op("SOFTMAX", [xin], [y], opt)
    else:
        ctx.fb.op("LOG_SOFTMAX", [xin], [y], fb.LogSoftmaxOptionsT())
