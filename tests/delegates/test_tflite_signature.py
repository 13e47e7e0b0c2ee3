"""The I/O a .tflite declares: an output that a later Transpose reads (Swin's last hidden state
before its pooling) is declared in its own axis order, not the Transpose's."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
from onnx import TensorProto, helper, numpy_helper

from edgeexport.delegates.tflite import emit_model
from edgeexport.delegates.tflite.signature import io_tensors


def test_an_output_read_by_a_transpose_keeps_its_own_axis_order() -> None:
    nodes = [helper.make_node("Mul", ["x", "two"], ["hidden"]),
             helper.make_node("Transpose", ["hidden"], ["t"], perm=[0, 2, 1]),
             helper.make_node("ReduceMean", ["t", "ax"], ["pooled"], keepdims=0)]
    graph = helper.make_graph(
        nodes, "swin_tail", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 4])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, [1, 6, 4]),
         helper.make_tensor_value_info("pooled", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(np.array(2, np.float32), "two"),
         numpy_helper.from_array(np.array([2], np.int64), "ax")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model = ir.serde.deserialize_model(onnx.shape_inference.infer_shapes(proto))
    outs = {o["name"]: o for o in io_tensors(emit_model(model).data)["outputs"]}
    assert outs["hidden"]["shape"] == [1, 6, 4]
    assert outs["hidden"]["axes_from_ir"] == [0, 1, 2]
