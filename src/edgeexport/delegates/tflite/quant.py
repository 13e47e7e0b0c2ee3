"""QDQ graphs -> int8 TFLite. A float op whose activations all come through DequantizeLinear and
whose outputs all go to QuantizeLinear runs as the int8 kernel; Q/DQ pairs vanish between int8
ops, and a requantize (QUANTIZE int8 -> int8) appears where TFLite fixes an output scale. Ops
whose int8 form XNNPACK rejects or runs slower stay float, and float readers of a QUANTIZE
read the float tensor it was made from (no QUANTIZE -> DEQUANTIZE round trips).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport import ir as eir
from edgeexport.delegates.tflite.context import EmitContext, activation_kind, clip_bounds
from edgeexport.delegates.tflite.registry import REGISTRY
from edgeexport.quantize.embedding import gathered_int8_rows

#: ops with int8 TFLite kernels that the emitters handle in int8
INT8_OPS = {
    "Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "MaxPool", "AveragePool",
    "GlobalAveragePool", "ReduceMean", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose",
    "Concat", "Relu", "Clip", "HardSwish", "Sigmoid", "Softmax", "Tanh", "Pad", "Resize",
    "LeakyRelu", "Gather", "Slice", "Split", "Identity", "Dropout",
}
#: ops that move int8 data without rescaling it: the output keeps the input's parameters
SAME_QUANT = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "MaxPool", "Pad",
              "Gather", "Slice", "Split", "Identity", "Dropout"}
#: ops whose int8 kernels have a fixed output scale / zero point
FIXED = {"Sigmoid": (1.0 / 256, -128), "Softmax": (1.0 / 256, -128), "Tanh": (1.0 / 128, 0)}
#: ops whose int8 TFLite kernels XNNPACK does not take: int8, they would run in TFLite's own
#: (slow, partition-splitting) kernels, so for XNNPACK they stay float between DEQUANTIZE and
#: QUANTIZE. The NNAPI delegate takes them in int8.
FLOAT_ON_XNNPACK = {"Softmax"}


def params(node: ir.Node) -> dict[str, Any]:
    scale = eir.initializer_array(node.inputs[1])
    zp = eir.initializer_array(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] \
        is not None else None
    if scale is None:
        raise ValueError("quantization scale must be a constant")
    dtype = np.dtype(zp.dtype) if zp is not None else np.dtype(np.uint8)
    if node.op_type == "DequantizeLinear" and node.inputs[0].dtype is not None:
        dtype = eir.np_dtype(node.inputs[0].dtype)  # the quantized input says it all
    if node.op_type == "QuantizeLinear" and "output_dtype" in node.attributes:
        dtype = eir.np_dtype(ir.DataType(node.attributes["output_dtype"].as_int()))
    zp = zp if zp is not None else np.zeros_like(scale, dtype)
    a = node.attributes.get("axis")
    scale = np.asarray(scale, np.float64).ravel()
    return {"scale": scale, "zero_point": np.asarray(zp, np.int64).ravel(), "dtype": dtype.name,
            "axis": (a.as_int() if a is not None else 1) if scale.size > 1 else 0}


def _fill_value_info(node: ir.Node) -> None:
    """Q/DQ outputs have their input's shape; quantizers do not always record it."""
    x, y = node.inputs[0], node.outputs[0]
    if y.shape is None and x.shape is not None:
        y.shape = x.shape
    if y.dtype is None:
        if node.op_type == "DequantizeLinear":
            y.dtype = node.inputs[1].dtype
        elif len(node.inputs) > 2 and node.inputs[2] is not None:
            y.dtype = node.inputs[2].dtype


def _is_act_dq(v: ir.Value) -> bool:
    """`v` is a per-tensor DequantizeLinear of an int8 activation (what int8 kernels read)."""
    p = v.producer()
    return p is not None and p.op_type == "DequantizeLinear" and \
        eir.initializer_array(p.inputs[0]) is None and not per_axis_dq(p)


