"""Tensors made from shapes and scalars known when the program is built: Shape and Size become
constants of the static shape, ConstantOfShape is MIL `fill`, Range is an int32 `range_1d` scaled
and shifted (start + i * delta, the ONNX definition, in the program's precision).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport import ir as eir
from edgeexport.delegates.coreml.context import (
    REGISTRY, EmitContext, all_checks, attr, const_inputs, need_static_input_shape, static_shape,
)

_FILLABLE = (np.float16, np.float32, np.float64, np.int32, np.int64, np.bool_)
_INT32 = np.iinfo(np.int32)


def _fits_int32(*values: int) -> bool:
    """ML Programs hold int64 as int32: a value outside its range would change."""
    return all(_INT32.min <= v <= _INT32.max for v in values)


@REGISTRY.op("Shape", check=need_static_input_shape, conditions="static input shape")
def emit_shape(node: ir.Node, ctx: EmitContext) -> None:
    shape = static_shape(node.inputs[0])
    dims = shape[slice(attr(node, "start", 0), attr(node, "end", None))]  # clamps like ONNX
    ctx.set(node.outputs[0], ctx.mb.const(val=np.array(dims, np.int32),
                                          name=ctx.name(node.outputs[0])))


@REGISTRY.op("Size", check=need_static_input_shape, conditions="static input shape")
def emit_size(node: ir.Node, ctx: EmitContext) -> None:
    size = math.prod(static_shape(node.inputs[0]))
    ctx.set(node.outputs[0], ctx.mb.const(val=np.int32(size), name=ctx.name(node.outputs[0])))


def _fill_value(node: ir.Node) -> np.ndarray:
    value = attr(node, "value", None)
    return np.zeros((), np.float32) if value is None else np.asarray(value.numpy()).reshape(())


def _check_constant_of_shape(node: ir.Node, ctx: Any) -> str | None:
    dims = eir.initializer_array(node.inputs[0])
    if dims.size == 0 or (dims <= 0).any():
        return "ConstantOfShape needs a shape of rank >= 1 without zero sizes for CoreML"
    value = _fill_value(node)
    if value.dtype.type not in _FILLABLE:
        return (f"ConstantOfShape of {value.dtype} has no CoreML mapping "
                "(float, int32/int64 or bool)")
    if value.dtype.kind == "i" and not _fits_int32(int(value)):
        return "ConstantOfShape value outside int32 has no CoreML mapping (int64 is int32 there)"
    return None


@REGISTRY.op("ConstantOfShape", check=all_checks(const_inputs(0), _check_constant_of_shape),
             conditions="constant shape without zero sizes")
def emit_constant_of_shape(node: ir.Node, ctx: EmitContext) -> None:
    value = ctx.to_mil_array(_fill_value(node))
    ctx.set(node.outputs[0], ctx.mb.fill(shape=np.array(ctx.ints(node.inputs[0]), np.int32),
                                         value=value[()], name=ctx.name(node.outputs[0])))


def _range_args(node: ir.Node) -> tuple[np.ndarray, np.ndarray, int]:
    start, limit, delta = (eir.initializer_array(v).reshape(()) for v in node.inputs[:3])
    n = max(math.ceil((float(limit) - float(start)) / float(delta)), 0)
    return start, delta, n


def _check_range(node: ir.Node, ctx: Any) -> str | None:
    start = eir.initializer_array(node.inputs[0])
    if start.dtype.kind not in "fi":
        return f"Range of {start.dtype} has no CoreML mapping"
    if float(eir.initializer_array(node.inputs[2]).reshape(())) == 0:
        return "Range with delta 0"
    start, delta, n = _range_args(node)
    if n == 0:
        return "an empty Range has no CoreML mapping (no zero-size tensors)"
    if start.dtype.kind == "i" and not _fits_int32(int(start), int(start) + (n - 1) * int(delta)):
        return "Range values outside int32 have no CoreML mapping (int64 is int32 there)"
    return None


@REGISTRY.op("Range", check=all_checks(const_inputs(0, 1, 2), _check_range),
             conditions="constant start, limit and delta; not empty")
def emit_range(node: ir.Node, ctx: EmitContext) -> None:
    # the length comes from ONNX's ceil((limit - start) / delta); an int32 iota then scaled and
    # shifted computes ONNX's start + i * delta (numpy-like range_1d on floats would add up the
    # step in the output precision instead)
    start, delta, n = _range_args(node)
    out = node.outputs[0]
    name = ctx.name(out)
    steps: list[tuple[str, dict[str, Any]]] = []  # applied to the iota; the last one is `out`
    if start.dtype.kind == "f":
        steps.append(("cast", {"dtype": ctx.float_dtype}))
    if delta != 1:
        steps.append(("mul", {"y": ctx.to_mil_array(delta)[()]}))
    if start != 0:
        steps.append(("add", {"y": ctx.to_mil_array(start)[()]}))
    var = ctx.mb.range_1d(start=np.int32(0), end=np.int32(n), step=np.int32(1),
                          name=name + "__iota" if steps else name)
    for i, (op, kwargs) in enumerate(steps):
        var = getattr(ctx.mb, op)(x=var, name=name if i == len(steps) - 1 else f"{name}__{op}",
                                  **kwargs)
    ctx.set(out, var)
