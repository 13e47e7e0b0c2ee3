"""Rewrite the IR into a QDQ graph from a plan and calibrated ranges; also the weight-only
rewrites (dynamic int8: int8 weights + DequantizeLinear; fp16: fp16 weights + Cast).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport.ir import initializer_array
from edgeexport.quantize.qdq import (BIAS_INPUT, WEIGHT_INPUT, Plan, activation_params,
                                     data_indices, is_const, is_float, quantize_weight,
                                     weight_axis)


class Builder:
    """New names and initializers in one graph: names unique among its values, initializers
    registered."""

    def __init__(self, graph: ir.Graph) -> None:
        self.graph = graph
        self.names = {v.name for n in self.graph for v in n.outputs} | set(self.graph.initializers)
        self.names |= {v.name for v in self.graph.inputs}

    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    def const(self, base: str, arr: np.ndarray) -> ir.Value:
        name = self.unique(base)
        v = ir.Value(name=name, shape=ir.Shape(arr.shape), type=ir.TensorType(
            ir.DataType.from_numpy(arr.dtype)), const_value=ir.tensor(arr, name=name))
        self.graph.register_initializer(v)
        return v


def insert_qdq(model: ir.Model, plan: Plan, params: dict[str, tuple[float, int]],
               means: dict[str, np.ndarray] | None = None,
               covs: dict[str, np.ndarray | None] | None = None,
               weight_cache: dict | None = None) -> dict[str, Any]:
    """Q/DQ on every planned activation, int8 weights, int32 biases. Returns per-tensor info.

    `weight_cache` (a dict kept by the caller) holds each layer's int8 weight, scales and bias
    shift between calls on copies of the same float model: the accuracy-budget search builds
    dozens of them and the weights never change."""
    b = Builder(model.graph)
    graph = model.graph
    qnodes = {id(n) for n in plan.nodes}
    dq_of: dict[str, ir.Value] = {}
    shared: dict[tuple[float, int], tuple[ir.Value, ir.Value]] = {}
    for name, v in plan.tensors.items():
        scale, zp = params[name]
        if (scale, zp) not in shared:  # same-scale groups share one pair of initializers
            shared[scale, zp] = (b.const(f"{name}_s", np.array(scale, np.float32)),
                                 b.const(f"{name}_zp", np.array(zp, np.int8)))
        s, z = shared[scale, zp]
        q = ir.node("QuantizeLinear", [v, s, z], name=b.unique(f"{name}_Q"))
        dq = ir.node("DequantizeLinear", [q.outputs[0], s, z],
                     name=b.unique(f"{name}_DQ"))
        q.outputs[0].name = b.unique(f"{name}_q")
        q.outputs[0].type = ir.TensorType(ir.DataType.INT8)
        q.outputs[0].shape = v.shape
        dq.outputs[0].name = b.unique(f"{name}_dq")
        dq.outputs[0].type, dq.outputs[0].shape = v.type, v.shape
        prod = v.producer()
        if prod is None:
            graph.insert_before(graph.node(0), [q, dq])
        else:
            graph.insert_after(prod, [q, dq])
        producer_quantized = prod is not None and id(prod) in qnodes
        for use in list(v.uses()):
            if use.node is q:
                continue
            # a layer kept float reads the float value: its producer then runs in float on
            # int8 inputs for it (an emitter puts a Quantize after it for the int8 consumers)
            if id(use.node) in qnodes:
                use.node.replace_input_with(use.idx, dq.outputs[0])
        if v.is_graph_output() and producer_quantized:
            # the model's output is what the int8 graph delivers: the dequantized value
            old = v.name
            v.name = b.unique(f"{old}_float")
            outs = graph.outputs
            outs[outs.index(v)] = dq.outputs[0]
            dq.outputs[0].name = old
            name_dq = old
        else:
            name_dq = dq.outputs[0].name
        dq_of[name] = name_dq
    weights = _quantize_weights(b, plan, params, means or {}, covs or {},
                                {} if weight_cache is None else weight_cache)
    return {"dequantized": dq_of, "weights": weights}


def _quantize_weights(b: Builder, plan: Plan, params: dict[str, tuple[float, int]],
                      means: dict[str, np.ndarray], covs: dict[str, np.ndarray | None],
                      cache: dict) -> dict[str, Any]:
    info: dict[str, Any] = {}
    for node in plan.nodes:
        x_name = node.inputs[0].name if node.inputs and node.inputs[0] is not None else None
        # DQ was inserted on the input: the float model's name is the Q node's input
        src = node.inputs[0].producer() if x_name else None
        if src is not None and src.op_type == "DequantizeLinear":
            q = src.inputs[0].producer()
            x_name = q.inputs[0].name if q is not None else x_name
        shift = None
        widx = WEIGHT_INPUT.get(node.op_type)
        for i, v in enumerate(node.inputs):
            if v is None or not is_float(v) or not is_const(v):
                continue
            if i == BIAS_INPUT.get(node.op_type):
                continue
            w = initializer_array(v).astype(np.float32)
            if i == widx:
                key = (node.name, v.name)
                if key not in cache:
                    cache[key] = _int8_weight(node, w, covs.get(node.name), means.get(x_name))
                q, scale, axis, shift = cache[key]
                zp = None  # symmetric: zero point 0 is DequantizeLinear's default
            elif i in data_indices(node):
                axis = None
                s, z = activation_params(float(w.min()), float(w.max()))
                scale, zp = np.array(s, np.float32), np.array(z, np.int8)
                q = np.clip(np.round(w / s) + z, -128, 127).astype(np.int8)
            else:
                continue
            dq = _dq_const(b, node, i, v.name, q, scale, zp, axis)
            if i == widx:
                info[node.name] = {"weight": v.name, "axis": axis, "scale": scale,
                                   "dequantized": dq.name}
        bidx = BIAS_INPUT.get(node.op_type)
        if bidx is not None and bidx < len(node.inputs) and is_const(node.inputs[bidx]) \
                and node.name in info and _dq_input_scale(node) is not None:
            bias = node.inputs[bidx]
            bval = initializer_array(bias).astype(np.float64)
            if shift is not None and shift.shape == bval.shape:
                bval = bval - shift
                info[node.name]["bias_corrected"] = True
            bscale = (_dq_input_scale(node) * info[node.name]["scale"]).astype(np.float32)
            bq = np.round(bval / bscale)
            bq = np.clip(bq, -2**31, 2**31 - 1).astype(np.int32)
            _dq_const(b, node, bidx, bias.name, bq, bscale, None, 0 if bscale.ndim else None)
    return info


def _int8_weight(node: ir.Node, w: np.ndarray, cov: np.ndarray | None,
                 mean: np.ndarray | None) -> tuple:
    """(int8 weight, scales, axis, the bias shift its rounding causes or None)."""
    axis = weight_axis(node, w)
    q, scale = quantize_weight(w, axis)
    if cov is not None and axis == 0:
        from edgeexport.quantize.rounding import adaptive_round

        q = adaptive_round(w, scale, cov, node.attributes.get_int("group", 1))
    return q, scale, axis, _bias_shift(node, w, q, scale, axis, mean)


def _bias_shift(node: ir.Node, w: np.ndarray, q: np.ndarray, scale: np.ndarray,
                axis: int | None, mean: np.ndarray | None) -> np.ndarray | None:
    """Bias correction (Nagel et al. 2019): the mean output shift that weight rounding causes,
    (W_q - W) applied to the per-channel mean of the layer's input on the calibration data."""
    if mean is None or node.op_type != "Conv" or axis != 0:
        return None
    err = q.astype(np.float64) * scale.reshape(-1, *[1] * (w.ndim - 1)) - w
    group = node.attributes.get_int("group", 1)
    cout, cin_g = w.shape[0], w.shape[1]
    if mean.size != cin_g * group:
        return None
    per_in = err.reshape(cout, cin_g, -1).sum(axis=2)  # padding ignored: interior positions
    m = mean.reshape(group, cin_g)[np.arange(cout) // (cout // group)]
    return (per_in * m).sum(axis=1)


def _dq_input_scale(node: ir.Node) -> float | None:
    x = node.inputs[0]
    prod = x.producer() if x is not None else None
    if prod is None or prod.op_type != "DequantizeLinear":
        return None
    return float(initializer_array(prod.inputs[1]))


def _dq_const(b: Builder, node: ir.Node, idx: int, base: str, q: np.ndarray,
              scale: np.ndarray, zp: np.ndarray | None, axis: int | None) -> ir.Value:
    qv = b.const(f"{base}_q", q)
    sv = b.const(f"{base}_s", scale)
    zv = b.const(f"{base}_zp", zp) if zp is not None else None
    attrs = {"axis": axis} if axis is not None and scale.ndim else {}
    dq = ir.node("DequantizeLinear", [qv, sv] + ([zv] if zv is not None else []), attrs,
                 name=b.unique(f"{base}_DQ"))
    dq.outputs[0].name = b.unique(f"{base}_dq")
    dq.outputs[0].type = ir.TensorType(ir.DataType.FLOAT)
    dq.outputs[0].shape = ir.Shape(q.shape)
    b.graph.insert_before(node, dq)
    old = node.inputs[idx]
    node.replace_input_with(idx, dq.outputs[0])
    if old is not None and not old.uses() and old.name in b.graph.initializers:
        del b.graph.initializers[old.name]
    return dq.outputs[0]


def share_scalars(model: ir.Model) -> int:
    """Scalar initializers with the same dtype and value become one (every fused Clip carries
    its own 0 and 6; an int8 model is small enough for those to count). Returns how many went."""
    graph = model.graph
    keep = set(graph.inputs) | set(graph.outputs)
    first: dict[tuple, ir.Value] = {}
    dropped = 0
    for name, v in list(graph.initializers.items()):
        arr = initializer_array(v)
        if v in keep or arr is None or arr.size != 1:
            continue
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in first:
            first[key] = v
            continue
        for use in list(v.uses()):
            use.node.replace_input_with(use.idx, first[key])
        if not v.uses():
            del graph.initializers[name]
            dropped += 1
    return dropped


def weight_only_int8(model: ir.Model, ops: tuple[str, ...] = ("MatMul", "Gemm", "Conv")
                     ) -> dict[str, Any]:
    """Dynamic int8: int8 per-channel weights + DequantizeLinear; activations stay float (the
    target quantizes them on the fly, e.g. TFLite's dynamic-range kernels)."""
    b = Builder(model.graph)
    info: dict[str, Any] = {}
    for node in list(model.graph):
        widx = WEIGHT_INPUT.get(node.op_type)
        if node.op_type not in ops or widx is None or widx >= len(node.inputs):
            continue
        v = node.inputs[widx]
        if not is_float(v) or not is_const(v):
            continue
        w = initializer_array(v).astype(np.float32)
        if w.size < 16:
            continue  # a handful of weights: int8 saves nothing
        axis = weight_axis(node, w)
        q, scale = quantize_weight(w, axis)
        _dq_const(b, node, widx, v.name, q, scale, None, axis)
        info[node.name] = {"weight": v.name, "axis": axis, "scale": scale}
    return info


def weights_fp16(model: ir.Model, min_elements: int = 16) -> list[str]:
    """fp16 storage: every float initializer of at least `min_elements` becomes fp16 followed by
    Cast(to=float), so each runtime still computes in float32 and the target chooses (TFLite's
    fp16 weights + Dequantize, CoreML/ncnn fp16 storage). Returns the converted names."""
    b = Builder(model.graph)
    done = []
    for name, v in list(model.graph.initializers.items()):
        if not is_float(v) or v.is_graph_input() or not v.uses():
            continue
        arr = initializer_array(v)
        if arr.size < min_elements:
            continue
        half = b.const(f"{name}_fp16", np.clip(arr, -65504, 65504).astype(np.float16))
        cast = ir.node("Cast", [half], {"to": ir.DataType.FLOAT}, name=b.unique(f"{name}_Cast"))
        cast.outputs[0].name = b.unique(f"{name}_float")
        cast.outputs[0].type, cast.outputs[0].shape = v.type, v.shape
        first = min((u.node for u in v.uses()), key=lambda n: _index(model.graph, n))
        model.graph.insert_before(first, cast)
        for use in list(v.uses()):
            use.node.replace_input_with(use.idx, cast.outputs[0])
        del model.graph.initializers[name]
        done.append(name)
    return done


def _index(graph: ir.Graph, node: ir.Node) -> int:
    for i, n in enumerate(graph):
        if n is node:
            return i
    return 0
