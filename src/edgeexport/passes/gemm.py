"""Fuse MatMul + Add into Gemm where Gemm's contract holds: 2-D operands and a bias that
broadcasts to the output (unidirectionally), optionally absorbing a Transpose of either operand.
"""

from __future__ import annotations

from onnxscript.rewriter.rules import common as rules

from edgeexport.passes._rules import RulePass


class MatMulAddToGemmPass(RulePass):
    name = "matmul-add-to-gemm"
    anchors = frozenset({"MatMul"})
    commute = True

    def rules(self) -> list:
        # onnxscript's rules check rank 2 on both operands and the bias broadcast
        return [rules.transpose_ab_matmul_add_to_gemm_rule,
                rules.transpose_a_matmul_add_to_gemm_rule,
                rules.transpose_b_matmul_add_to_gemm_rule, rules.matmul_add_to_gemm_rule]
