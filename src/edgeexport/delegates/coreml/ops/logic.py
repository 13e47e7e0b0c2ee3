"""Comparisons, boolean logic and Where: MIL's equal/less/... (bool results), logical_* and
select, all broadcasting like ONNX.
"""

from __future__ import annotations

import onnx_ir as ir

from edgeexport.delegates.coreml.context import REGISTRY, EmitContext

_COMPARE = {"Equal": "equal", "Less": "less", "LessOrEqual": "less_equal",
            "Greater": "greater", "GreaterOrEqual": "greater_equal"}
_LOGIC = {"And": "logical_and", "Or": "logical_or", "Xor": "logical_xor"}


@REGISTRY.op(*_COMPARE, *_LOGIC)
def emit_binary_logic(node: ir.Node, ctx: EmitContext) -> None:
    a, b = node.inputs
    mil_op = _COMPARE.get(node.op_type) or _LOGIC[node.op_type]
    ctx.set(node.outputs[0], getattr(ctx.mb, mil_op)(x=ctx.get(a), y=ctx.get(b),
                                                     name=ctx.name(node.outputs[0])))


@REGISTRY.op("Not")
def emit_not(node: ir.Node, ctx: EmitContext) -> None:
    ctx.set(node.outputs[0], ctx.mb.logical_not(x=ctx.get(node.inputs[0]),
                                                name=ctx.name(node.outputs[0])))


@REGISTRY.op("Where")
def emit_where(node: ir.Node, ctx: EmitContext) -> None:
    cond, a, b = node.inputs
    ctx.set(node.outputs[0], ctx.mb.select(cond=ctx.get(cond), a=ctx.get(a), b=ctx.get(b),
                                           name=ctx.name(node.outputs[0])))