def per_axis_dq(node: ir.Node) -> bool:
    """A DequantizeLinear of computed values with one scale per channel (an int8 table
    lookup): TFLite runs it as a DEQUANTIZE, nothing reads it as int8."""
    scale = eir.initializer_array(node.inputs[1])
    return scale is not None and scale.size > 1 and \
        eir.initializer_array(node.inputs[0]) is None


def _is_quant_const(v: ir.Value) -> bool:
    p = v.producer()
    return p is not None and p.op_type == "DequantizeLinear" and \
        eir.initializer_array(p.inputs[0]) is not None


def prepare(ctx: EmitContext) -> None:
    """Record quantization parameters and pick the nodes that run as int8 kernels."""
    graph = ctx.graph
    for node in graph:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            _fill_value_info(node)
        if node.op_type == "DequantizeLinear":
            p = params(node)
            arr = eir.initializer_array(node.inputs[0])
            if arr is not None:
                p["int_value"] = arr
                rank = arr.ndim
                p["axis"] = p["axis"] % rank if rank and p["scale"].size > 1 else 0
                ctx.skip.add(id(node))
            elif p["scale"].size > 1:
                # per-axis dequantization of computed int8 values: the rows an int8 embedding
                # table lookup gathered (quantize.embedding). Its producer stores them int8 with
                # these parameters; the DequantizeLinear is a DEQUANTIZE to float.
                x = node.inputs[0]
                p["axis"] = p["axis"] % len(x.shape) if x.shape is not None else p["axis"]
                ctx.quant[x.name] = p
                continue
            ctx.quant[node.outputs[0].name] = p
        elif node.op_type == "QuantizeLinear":
            p = params(node)
            if p["scale"].size > 1:
                raise ValueError("per-axis quantization of an activation")
            ctx.quant[node.outputs[0].name] = p
    float_ops = FLOAT_ON_XNNPACK if ctx.target != "nnapi" else set()
    for node in graph:
        if node.op_type not in INT8_OPS or node.op_type in float_ops or \
                not _int8_node(node, ctx):
            continue
        ctx.int8_nodes.add(id(node))
        act_in = next(v for v in node.inputs if v is not None and _is_act_dq(v))
        for o in node.outputs:
            if o is None:
                continue
            o = _through_activation(node, o, ctx)
            if node.op_type in FIXED:
                scale, zp = FIXED[node.op_type]
                q = {"scale": np.array([scale]), "zero_point": np.array([zp]), "dtype": "int8"}
            elif node.op_type in SAME_QUANT:
                q = dict(ctx.quant[act_in.name])
            else:
                q = dict(ctx.quant[ctx.consumers(o)[0].outputs[0].name])
            q.pop("int_value", None)
            ctx.quant[o.name] = q
    _float_islands(ctx)


#: ops whose int8 kernel is worth a QUANTIZE before and a DEQUANTIZE after
_HEAVY = {"Conv", "Gemm", "MatMul"}


#: int8 arithmetic that XNNPACK runs no faster than float (requantizing every element)
_ARITH = {"Add", "Sub", "Mul"}


def _float_islands(ctx: EmitContext) -> None:
    """A light int8 op between float ops (float -> Q -> DQ -> Mul -> Q -> DQ -> float) runs
    float: its int8 form costs a QUANTIZE and a DEQUANTIZE more and saves nothing. With XNNPACK
    the same holds for an elementwise op with one activation input that only float ops read
    (attention's scale after an int8 BATCH_MATMUL): the DEQUANTIZE moves before it, and
    XNNPACK's float MUL/ADD is about twice as fast as its int8 one."""
    changed = True
    while changed:
        changed = False
        for node in ctx.graph:
            if id(node) not in ctx.int8_nodes or node.op_type in _HEAVY:
                continue
            acts = [v for v in node.inputs if v is not None and _is_act_dq(v)]
            to_float = all(_to_float(_through_activation(node, o, ctx), ctx)
                           for o in node.outputs if o is not None)
            island = to_float and all(_from_float(v, ctx) for v in acts)
            trailing = (to_float and len(acts) == 1 and node.op_type in _ARITH
                        and ctx.target != "nnapi" and not _bias_of_weights(acts[0]))
            if not (island or trailing):
                continue
            ctx.int8_nodes.discard(id(node))
            for o in node.outputs:
                if o is not None:
                    ctx.quant.pop(_through_activation(node, o, ctx).name, None)
            changed = True


