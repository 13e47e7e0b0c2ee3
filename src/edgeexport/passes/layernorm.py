"""Recognise LayerNorm written out (ReduceMean, Sub, Pow/Mul, ReduceMean, Add eps, Sqrt, Div,
Mul scale, Add bias) over the last axis into LayerNormalization (opset 17+).
"""

from __future__ import annotations

from onnxscript.rewriter.rules.fusion import _layer_norm

from edgeexport.passes._rules import RulePass


class FuseLayerNormPass(RulePass):
    name = "fuse-layernorm"
    anchors = frozenset({"Sqrt", "LayerNormalization"})
    commute = True

    def rules(self) -> list:
        return list(_layer_norm.layer_normalization_rules)
