"""Fold an inference BatchNormalization over the features of a Linear (BatchNorm1d heads, LeViT's
Linear+BN) into the MatMul's weight columns and bias, through Reshapes that keep the last axis.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx_ir.passes import InPlacePass, PassResult

from edgeexport import ir as eir


def _const(value: ir.Value | None) -> np.ndarray | None:
    return None if value is None else eir.initializer_array(value)


def _single_use(value: ir.Value) -> bool:
    return len(value.uses()) == 1 and not value.is_graph_output()


def _linear_before(bn: ir.Node) -> tuple[ir.Node, ir.Node | None] | None:
    """The MatMul (constant weight) and its bias Add (constant) whose features the BN
    normalizes: its input is [N, C] with C the MatMul's output columns, reached through
    single-use Reshapes that keep the last axis."""
    x = bn.inputs[0]
    if x is None or x.shape is None or len(x.shape) != 2 or not isinstance(x.shape[1], int):
        return None
    channels = x.shape[1]
    node = x.producer()
    while node is not None and node.op_type == "Reshape" and _single_use(node.outputs[0]):
        src = node.inputs[0]
        if src is None or src.shape is None or not src.shape or src.shape[-1] != channels:
            return None
        node = src.producer()
    add = None
    if node is not None and node.op_type == "Add" and _single_use(node.outputs[0]):
        bias = next((_const(v) for v in node.inputs if _const(v) is not None), None)
        if bias is None or bias.size != channels:
            return None
        add, node = node, next((v.producer() for v in node.inputs if _const(v) is None), None)
    if node is None or node.op_type != "MatMul" or not _single_use(node.outputs[0]):
        return None
    w = _const(node.inputs[1])
    if w is None or w.ndim != 2 or w.shape[1] != channels:
        return None
    return node, add


def _initializer(graph: ir.Graph, array: np.ndarray, name: str) -> ir.Value:
    base, k = name, 0
    while name in graph.initializers:
        k += 1
        name = f"{base}_{k}"
    value = ir.Value(name=name, shape=ir.Shape(array.shape),
                     type=ir.TensorType(ir.DataType.from_numpy(array.dtype)),
                     const_value=ir.tensor(array))
    graph.register_initializer(value)
    return value


def _replace_const(graph: ir.Graph, node: ir.Node, index: int, array: np.ndarray) -> None:
    """A new initializer for this node only (the old one may have other readers)."""
    node.replace_input_with(index, _initializer(graph, array, f"{node.inputs[index].name}_bn"))


class FoldBatchNormIntoLinearPass(InPlacePass):
    name = "fold-batchnorm-into-linear"

    def call(self, model: ir.Model) -> PassResult:
        graph, modified = model.graph, False
        for bn in list(graph):
            if bn.op_type != "BatchNormalization" or len(bn.outputs) != 1 or \
                    bn.attributes.get_int("training_mode", 0):
                continue
            params = [_const(v) for v in bn.inputs[1:5]]
            found = _linear_before(bn)
            if found is None or any(p is None for p in params):
                continue
            matmul, add = found
            scale, beta, mean, var = (p.astype(np.float64) for p in params)
            s = scale / np.sqrt(var + bn.attributes.get_float("epsilon", 1e-5))
            w = _const(matmul.inputs[1])
            _replace_const(graph, matmul, 1, (w * s).astype(w.dtype))
            shift = (beta - mean * s).astype(w.dtype)
            if add is not None:
                i = next(i for i, v in enumerate(add.inputs) if _const(v) is not None)
                bias = _const(add.inputs[i])
                _replace_const(graph, add, i, (bias.reshape(-1) * s + shift).astype(bias.dtype)
                               .reshape(bias.shape))
                result = bn.inputs[0]
            else:  # the BN's shift becomes the Linear's bias, in the BN's place
                bias = _initializer(graph, shift, f"{bn.name or 'bn'}_shift")
                new = ir.Node("", "Add", [bn.inputs[0], bias], name=f"{bn.name}_as_add")
                new.outputs[0].name = f"{bn.outputs[0].name}_add"
                new.outputs[0].shape, new.outputs[0].type = bn.inputs[0].shape, \
                    bn.inputs[0].type
                graph.insert_before(bn, new)
                result = new.outputs[0]
            out = bn.outputs[0]
            name = out.name
            out.replace_all_uses_with(result, replace_graph_outputs=True)
            graph.remove(bn, safe=True)
            if result.is_graph_output():  # the graph output keeps its name
                result.name = name
            modified = True
        return PassResult(model, modified=modified)
