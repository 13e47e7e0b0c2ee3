"""Fold BatchNormalization (inference) into the preceding Conv, ConvTranspose or Gemm by
rescaling the weights and bias: one op less and nothing to quantize in between.
"""

from __future__ import annotations

from onnxscript.rewriter.rules import common as rules

from edgeexport.passes._rules import RulePass


class FoldBatchNormPass(RulePass):
    name = "fold-batchnorm"
    anchors = frozenset({"BatchNormalization"})
    commute = False

    def rules(self) -> list:
        return [rules.fuse_batchnorm_into_conv_rule, rules.fuse_batchnorm_into_conv_transpose_rule,
                rules.fuse_batchnorm_into_gemm_rule]
