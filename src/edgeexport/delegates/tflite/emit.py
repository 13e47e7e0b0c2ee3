"""Walks the IR once, in order, calling each node's registered emitter; the graph boundary keeps
the IR's names, shapes and layouts (at most one transpose per boundary tensor).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.tflite import io
from edgeexport.delegates.tflite import layout as L
from edgeexport.delegates.tflite import ops  # noqa: F401  (registers the op families)
from edgeexport.delegates.tflite import quant
from edgeexport.delegates.tflite.context import EmitContext
from edgeexport.delegates.tflite.registry import REGISTRY
from edgeexport.delegates.registry import supported_by
from edgeexport.errors import UnsupportedOpError


@dataclass
class Emitted:
    data: bytes
    ops: list[str]
    tensor_map: dict[str, Any] = field(default_factory=dict)
    #: the writer's tables (tensors, operators, opcodes) for partitioners that inspect them
    model: Any = None


def emit_model(model: ir.Model, precision: str = "fp32", options: Any = None,
               target: str = "tflite", metadata: dict[str, bytes] | None = None) -> Emitted:
    """The .tflite bytes of an IR model (fp32 or fp16 weights; QDQ graphs become int8)."""
    from edgeexport.exporter import node_source

    ctx = EmitContext(model, precision, options, target)
    graph = model.graph
    for v in graph.inputs:
        if v.name in graph.initializers:
            continue
        io.define_input(ctx, v)  # as the PyTorch model takes it, or NHWC / int8 (options)
    quant.prepare(ctx)  # QDQ: records quantization and picks the int8 nodes before emission
    for node in graph:
        if id(node) in ctx.skip:
            continue
        reason = REGISTRY.why_not(node, ctx)
        if reason is not None:
            raise UnsupportedOpError(node.op_type, node.name or "", target=target, reason=reason,
                                     source=node_source(node),
                                     supported_by=supported_by(node.op_type))
        ctx.int8_node = id(node) in ctx.int8_nodes
        try:
            REGISTRY.rule(node.op_type).emit(node, ctx)
        except (NotImplementedError, ValueError, KeyError) as exc:
            raise UnsupportedOpError(node.op_type, node.name or "", target=target,
                                     reason=str(exc) or type(exc).__name__,
                                     source=node_source(node),
                                     supported_by=supported_by(node.op_type)) from exc
    for v in graph.outputs:
        if ctx.const(v) is not None and v.name not in ctx.values:
            # an output that does not depend on the inputs (a detector's anchors, a folded
            # full_like): a constant tensor in the graph's output list, which LiteRT returns as is
            ctx.fb.outputs.append(ctx.fb.tensor(v.name, ctx.const(v).shape, ctx.const(v).dtype,
                                                ctx.const(v)))
            continue
        idx = io.int8_output(ctx, v)
        if idx is not None:
            ctx.fb.outputs.append(idx)
            continue
        stored = ctx.values[v.name]
        idx = stored.index
        if (not L.is_identity(stored.layout) or ctx.fb.name(idx) != v.name
                or v.name in ctx.quant):
            idx = _boundary(ctx, v)
        ctx.fb.outputs.append(idx)
    dead = ctx.fb.drop_dead_ops()
    if dead:
        ctx.tensor_map = {k: v for k, v in ctx.tensor_map.items() if v[0] not in dead}
    ctx.fb.metadata.update(metadata or {})
    return Emitted(ctx.fb.finish(ctx.tensor_map), ctx.fb.op_names(), ctx.tensor_map, ctx.fb)


def _boundary(ctx: EmitContext, v: ir.Value) -> int:
    """The output tensor named after the IR output, in the IR's layout."""
    stored = ctx.values[v.name]
    ctx.int8_node = False
    if v.name in ctx.quant:  # outputs are float: DEQUANTIZE into the output's name
        idx = ctx.fb.tensor(v.name, ctx.shape(v), np.float32)
        if L.is_identity(stored.layout) and ctx.fb.dtype(stored.index) != np.float32:
            ctx.fb.op("DEQUANTIZE", [stored.index], [idx])
        else:
            ctx.reshape(ctx.input(v, L.identity(ctx.rank(v))), idx)
        ctx.define(v, idx, L.identity(ctx.rank(v)))
        return idx
    if not L.is_identity(stored.layout):
        idx = ctx.input(v, L.identity(ctx.rank(v)), name=v.name)
    else:  # an alias of another value (Identity, a no-op reshape): copy under the IR name
        q = ctx.quant.get(v.name)
        idx = ctx.fb.tensor(v.name, ctx.fb.shape(stored.index), ctx.fb.dtype(stored.index),
                            quant=q)
        ctx.fb.op("RESHAPE", [stored.index, ctx.int32(ctx.fb.shape(stored.index),
                                                      f"shape{ctx.fb.shape(stored.index)}")],
                  [idx])
    ctx.define(v, idx, L.identity(ctx.rank(v)))
    return idx

