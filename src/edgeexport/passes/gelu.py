"""Recognise GELU written out elementwise (the erf form and the tanh approximation) into the
opset-20 Gelu op (approximate="none" / "tanh").
"""

from __future__ import annotations

import math

from onnxscript.rewriter import pattern

from edgeexport.passes._rules import RulePass

_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class _GeluErf(pattern.RewriteRuleClassBase):
    """0.5 * x * (1 + erf(x / sqrt(2))), with the division written as a multiplication or not."""

    def __init__(self, div: bool, half_first: bool) -> None:
        super().__init__(f"GeluErf(div={div}, half_first={half_first})")
        self.div, self.half_first = div, half_first

    def pattern(self, op, x):
        arg = op.Div(x, _SQRT2) if self.div else op.Mul(x, 1.0 / _SQRT2)
        one_plus = op.Add(op.Erf(arg), 1.0)
        if self.half_first:
            return op.Mul(op.Mul(x, 0.5), one_plus)
        return op.Mul(op.Mul(x, one_plus), 0.5)

    def rewrite(self, op, x):
        return op.Gelu(x, approximate="none")


class _GeluTanh(pattern.RewriteRuleClassBase):
    """0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))."""

    def __init__(self, half_first: bool) -> None:
        super().__init__(f"GeluTanh(half_first={half_first})")
        self.half_first = half_first

    def pattern(self, op, x):
        inner = op.Mul(op.Add(x, op.Mul(op.Pow(x, 3.0), 0.044715)), _SQRT_2_OVER_PI)
        one_plus = op.Add(op.Tanh(inner), 1.0)
        if self.half_first:
            return op.Mul(op.Mul(x, 0.5), one_plus)
        return op.Mul(op.Mul(x, one_plus), 0.5)

    def rewrite(self, op, x):
        return op.Gelu(x, approximate="tanh")


class FuseGeluPass(RulePass):
    name = "fuse-gelu"
    anchors = frozenset({"Erf", "Tanh"})
    commute = True

    def rules(self) -> list:
        return [_GeluErf.rule(d, h) for d in (True, False) for h in (True, False)] + \
               [_GeluTanh.rule(h) for h in (True, False)]
