"""Recognise SiLU / Swish. ONNX opset 20 has no Swish op and TFLite none either, so the single
edge-profile form is the canonical pair Mul(x, Sigmoid(x)) that every emitter pattern-matches:
x / (1 + exp(-x)) and x * (1 / (1 + exp(-x))) are rewritten into it.
"""

from __future__ import annotations

from onnxscript.rewriter import pattern

from edgeexport.passes._rules import RulePass


class _SiluDiv(pattern.RewriteRuleClassBase):
    def pattern(self, op, x):
        return op.Div(x, op.Add(op.Exp(op.Neg(x)), 1.0))

    def rewrite(self, op, x):
        return op.Mul(x, op.Sigmoid(x))


class _SiluReciprocal(pattern.RewriteRuleClassBase):
    def pattern(self, op, x):
        return op.Mul(x, op.Reciprocal(op.Add(op.Exp(op.Neg(x)), 1.0)))

    def rewrite(self, op, x):
        return op.Mul(x, op.Sigmoid(x))


class _SigmoidExplicit(pattern.RewriteRuleClassBase):
    """1 / (1 + exp(-x)) on its own is Sigmoid."""

    def pattern(self, op, x):
        return op.Div(1.0, op.Add(op.Exp(op.Neg(x)), 1.0))

    def rewrite(self, op, x):
        return op.Sigmoid(x)


class FuseSiluPass(RulePass):
    name = "fuse-silu"
    anchors = frozenset({"Exp"})
    commute = True

    def rules(self) -> list:
        return [_SiluDiv.rule(), _SiluReciprocal.rule(), _SigmoidExplicit.rule()]
