"""Remove nodes that compute nothing at inference: Identity, Dropout (inference mode, mask
unused), Cast to the type it already has, Transpose with the identity permutation.
"""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes import InPlacePass, PassResult

from edgeexport.ir import initializer_array


def known_dtype(value: ir.Value) -> ir.DataType | None:
    """The element type of a value, from its type or, failing that, from a Cast producing it."""
    if value.dtype is not None:
        return value.dtype
    producer = value.producer()
    if producer is not None and producer.op_type == "Cast" and producer.domain == "":
        return ir.DataType(producer.attributes.get_int("to"))
    return None


def bypass(graph: ir.Graph, node: ir.Node) -> bool:
    """Replace node's first output by its first input and remove the node. When the output is a
    graph output the input takes over its name (impossible for graph inputs and initializers)."""
    src, out = node.inputs[0], node.outputs[0]
    if src is None:
        return False
    if out.is_graph_output():
        if src.is_graph_input() or src.is_initializer() or src.is_graph_output():
            return False
        name = out.name
        ir.convenience.replace_all_uses_with(out, src, replace_graph_outputs=True)
        graph.remove(node, safe=True)
        src.name = name
        return True
    ir.convenience.replace_all_uses_with(out, src)
    graph.remove(node, safe=True)
    return True


def _is_noop(node: ir.Node) -> bool:
    if node.domain not in ("", "ai.onnx"):
        return False
    op = node.op_type
    if op == "Identity":
        return True
    if op == "Dropout":
        mask_used = len(node.outputs) > 1 and (node.outputs[1].uses()
                                               or node.outputs[1].is_graph_output())
        training = node.inputs[2] if len(node.inputs) > 2 else None
        if training is not None:
            t = initializer_array(training)
            if t is None or bool(t):
                return False
        return not mask_used
    if op == "Cast":
        to = node.attributes.get_int("to")
        return known_dtype(node.inputs[0]) == to
    if op == "Transpose":
        perm = node.attributes.get_ints("perm")
        return perm is not None and list(perm) == list(range(len(perm)))
    return False


class RemoveNoOpsPass(InPlacePass):
    name = "remove-noops"

    def call(self, model: ir.Model) -> PassResult:
        modified = False
        for node in list(model.graph):
            if _is_noop(node) and bypass(model.graph, node):
                modified = True
        return PassResult(model, modified=modified)
