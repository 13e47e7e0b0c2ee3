"""Graph plumbing: Identity and Dropout are aliases, Cast is CAST, Constant is folded into the
constants of its users.
"""

from __future__ import annotations

import onnx_ir as ir
from ai_edge_litert import schema_py_generated as fb

from edgeexport import ir as eir
from edgeexport.delegates.tflite.context import EmitContext
from edgeexport.delegates.tflite.ops.elementwise import _static
from edgeexport.delegates.tflite.registry import REGISTRY
from edgeexport.delegates.tflite.writer import TENSOR_TYPES


@REGISTRY.op("Identity", "Dropout", check=_static, conditions="static shapes")
def emit_identity(node: ir.Node, ctx: EmitContext) -> None:
    ctx.alias(node.outputs[0], node.inputs[0])


@REGISTRY.op("Constant")
def emit_constant(node: ir.Node, ctx: EmitContext) -> None:
    """Nothing to emit: users read the value through `initializer_array`."""


def _check_cast(node: ir.Node, ctx: object) -> str | None:
    to = node.attributes["to"].as_int()
    try:
        if eir.np_dtype(ir.DataType(to)) not in TENSOR_TYPES:
            return f"cast to {ir.DataType(to).name}"
    except (TypeError, ValueError):
        return f"cast to {ir.DataType(to).name}"
    return _static(node, ctx)


@REGISTRY.op("Cast", check=_check_cast, conditions="to a TFLite tensor type")
def emit_cast(node: ir.Node, ctx: EmitContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    if ctx.array(out) is not None:
        return  # a Cast of a constant is folded: users read the cast array (see context.folded)
    lay = ctx.layout(x)
    if ctx.dtype(x) == ctx.dtype(out):
        ctx.alias(out, x)
        return
    y = ctx.output(out, lay)
    ctx.fb.op("CAST", [ctx.input(x, lay)], [y], fb.CastOptionsT())
