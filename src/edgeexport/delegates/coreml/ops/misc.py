"""Graph plumbing: Identity and Dropout alias their input, Constant is emitted where it is used,
Cast and CastLike follow the program's dtypes (float -> the program precision, int64 -> int32).
"""

from __future__ import annotations

from typing import Any

import onnx_ir as ir

from edgeexport.delegates.coreml.context import REGISTRY, EmitContext, attr

_CAST = {ir.DataType.FLOAT: None, ir.DataType.FLOAT16: None, ir.DataType.DOUBLE: None,
         ir.DataType.INT32: "int32", ir.DataType.INT64: "int32", ir.DataType.BOOL: "bool"}


@REGISTRY.op("Identity", "Dropout")
def emit_alias(node: ir.Node, ctx: EmitContext) -> None:
    ctx.set(node.outputs[0], ctx.get(node.inputs[0]))


@REGISTRY.op("Constant")
def emit_constant(node: ir.Node, ctx: EmitContext) -> None:
    pass  # ctx.get() makes the const op at the first use, with the value's name


def _cast_to(node: ir.Node) -> ir.DataType | None:
    if node.op_type == "CastLike":
        return node.inputs[1].dtype if node.inputs[1] is not None else None
    return ir.DataType(attr(node, "to"))


def _check_cast(node: ir.Node, ctx: Any) -> str | None:
    to = _cast_to(node)
    if to not in _CAST:
        return f"{node.op_type} to {getattr(to, 'name', 'an unknown type')} has no CoreML mapping"
    return None


@REGISTRY.op("Cast", "CastLike", check=_check_cast,
             conditions="to float, int32/int64 (as int32) or bool")
def emit_cast(node: ir.Node, ctx: EmitContext) -> None:
    dtype = _CAST[_cast_to(node)] or ctx.float_dtype
    x = ctx.get(node.inputs[0])
    from coremltools.converters.mil.mil import types

    if types.builtin_to_string(x.dtype) == dtype:
        ctx.set(node.outputs[0], x)
        return
    ctx.set(node.outputs[0], ctx.mb.cast(x=x, dtype=dtype, name=ctx.name(node.outputs[0])))
