"""Simplify static shape subgraphs: Shape (and Size) of a value whose shape is fully static
becomes a constant, and the Gather/Concat/Unsqueeze chain that fed a Reshape folds with it.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx_ir.passes import InPlacePass, PassResult

from edgeexport.passes.constant_folding import ConstantFoldingPass


def _static_dims(value: ir.Value) -> list[int] | None:
    if value.shape is None or not all(isinstance(d, int) for d in value.shape):
        return None
    return [int(d) for d in value.shape]


class SimplifyShapesPass(InPlacePass):
    name = "simplify-static-shapes"

    def call(self, model: ir.Model) -> PassResult:
        graph = model.graph
        modified = False
        for node in list(graph):
            if node.domain not in ("", "ai.onnx") or node.op_type not in ("Shape", "Size"):
                continue
            dims = _static_dims(node.inputs[0])
            if dims is None:
                continue
            if node.op_type == "Shape":
                rank = len(dims)
                start = node.attributes.get_int("start", 0)
                end = node.attributes.get_int("end", rank)
                start, end = (s + rank if s < 0 else s for s in (start, end))
                arr = np.array(dims[max(start, 0):min(end, rank)], np.int64)
            else:
                arr = np.array(int(np.prod(dims)), np.int64)
            out = node.outputs[0]
            const = ir.node("Constant", [], {"value": ir.tensor(arr)}, name=node.name)
            graph.insert_before(node, const)
            new = const.outputs[0]
            new.shape, new.type = ir.Shape(arr.shape), ir.TensorType(ir.DataType.INT64)
            name = out.name
            ir.convenience.replace_all_uses_with(out, new, replace_graph_outputs=True)
            graph.remove(node, safe=True)
            new.name = name
            modified = True
        if modified:  # fold what the new constants feed (Gather, Concat, Unsqueeze, ...)
            ConstantFoldingPass()(model)
        return PassResult(model, modified=modified)
