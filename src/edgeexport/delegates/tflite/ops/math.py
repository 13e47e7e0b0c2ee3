"""Math ops TFLite has no builtin for, written as short chains of builtins: inverse and hyperbolic
trigonometry (via ATAN2 / EXP / LOG), Erf (Abramowitz-Stegun 7.1.26, |error| < 1.5e-7), Softsign,
Selu, Celu, Mish, Elu with any alpha.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import onnx_ir as ir
from ai_edge_litert import schema_py_generated as fb

from edgeexport.delegates.tflite.context import EmitContext
from edgeexport.delegates.tflite.ops.elementwise import _static
from edgeexport.delegates.tflite.registry import REGISTRY


class Chain:
    """Builds a chain of float ops on tensors of the input's stored shape and layout."""

    def __init__(self, ctx: EmitContext, node: ir.Node) -> None:
        self.ctx, self.x, self.out = ctx, node.inputs[0], node.outputs[0]
        self.lay = ctx.layout(self.x)
        self.xin = ctx.input(self.x, self.lay)
        self.shape = ctx.fb.shape(self.xin)
        self.n = 0

    def c(self, v: float) -> int:
        return self.ctx.const_tensor(np.asarray(v, np.float32), f"c{v!r}", weight=False)

    def op(self, name: str, *ins: int, opts: Any = None, last: bool = False) -> int:
        self.n += 1
        t = self.ctx.output(self.out, self.lay) if last else \
            self.ctx.temp(f"{self.out.name}/{name.lower()}{self.n}", self.shape, np.float32)
        self.ctx.fb.op(name, list(ins), [t], opts)
        return t

    def add(self, a: int, b: int, last: bool = False) -> int:
        return self.op("ADD", a, b, opts=fb.AddOptionsT(), last=last)

    def sub(self, a: int, b: int, last: bool = False) -> int:
        return self.op("SUB", a, b, opts=fb.SubOptionsT(), last=last)

    def mul(self, a: int, b: int, last: bool = False) -> int:
        return self.op("MUL", a, b, opts=fb.MulOptionsT(), last=last)

    def div(self, a: int, b: int, last: bool = False) -> int:
        return self.op("DIV", a, b, opts=fb.DivOptionsT(), last=last)


def _sqrt_1_minus_sq(ch: Chain) -> int:
    return ch.op("SQRT", ch.sub(ch.c(1.0), ch.mul(ch.xin, ch.xin)))


def _atan(ch: Chain) -> None:
    ones = ch.ctx.const_tensor(np.ones(ch.shape, np.float32), f"ones{ch.shape}", weight=False)
    ch.op("ATAN2", ch.xin, ones, last=True)  # ATAN2 does not broadcast


def _asin(ch: Chain) -> None:
    ch.op("ATAN2", ch.xin, _sqrt_1_minus_sq(ch), last=True)


def _acos(ch: Chain) -> None:
    ch.op("ATAN2", _sqrt_1_minus_sq(ch), ch.xin, last=True)


def _tan(ch: Chain) -> None:
    ch.div(ch.op("SIN", ch.xin), ch.op("COS", ch.xin), last=True)


def _exp_pair(ch: Chain) -> tuple[int, int]:
    return ch.op("EXP", ch.xin), ch.op("EXP", ch.op("NEG", ch.xin))


def _sinh(ch: Chain) -> None:
    e, ne = _exp_pair(ch)
    ch.mul(ch.sub(e, ne), ch.c(0.5), last=True)


def _cosh(ch: Chain) -> None:
    e, ne = _exp_pair(ch)
    ch.mul(ch.add(e, ne), ch.c(0.5), last=True)


def _asinh(ch: Chain) -> None:
    # sign(x) * log(|x| + sqrt(x^2 + 1)): no cancellation for negative x
    a = ch.op("ABS", ch.xin)
    r = ch.op("SQRT", ch.add(ch.mul(ch.xin, ch.xin), ch.c(1.0)))
    ch.mul(ch.op("SIGN", ch.xin), ch.op("LOG", ch.add(a, r)), last=True)


def _acosh(ch: Chain) -> None:
    r = ch.op("SQRT", ch.sub(ch.mul(ch.xin, ch.xin), ch.c(1.0)))
    ch.op("LOG", ch.add(ch.xin, r), last=True)


