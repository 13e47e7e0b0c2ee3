"""Constant folding: nodes whose inputs are all constants become initializers.

Wraps onnxscript's folder (ONNX reference semantics) with size limits, then folds what it left
with the reference runtime's own kernels; never folds non-deterministic ops nor the weight
DequantizeLinear of a QDQ graph (targets need it).
"""

from __future__ import annotations

import numpy as np
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
        ours = fold_with_kernels(model.graph)
        if result.modified or ours:  # what fed the folded nodes is dead now
            RemoveUnusedNodesPass()(model)
        # the folder can report "modified" after only refreshing value metadata: count real work
        modified = (result.modified or ours > 0) and _fingerprint(model) != before
        return PassResult(model, modified=modified)


def _fingerprint(model: ir.Model) -> tuple:
    return (tuple((n.op_type, len(n.inputs)) for n in model.graph),
            tuple(sorted(model.graph.initializers)))


def fold_with_kernels(graph: ir.Graph) -> int:
    """Fold the nodes onnxscript's folder left although every input is a constant: it evaluates
    with onnx.reference, which fails on some (onnx 1.23's GatherElements cannot gather [1, 8]
    indices from a [1, 512] table: HF BERT's token-type ids, after a torch.onnx export), and
    targets without the op then refuse a node that is only a constant. Returns how many."""
    from edgeexport.errors import EdgeExportError
    from edgeexport.runtimes.reference.kernels import KERNELS, node_attributes

    folded = 0
    for node in list(graph):
        kernel = KERNELS.get(node.op_type)
        if (kernel is None or node.domain not in ("", "ai.onnx") or node.op_type in _KEEP
                or node.op_type == "Constant" or not node.inputs
                or any(v in graph.outputs for v in node.outputs)
                or any(v is not None and v.const_value is None for v in node.inputs)
                or any(v.const_value.size > INPUT_SIZE_LIMIT for v in node.inputs if v)):
            continue
        try:
            attrs = node_attributes(node)
        except EdgeExportError:  # an attribute the kernels do not read: the node stays
            continue
        args = [None if v is None else v.const_value.numpy() for v in node.inputs]
        if kernel.why_not(attrs, args):
            continue
        try:
            out = kernel.bind(attrs, args, len(node.outputs))(*args)
        except Exception:  # a kernel that refuses these values: the node stays as it is
            continue
        results = [np.asarray(r) for r in (out if isinstance(out, tuple) else (out,))]
        if len(results) != len(node.outputs) or any(
                r.size > OUTPUT_SIZE_LIMIT or (v.dtype is not None and v.dtype !=
                                               ir.DataType.from_numpy(r.dtype))
                for v, r in zip(node.outputs, results)):
            continue
        for value, array in zip(node.outputs, results):
            const = ir.Value(name=value.name, shape=ir.Shape(array.shape),
                             type=ir.TensorType(ir.DataType.from_numpy(array.dtype)),
                             const_value=ir.tensor(array, name=value.name))
            value.name = None
            value.replace_all_uses_with(const)
            graph.register_initializer(const)
        folded += 1
    return folded
