"""Walk the IR graph in order, let each op's registered emitter add ncnn layers, then write
`model.param`, `model.bin` and `model.io.json` (IR names, shapes and dtypes of the blobs).
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx_ir as ir

from edgeexport import ir as eir
from edgeexport.delegates.vulkan.context import (VIRTUAL_OK, Blob, EmitContext, const_array,
                                                 default_kept, expressible, input_layers,
                                                 insert_splits, static_shape)
from edgeexport.delegates.vulkan.ncnn_format import param_text, weight_bytes
from edgeexport.delegates.vulkan.ops import attention
from edgeexport.delegates.registry import supported_by
from edgeexport.delegates.vulkan.registry import REGISTRY
from edgeexport.errors import ConversionError, UnsupportedOpError, UsageError

IO_SUFFIX = ".io.json"


def build(model: ir.Model, fp16: bool) -> tuple[EmitContext, list[tuple[ir.Value, Blob]]]:
    """The ncnn layers of a model (in memory), and the graph inputs with their blobs."""
    from edgeexport.exporter import node_source

    ctx = EmitContext(model, fp16)
    inputs = []
    for value in model.graph.inputs:
        if value.name in model.graph.initializers:
            continue
        shape = static_shape(value)
        kept = default_kept(shape)
        if kept is None:
            raise UsageError(f"input '{value.name}': {expressible(shape)}; ncnn blobs have no "
                             "batch axis: export the model with batch 1 for the vulkan target")
        inputs.append((value, ctx.define(value, ctx.unique(value.name), kept)))
    # attention blocks become one MultiHeadAttention layer, emitted at their last node (where
    # every value they read from outside has been produced)
    fused = {}
    for att in attention.find(model.graph):
        order = {id(n): i for i, n in enumerate(model.graph)}
        fused[id(max(att.nodes, key=lambda n: order[id(n)]))] = att
        for node in att.nodes:
            ctx.absorb(node)
    for node in model.graph:
        if id(node) in fused:
            attention.emit(fused[id(node)], ctx)
            continue
        if ctx.is_absorbed(node):
            continue
        reason = REGISTRY.why_not(node, None)
        if reason is None and node.op_type not in VIRTUAL_OK:
            reason = next((expressible(static_shape(o)) for o in node.outputs
                           if o is not None and expressible(static_shape(o))), None)
        if reason is not None:
            raise UnsupportedOpError(node.op_type, node.name or "?", target="vulkan",
                                     reason=reason, source=node_source(node),
                                     supported_by=supported_by(node.op_type, besides="vulkan"))
        if all(o is None or const_array(o) is not None for o in node.outputs):
            continue  # a weight's Cast or DequantizeLinear: folded, materialized where read
        REGISTRY.rule(node.op_type).emit(node, ctx)
    for value in model.graph.outputs:
        if ctx.blob(value).kept is None:  # an output that is a constant still becomes a blob
            raise UsageError(f"output '{value.name}': {expressible(static_shape(value))}")
    for value, _ in inputs:
        if value.name in ctx.int_inputs and any(
                use.node.op_type != "Gather" or use.idx != 1 for use in value.uses()):
            raise ConversionError(f"input '{value.name}' feeds an embedding and other ops; "
                                  "ncnn would need it both as int32 ids and as float values")
    return ctx, inputs


def io_description(model: ir.Model, ctx: EmitContext, inputs: list[tuple[ir.Value, Blob]],
                   precision: str) -> dict:
    def describe(value: ir.Value, blob: Blob) -> dict:
        dtype = eir.np_dtype(value.dtype).name if value.dtype is not None else "float32"
        feed = "int32" if value.name in ctx.int_inputs else "float32"
        return {"name": value.name, "blob": blob.name, "shape": list(blob.shape),
                "ncnn_shape": list(blob.ncnn_shape), "dtype": dtype, "feed": feed}

    return {
        "format": "edgeexport-ncnn-io", "version": 1, "precision": precision,
        "inputs": [describe(v, b) for v, b in inputs],
        "outputs": [describe(v, ctx.blobs[v.name]) for v in model.graph.outputs],
        # every IR value that has a blob of its own, for per-layer parity by blob name
        "blobs": {name: {"blob": b.name, "shape": list(b.shape)}
                  for name, b in sorted(ctx.blobs.items())},
    }


def emit_model(model: ir.Model, out_dir: Path, param_name: str, precision: str) -> list[Path]:
    """Write the three files; returns [param, bin, io.json]."""
    if precision not in ("fp16", "fp32"):
        raise UsageError(f"vulkan target: precision must be fp16 or fp32, not {precision}")
    ctx, inputs = build(model, fp16=precision == "fp16")
    layers = input_layers(inputs) + ctx.layers
    layers = insert_splits(layers)
    out_dir = Path(out_dir)
    param = out_dir / param_name
    weights = param.with_suffix(".bin")
    io = param.with_name(param.stem + IO_SUFFIX)
    eir.write_atomic(param, param_text(layers).encode())
    eir.write_atomic(weights, weight_bytes(layers, ctx.fp16))
    desc = io_description(model, ctx, inputs, precision)
    eir.write_atomic(io, (json.dumps(desc, indent=1, sort_keys=True) + "\n").encode())
    return [param, weights, io]