def _bias_of_weights(v: ir.Value) -> bool:
    """`v` is DQ(Q(MatMul/Gemm/Conv with constant weights)): an Add there is that op's bias."""
    q = v.producer().inputs[0].producer()
    p = q.inputs[0].producer() if q is not None and q.op_type == "QuantizeLinear" else None
    return p is not None and p.op_type in _HEAVY and len(p.inputs) > 1 and \
        _is_quant_const(p.inputs[1])


def _from_float(v: ir.Value, ctx: EmitContext) -> bool:
    """`v` is DQ(Q(x)) with x computed by a float op."""
    q = v.producer().inputs[0].producer()
    if q is None or q.op_type != "QuantizeLinear":
        return False
    p = q.inputs[0].producer()
    return p is not None and id(p) not in ctx.int8_nodes and p.op_type not in (
        "QuantizeLinear", "DequantizeLinear")


def _to_float(o: ir.Value, ctx: EmitContext) -> bool:
    """Every reader of `o` is Q -> DQ -> float op."""
    for q in ctx.consumers(o):
        if q.op_type != "QuantizeLinear" or q.outputs[0].name in ctx.graph_outputs:
            return False
        for dq in ctx.consumers(q.outputs[0]):
            if dq.op_type != "DequantizeLinear" or dq.outputs[0].name in ctx.graph_outputs:
                return False
            if any(id(u) in ctx.int8_nodes for u in ctx.consumers(dq.outputs[0])):
                return False
    return True


def _int8_node(node: ir.Node, ctx: EmitContext) -> bool:
    acts = [v for v in node.inputs if v is not None and eir.initializer_array(v) is None]
    if not acts or not all(_is_act_dq(v) or _is_quant_const(v) for v in acts):
        return False
    if not any(_is_act_dq(v) for v in acts):
        return False
    if any(ctx.quant[v.name]["dtype"] != "int8" for v in acts if _is_act_dq(v)):
        return False
    if node.op_type == "Clip" and activation_kind(node) is None and clip_bounds(node) != (0, 1):
        return False  # a general clamp is MINIMUM/MAXIMUM with float bounds
    if node.op_type in ("MatMul", "Gemm") and not _is_quant_const(node.inputs[1]) and not (
            node.op_type == "MatMul" and ctx.target != "nnapi" and _is_act_dq(node.inputs[1])):
        return False  # int8 FULLY_CONNECTED needs constant weights; XNNPACK also runs an int8
        # BATCH_MATMUL of two activations (attention), the NNAPI delegate before API 31 does not
    for o in node.outputs:
        if o is None:
            continue
        o = _through_activation(node, o, ctx)
        users = ctx.consumers(o)
        if not users or o.name in ctx.graph_outputs:
            return False
        if not all(u.op_type == "QuantizeLinear" for u in users):
            return False
        if any(ctx.quant[u.outputs[0].name]["dtype"] != "int8" for u in users):
            return False
    return True


#: ops whose int8 kernels clamp to a fused activation (Conv -> Relu6 -> Q is one int8 CONV_2D)
_FUSING = {"Conv", "Gemm", "MatMul", "Add", "Sub", "Mul"}


def _through_activation(node: ir.Node, out: ir.Value, ctx: EmitContext) -> ir.Value:
    """The value that carries the node's quantization: its output, or the output of an
    activation the emitter fuses into it when the quantizer put no Q/DQ between them."""
    users = ctx.consumers(out)
    if (node.op_type in _FUSING and len(users) == 1 and out.name not in ctx.graph_outputs
            and activation_kind(users[0]) in ("RELU", "RELU6", "RELU_N1_TO_1")):
        return users[0].outputs[0]
    return out


