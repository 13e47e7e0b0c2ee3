"""QuantizeLinear / DequantizeLinear of a QDQ graph. Quantized weights are folded into their
readers (Convolution / InnerProduct int8, or float); activation Q/DQ pairs run in float.
"""

from __future__ import annotations

import onnx_ir as ir

from edgeexport.delegates.vulkan.context import EmitContext
from edgeexport.delegates.vulkan.ops._common import check_all, static
from edgeexport.delegates.vulkan.quant import why_not_fake_quant
from edgeexport.delegates.vulkan.registry import REGISTRY


def _check(node: ir.Node, ctx: object) -> str | None:
    reason = why_not_fake_quant(node)
    if reason is not None:
        return reason
    x = node.inputs[0]
    if node.op_type == "DequantizeLinear" and x.is_graph_input():
        return "an int8 model input: ncnn models are fed float (quantize inside the model)"
    if node.op_type == "QuantizeLinear" and node.outputs[0].is_graph_output():
        return "an int8 model output: ncnn blobs are float"
    return None


@REGISTRY.op("QuantizeLinear", "DequantizeLinear", check=check_all(static, _check),
             conditions="per-tensor activations (run float), weights folded into their layer")
def emit_qdq(node: ir.Node, ctx: EmitContext) -> None:
    # a Q -> DQ pair is the identity on ncnn's float blob (the int8 layers reading the DQ
    # quantize their input themselves with the scale from quant.input_scale)
    ctx.alias(node.outputs[0], ctx.blob(node.inputs[0]))
