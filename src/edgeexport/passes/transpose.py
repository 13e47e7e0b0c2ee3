"""Eliminate Transpose pairs: two Transposes in a row become one, or nothing when the
permutations are inverse (a round trip NCHW -> NHWC -> NCHW).
"""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes import InPlacePass, PassResult

from edgeexport.passes.noop import bypass


class TransposePairsPass(InPlacePass):
    name = "eliminate-transpose-pairs"

    def call(self, model: ir.Model) -> PassResult:
        graph = model.graph
        modified = False
        for node in list(graph):
            if node.op_type != "Transpose" or node.domain != "" or node.graph is None:
                continue
            first = node.inputs[0].producer() if node.inputs[0] is not None else None
            if first is None or first.op_type != "Transpose" or first.domain != "":
                continue
            p1, p2 = first.attributes.get_ints("perm"), node.attributes.get_ints("perm")
            if p1 is None or p2 is None:
                continue  # default perm (reverse) needs the rank; rare after export
            combined = [p1[i] for i in p2]  # out[i] = x[p1[p2[i]]]
            x = first.inputs[0]
            if combined == list(range(len(combined))):
                # the pair cancels: read x directly
                ident = ir.node("Identity", [x], name=node.name)
                graph.insert_before(node, ident)
                ident.outputs[0].shape, ident.outputs[0].type = node.outputs[0].shape, \
                    node.outputs[0].type
                _swap(graph, node, ident)
                bypass(graph, ident)
            else:
                merged = ir.node("Transpose", [x], {"perm": combined}, name=node.name)
                graph.insert_before(node, merged)
                merged.outputs[0].shape, merged.outputs[0].type = node.outputs[0].shape, \
                    node.outputs[0].type
                _swap(graph, node, merged)
            if not first.outputs[0].uses() and not first.outputs[0].is_graph_output():
                graph.remove(first, safe=True)
            modified = True
        return PassResult(model, modified=modified)


def _swap(graph: ir.Graph, old: ir.Node, new: ir.Node) -> None:
    out = old.outputs[0]
    name = out.name
    ir.convenience.replace_all_uses_with(out, new.outputs[0], replace_graph_outputs=True)
    graph.remove(old, safe=True)
    new.outputs[0].name = name
