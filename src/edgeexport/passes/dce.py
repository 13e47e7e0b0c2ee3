"""Dead code elimination: nodes whose outputs nobody reads, and initializers no node uses."""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes import InPlacePass, PassResult
from onnx_ir.passes.common import RemoveUnusedNodesPass


class DeadCodeEliminationPass(InPlacePass):
    name = "dead-code-elimination"

    def call(self, model: ir.Model) -> PassResult:
        before = (model.graph.num_nodes(), len(model.graph.initializers))
        RemoveUnusedNodesPass()(model)
        graph = model.graph
        inputs = {v.name for v in graph.inputs}
        for name, value in list(graph.initializers.items()):
            if not value.uses() and not value.is_graph_output() and name not in inputs:
                del graph.initializers[name]
        after = (model.graph.num_nodes(), len(model.graph.initializers))
        return PassResult(model, modified=after != before)