def _check_q(node: ir.Node, ctx: object) -> str | None:
    if eir.initializer_array(node.inputs[1]) is None:
        return "scale must be a constant"
    zp = node.inputs[2] if len(node.inputs) > 2 else None
    if zp is not None and zp.dtype not in (ir.DataType.INT8, ir.DataType.UINT8):
        return f"{zp.dtype.name} quantization (int8/uint8 only)"
    if node.op_type == "QuantizeLinear" and node.inputs[1].shape is not None and \
            len(node.inputs[1].shape) and node.inputs[1].shape[0] != 1:
        return "per-axis activation quantization"
    return None


@REGISTRY.op("QuantizeLinear", check=_check_q, conditions="int8/uint8, per-tensor")
def emit_quantize(node: ir.Node, ctx: EmitContext) -> None:
    x, q = node.inputs[0], node.outputs[0]
    params = ctx.quant[q.name]
    src = ctx.values.get(x.name)
    xq = ctx.quant.get(x.name)
    if src is not None and xq is not None and ctx.fb.dtype(src.index) != np.float32:
        if _same(xq, params):
            ctx.define(q, src.index, src.layout)
            return
        y = ctx.output(q, src.layout, quant=params)  # requantize int8 -> int8
        ctx.fb.op("QUANTIZE", [src.index], [y])
        return
    lay = ctx.layout(x)
    ctx.int8_node = False
    xin = ctx.input(x, lay)
    y = ctx.output(q, lay, quant=params)
    ctx.fb.op("QUANTIZE", [xin], [y])
    # float consumers of q read x itself: QUANTIZE then DEQUANTIZE between two float ops only
    # adds rounding and two ops (the QUANTIZE is dropped when no int8 op reads it)
    ctx.float_source[q.name] = xin


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (np.allclose(a["scale"], b["scale"], rtol=1e-6, atol=0)
            and np.array_equal(a["zero_point"], b["zero_point"]) and a["dtype"] == b["dtype"])


def _check_dq(node: ir.Node, ctx: object) -> str | None:
    if eir.initializer_array(node.inputs[1]) is None:
        return "scale must be a constant"
    zp = node.inputs[2] if len(node.inputs) > 2 else None
    if zp is not None and zp.dtype not in (ir.DataType.INT8, ir.DataType.UINT8, ir.DataType.INT32):
        return f"{zp.dtype.name} quantization (int8/uint8/int32 only)"
    if per_axis_dq(node) and not gathered_int8_rows(node.inputs[0]):
        return "per-axis dequantization of computed values (only of int8 embedding table rows)"
    return None


@REGISTRY.op("DequantizeLinear", check=_check_dq,
             conditions="int8/uint8/int32 constants; per-channel int8 rows of a table lookup")
def emit_dequantize(node: ir.Node, ctx: EmitContext) -> None:
    x, f = node.inputs[0], node.outputs[0]
    src = ctx.values.get(x.name)
    if src is None or x.name not in ctx.quant:
        raise NotImplementedError("DequantizeLinear of a graph input: quantize inside the model")
    if per_axis_dq(node):  # gathered int8 table rows: one per-channel DEQUANTIZE, here
        y = ctx.output(f, src.layout, dtype=np.float32)
        ctx.fb.op("DEQUANTIZE", [src.index], [y])
        return
    # the float value is the int8 tensor itself; float users get a DEQUANTIZE on demand, or
    # the float tensor that was quantized
    ctx.values[f.name] = src
    if x.name in ctx.float_source:
        ctx.float_source[f.name] = ctx.float_source[x.name]
    ctx.quant[f.name] = {k: v for k, v in ctx.quant[x.name].items() if k != "int_value"}
    ctx.tensor_map[f.name] = [ctx.fb.name(src.index), list(src.layout)]


def requantize(ctx: EmitContext, index: int, params: dict[str, Any], name: str) -> int:
    """An int8 tensor requantized to `params` (CONCATENATION needs equal scales)."""
    q = ctx.fb.tensors[index].quantization
    if q is not None and np.allclose(q.scale, params["scale"]) and \
            list(q.zeroPoint) == [int(z) for z in params["zero_point"]]:
        return index
    out = ctx.temp(name + "/requant", ctx.fb.shape(index), ctx.fb.dtype(index), quant=params)
    ctx.fb.op("QUANTIZE", [index], [out])
    return out

