"""Constant folding: nodes whose inputs are all constants become initializers.

Wraps onnxscript's folder (ONNX reference semantics) with size limits; never folds
non-deterministic ops nor the weight DequantizeLinear of a QDQ graph (targets need it).
"""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes import InPlacePass, PassResult
from onnx_ir.passes.common import RemoveUnusedNodesPass
from onnxscript.optimizer import _constant_folding

#: limits in elements: folding a huge broadcast would bloat the file for no speed
INPUT_SIZE_LIMIT = 1 << 22
OUTPUT_SIZE_LIMIT = 1 << 22
_KEEP = frozenset({"QuantizeLinear", "DequantizeLinear", "RandomNormal", "RandomUniform",
                   "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"})


def _should_fold(node: ir.Node) -> bool | None:
    if node.domain in ("", "ai.onnx") and node.op_type in _KEEP:
        return False
    return None


class ConstantFoldingPass(InPlacePass):
    name = "constant-folding"

    def call(self, model: ir.Model) -> PassResult:
        inner = _constant_folding.FoldConstantsPass(
            shape_inference=False, input_size_limit=INPUT_SIZE_LIMIT,
            output_size_limit=OUTPUT_SIZE_LIMIT, should_fold=_should_fold)
        before = _fingerprint(model)
        result = inner(model)
        if result.modified:  # what fed the folded nodes is dead now
            RemoveUnusedNodesPass()(model)
        # the folder can report "modified" after only refreshing value metadata: count real work
        modified = result.modified and _fingerprint(model) != before
        return PassResult(model, modified=modified)


def _fingerprint(model: ir.Model) -> tuple:
    return (tuple((n.op_type, len(n.inputs)) for n in model.graph),
            tuple(sorted(model.graph.initializers)))
