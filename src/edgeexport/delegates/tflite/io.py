"""The graph boundary a mobile app sees: `--io-layout nhwc` (camera frames are NHWC: image inputs
stored channels-last, no TRANSPOSE at the front) and `--int8-io` (int8 inputs and outputs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport import ir as eir
from edgeexport.delegates.tflite import layout as L
from edgeexport.delegates.tflite import quant
from edgeexport.delegates.tflite.context import EmitContext
from edgeexport.errors import UsageError
from edgeexport.target_options import TfliteOptions

IO_LAYOUTS = ("nchw", "nhwc")


def io_layout(options: TfliteOptions | None) -> str:
    """--io-layout (the TfliteTarget hands its typed options down; None: the default)."""
    return options.io_layout if options is not None else "nchw"


def int8_io(options: TfliteOptions | None) -> bool:
    return bool(options.int8_io) if options is not None else False


def check_int8_io(signature: dict[str, list[dict[str, Any]]], options: Any) -> None:
    """--int8-io on a graph whose inputs and outputs no QuantizeLinear touches is a mistake."""
    if not int8_io(options):
        return
    tensors = signature["inputs"] + signature["outputs"]
    if not any(t["quantization"] is not None for t in tensors):
        raise UsageError("--int8-io: no input or output of the model is quantized; convert with "
                         "--quantize int8 (int8 I/O takes the scales calibration found)")


def _input_params(value: ir.Value) -> dict[str, Any] | None:
    """The int8 parameters of the first QuantizeLinear reading a float input (the quantizer puts
    one right after every float input it quantizes); None when nothing quantizes it."""
    for node, _ in value.uses():
        if node.op_type == "QuantizeLinear":
            p = quant.params(node)
            if p["dtype"] == "int8" and p["scale"].size == 1:
                return p
    return None


def define_input(ctx: EmitContext, value: ir.Value) -> None:
    """The input tensor, stored channels-last (nhwc) and/or int8 as the options ask."""
    options = ctx.options
    perm = L.channels_last(4) if io_layout(options) == "nhwc" and eir.is_image(value) \
        else L.identity(ctx.rank(value))
    q = _input_params(value) if int8_io(options) else None
    shape = L.physical_shape(ctx.shape(value), perm)
    idx = ctx.fb.tensor(value.name, shape, np.int8 if q else ctx.dtype(value), quant=q)
    ctx.define(value, idx, perm)
    if q is not None:
        # the input *is* the int8 tensor its QuantizeLinear makes: that node becomes an alias
        # (emit_quantize), float readers get one DEQUANTIZE
        ctx.quant[value.name] = q
    ctx.fb.inputs.append(idx)


def int8_output(ctx: EmitContext, value: ir.Value) -> int | None:
    """With --int8-io, the int8 tensor named after a quantized graph output (None otherwise:
    an output the quantizer left float stays float, and manifest.json says so)."""
    if not int8_io(ctx.options) or value.name not in ctx.quant:
        return None
    stored = ctx.values[value.name]
    if ctx.fb.dtype(stored.index) != np.int8:
        return None
    ctx.int8_node = True  # move the int8 bytes, no DEQUANTIZE
    if not L.is_identity(stored.layout):
        idx = ctx.input(value, L.identity(ctx.rank(value)), name=value.name)
    else:
        q = {k: v for k, v in ctx.quant[value.name].items() if k != "int_value"}
        idx = ctx.fb.tensor(value.name, ctx.fb.shape(stored.index), np.int8, quant=q)
        ctx.reshape(stored.index, idx)
    ctx.int8_node = False
    ctx.define(value, idx, L.identity(ctx.rank(value)))
    return idx
