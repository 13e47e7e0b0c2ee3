"""IR -> MIL Program with coremltools' Builder: typed inputs, one registered emitter per node,
fp16 programs cast at the boundary (inputs in, outputs out) and compute in fp16 inside.
"""

from __future__ import annotations

import logging
from typing import Any

import onnx_ir as ir

from edgeexport.delegates.coreml.context import REGISTRY, EmitContext, Options, mil_name
from edgeexport.delegates.registry import supported_by
from edgeexport.errors import ConversionError, UnsupportedOpError

logging.getLogger("coremltools").setLevel(logging.ERROR)  # its import-time chatter about macOS

#: IR element type -> MIL placeholder dtype (ML Programs take int32, not int64, inputs)
_INPUT_TYPES = {ir.DataType.FLOAT: "fp32", ir.DataType.FLOAT16: "fp16",
                ir.DataType.INT32: "int32", ir.DataType.INT64: "int32", ir.DataType.BOOL: "bool"}


def _opset(ios: int) -> Any:
    import coremltools as ct

    return getattr(ct.target, f"iOS{ios}")


def _placeholder(value: ir.Value) -> Any:
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    if value.shape is None or not all(isinstance(d, int) for d in value.shape):
        raise ConversionError(f"coreml: input '{value.name}' needs a static shape "
                              "(use --input-shape; flexible shapes are not emitted yet)")
    if len(value.shape) == 0:
        raise ConversionError(f"coreml: input '{value.name}' is a scalar; CoreML inputs need "
                              "rank 1 or more (export it with shape [1])")
    dtype = _INPUT_TYPES.get(value.dtype)
    if dtype is None:
        raise ConversionError(f"coreml: input '{value.name}' of type {value.dtype} cannot be a "
                              "CoreML input")
    return mb.placeholder(shape=tuple(value.shape), dtype=types.string_to_builtin(dtype))


def build_program(model: ir.Model, options: Options) -> tuple[Any, dict[str, str]]:
    """The MIL Program of the IR and the IR name of each MIL input/output name."""
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import Function, Program, types

    from coremltools.converters.mil.converter import _reset_conversion_state

    # the Builder numbers the names it makes up in a class-wide counter: reset it, or a second
    # conversion in the same process names its constants differently (not byte-identical)
    _reset_conversion_state()
    graph = model.graph
    inputs = [v for v in graph.inputs if v.name not in graph.initializers]
    io_names = {mil_name(v.name): v.name for v in list(inputs) + list(graph.outputs)}
    placeholders = {mil_name(v.name): _placeholder(v) for v in inputs}
    prog = Program()
    with Function(placeholders, opset_version=_opset(options.ios)) as func:
        ctx = EmitContext(mb, options, outputs={v.name for v in graph.outputs})
        for v in inputs:
            var = func.inputs[mil_name(v.name)]
            if ctx.fp16 and var.dtype == types.fp32:
                var = mb.cast(x=var, dtype="fp16", name=mil_name(v.name) + "__fp16")
            ctx.vars[v.name] = var
        for node in graph:
            _emit(node, ctx)
        outs = []
        for v in graph.outputs:
            var = ctx.get(v)
            want = "fp32" if var.dtype in (types.fp16, types.fp32) else None
            if want and var.dtype != types.fp32:
                var = mb.cast(x=var, dtype=want, name=mil_name(v.name))
            elif var.name != mil_name(v.name):
                var = mb.identity(x=var, name=mil_name(v.name))
            outs.append(var)
        func.set_outputs(outs)
    prog.add_function("main", func)
    return prog, io_names


def _emit(node: ir.Node, ctx: EmitContext) -> None:
    rule = REGISTRY.rule(node.op_type) if node.domain in ("", "ai.onnx") else None
    reason = REGISTRY.why_not(node, ctx)
    if rule is None or reason is not None:
        raise UnsupportedOpError(node.op_type, node.name or "", target="coreml",
                                 reason=reason or "", source=_source(node),
                                 supported_by=supported_by(node.op_type))
    try:
        rule.emit(node, ctx)
    except (ValueError, TypeError) as exc:  # MIL type inference rejected what we built
        raise ConversionError(f"coreml: node '{node.name}' ({node.op_type}): {exc}") from exc


def _source(node: ir.Node) -> str | None:
    try:
        from edgeexport.exporter import node_source
    except ImportError:
        return None
    return node_source(node)