def _atanh(ch: Chain) -> None:
    q = ch.div(ch.add(ch.c(1.0), ch.xin), ch.sub(ch.c(1.0), ch.xin))
    ch.mul(ch.op("LOG", q), ch.c(0.5), last=True)


def _erf(ch: Chain) -> None:
    a1, a2, a3, a4, a5, p = (0.254829592, -0.284496736, 1.421413741, -1.453152027,
                             1.061405429, 0.3275911)
    ax = ch.op("ABS", ch.xin)
    t = ch.div(ch.c(1.0), ch.add(ch.c(1.0), ch.mul(ax, ch.c(p))))
    poly = ch.c(a5)
    for a in (a4, a3, a2, a1):  # Horner: ((((a5 t + a4) t + a3) t + a2) t + a1) t
        poly = ch.add(ch.mul(poly, t), ch.c(a))
    poly = ch.mul(poly, t)
    e = ch.op("EXP", ch.op("NEG", ch.mul(ch.xin, ch.xin)))
    y = ch.sub(ch.c(1.0), ch.mul(poly, e))
    ch.mul(ch.op("SIGN", ch.xin), y, last=True)


def _softsign(ch: Chain) -> None:
    ch.div(ch.xin, ch.add(ch.op("ABS", ch.xin), ch.c(1.0)), last=True)


def _attr(node: ir.Node, name: str, default: float) -> float:
    a = node.attributes.get(name)
    return a.as_float() if a is not None else default


def _elu_like(ch: Chain, alpha: float, scale: float = 1.0, div: float = 1.0) -> None:
    # scale * (max(x, 0) + min(alpha * (exp(x / div) - 1), 0))
    xe = ch.xin if div == 1.0 else ch.mul(ch.xin, ch.c(1.0 / div))
    neg = ch.mul(ch.sub(ch.op("EXP", xe), ch.c(1.0)), ch.c(alpha))
    neg = ch.op("MINIMUM", neg, ch.c(0.0))
    pos = ch.op("RELU", ch.xin)
    if scale == 1.0:
        ch.add(pos, neg, last=True)
    else:
        ch.mul(ch.add(pos, neg), ch.c(scale), last=True)


def _selu(ch: Chain, node: ir.Node) -> None:
    _elu_like(ch, _attr(node, "alpha", 1.67326319217681884765625),
              _attr(node, "gamma", 1.05070102214813232421875))


def _celu(ch: Chain, node: ir.Node) -> None:
    a = _attr(node, "alpha", 1.0)
    _elu_like(ch, a, div=a)


def _mish(ch: Chain) -> None:
    # x * tanh(softplus(x)), softplus = relu(x) + log(1 + exp(-|x|))
    sp = ch.add(ch.op("RELU", ch.xin), ch.op("LOG", ch.add(
        ch.c(1.0), ch.op("EXP", ch.op("NEG", ch.op("ABS", ch.xin))))))
    ch.mul(ch.xin, ch.op("TANH", sp), last=True)


_CHAINS: dict[str, Callable[..., None]] = {
    "Atan": _atan, "Asin": _asin, "Acos": _acos, "Tan": _tan, "Sinh": _sinh, "Cosh": _cosh,
    "Asinh": _asinh, "Acosh": _acosh, "Atanh": _atanh, "Erf": _erf, "Softsign": _softsign,
    "Mish": _mish,
}
_WITH_NODE: dict[str, Callable[..., None]] = {"Selu": _selu, "Celu": _celu}


def _check(node: ir.Node, ctx: object) -> str | None:
    if node.inputs[0].dtype not in (None, ir.DataType.FLOAT):
        return "float32 only"
    return _static(node, ctx)


@REGISTRY.op(*_CHAINS, *_WITH_NODE, check=_check,
             conditions="float32; decomposed into TFLite builtins")
def emit_chain(node: ir.Node, ctx: EmitContext) -> None:
    ch = Chain(ctx, node)
    if node.op_type in _CHAINS:
        _CHAINS[node.op_type](ch)
    else:
        _WITH_NODE[node.op_type](ch, node)


def elu_any_alpha(node: ir.Node, ctx: EmitContext) -> None:
    """Elu with alpha != 1 (TFLite's ELU fixes alpha at 1)."""
    _elu_like(Chain(ctx, node), _attr(node, "alpha", 1.0))
