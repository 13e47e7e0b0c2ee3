"""QDQ insertion (DESIGN.md "The IR"): activations int8 asymmetric per-tensor, weights int8
symmetric per-channel on the output-channel axis, bias int32 with scale = s_in * s_w.

Target constraints live in the plan: ops whose int8 kernels need input scale = output scale
share one range; Softmax/Sigmoid/Tanh get TFLite's fixed output scales; Relu/Clip after
Conv/Gemm/MatMul/Add are fused (no Q/DQ in between), as TFLite fuses the activation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx_ir as ir

from edgeexport.ir import initializer_array

#: op -> indices of inputs that carry data to quantize (None = all inputs)
QUANT_OPS: dict[str, tuple[int, ...] | None] = {
    "Conv": (0, 1), "ConvTranspose": (0, 1), "Gemm": (0, 1), "MatMul": None,
    "Add": None, "Sub": None, "Mul": None, "Concat": None,
    "Relu": (0,), "Clip": (0,), "LeakyRelu": (0,), "HardSwish": (0,), "HardSigmoid": (0,),
    "Sigmoid": (0,), "Tanh": (0,), "Softmax": (0,), "Gelu": (0,),
    "GlobalAveragePool": (0,), "ReduceMean": (0,),
    **{op: (0,) for op in ("MaxPool", "AveragePool", "Reshape", "Transpose", "Flatten",
                           "Squeeze", "Unsqueeze", "Slice", "Pad", "Resize", "Gather",
                           "DepthToSpace", "SpaceToDepth", "Split", "Expand")},
}
#: int8 kernels that require the output to share the input's scale and zero point (TFLite)
SAME_SCALE = frozenset({"MaxPool", "AveragePool", "Reshape", "Transpose", "Flatten", "Squeeze",
                        "Unsqueeze", "Slice", "Pad", "Resize", "Gather", "DepthToSpace",
                        "SpaceToDepth", "Split", "Expand", "Concat"})
#: quantized only when their input already is: moving bytes needs no own scale
PASSTHROUGH = SAME_SCALE - {"Concat"}
#: TFLite's fixed int8 output quantization: (scale, zero point)
FIXED_OUTPUT = {"Softmax": (1 / 256, -128), "Sigmoid": (1 / 256, -128), "Tanh": (1 / 128, 0)}
FUSED_ACTIVATIONS = frozenset({"Relu", "Clip"})
FUSING_PRODUCERS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "Add"})
WEIGHT_INPUT = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1}
BIAS_INPUT = {"Conv": 2, "ConvTranspose": 2, "Gemm": 2}


def is_float(v: ir.Value | None) -> bool:
    return v is not None and v.dtype == ir.DataType.FLOAT


def is_const(v: ir.Value | None) -> bool:
    return v is not None and not v.is_graph_input() and initializer_array(v) is not None


@dataclass
class Plan:
    nodes: list[ir.Node]
    #: activation values to put a Q/DQ pair on, by name
    tensors: dict[str, ir.Value]
    #: value name -> representative name whose range it shares
    group: dict[str, str] = field(default_factory=dict)
    fixed: dict[str, tuple[float, int]] = field(default_factory=dict)

    def observed(self) -> list[str]:
        """The value names whose ranges calibration has to measure."""
        return sorted({n for n in self.tensors if n not in self.fixed})


def plan(model: ir.Model, float_nodes: set[str] = frozenset()) -> Plan:
    graph = model.graph
    quantized: list[ir.Node] = []
    qset: set[int] = set()
    masked = mask_carrying(graph)
    for node in graph:  # topological order: passthrough ops follow their producers
        if node.domain not in ("", "ai.onnx") or node.op_type not in QUANT_OPS:
            continue
        if node.name in float_nodes:
            continue
        data = data_inputs(node)
        if not data or not all(is_float(v) for v in data):
            continue
        if node.op_type in PASSTHROUGH:
            src = data[0].producer()
            if src is None or id(src) not in qset:
                continue
        quantized.append(node)
        qset.add(id(node))

    tensors: dict[str, ir.Value] = {}
    for node in quantized:
        for i, v in enumerate(node.inputs):
            if (v is None or not is_float(v) or is_const(v) or i not in data_indices(node)
                    or v.name in masked):
                continue
            tensors[v.name] = v
        for v in node.outputs:
            if is_float(v) and v.name not in masked:
                tensors[v.name] = v
    # fused activations: no Q/DQ between Conv/Gemm/MatMul/Add and a following Relu/Clip
    for name, v in list(tensors.items()):
        prod = v.producer()
        uses = v.uses()
        if (prod is not None and id(prod) in qset and prod.op_type in FUSING_PRODUCERS
                and len(uses) == 1 and not v.is_graph_output()
                and uses[0].node.op_type in FUSED_ACTIVATIONS and id(uses[0].node) in qset):
            del tensors[name]
    p = Plan(quantized, tensors)
    parent = {n: n for n in tensors}

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for node in quantized:
        if node.op_type in SAME_SCALE:
            names = [v.name for v in data_inputs(node) + list(node.outputs)
                     if v is not None and v.name in tensors]
            for n in names[1:]:
                parent[find(n)] = find(names[0])
        if node.op_type in FIXED_OUTPUT and node.outputs[0].name in tensors:
            p.fixed[node.outputs[0].name] = FIXED_OUTPUT[node.op_type]
    p.group = {n: find(n) for n in tensors}
    # a group holding a fixed-scale tensor takes that scale everywhere
    for n, fixed in list(p.fixed.items()):
        for m, g in p.group.items():
            if g == p.group[n]:
                p.fixed[m] = fixed
    return p


#: ops that pass a large additive mask on to their output (up to the Softmax that reads it)
_MASK_FLOW = frozenset({"Add", "Sub", "Where", "Concat", "Expand", "Max", "Min"}) | PASSTHROUGH
#: ops whose output is an activation even when every input is an integer input or a constant
_LAYERS = frozenset({"Gather", "Conv", "ConvTranspose", "Gemm", "MatMul"})


def mask_carrying(graph: ir.Graph) -> set[str]:
    """Float values an int8 range cannot hold: an additive attention mask (a 0 / -10000 bias
    computed from an integer graph input and constants) and the sums it flows into up to the
    Softmax that reads them (scores + bias). One int8 scale over [-10000, 10] rounds every
    attention logit away: these values get no Q/DQ; Softmax's output is int8 again. (An integer
    image input cast to float is no mask: it reaches no Softmax through sums alone.)"""
    derived = {v.name for v in graph.inputs if v.dtype is not None and v.dtype.is_integer()}
    for node in graph:
        ins = [v for v in node.inputs if v is not None]
        if (node.op_type not in _LAYERS and any(v.name in derived for v in ins)
                and all(v.name in derived or is_const(v) for v in ins)):
            derived.update(v.name for v in node.outputs)
    carrying: set[str] = set()
    for node in graph:
        if node.op_type != "Softmax":
            continue
        path, biases, stack = set(), set(), [node.inputs[0]]
        while stack:  # back through the sums that feed the Softmax
            v = stack.pop()
            prod = v.producer()
            if v.name in derived:
                biases.add(v)
            elif prod is not None and prod.op_type in _MASK_FLOW and v.name not in path:
                path.add(v.name)
                stack += [i for i in prod.inputs if i is not None and not is_const(i)]
        if not biases:
            continue
        carrying |= path
        while biases:  # and the float arithmetic that made the bias from the mask
            v = biases.pop()
            if is_float(v) and v.name not in carrying:
                carrying.add(v.name)
                prod = v.producer()
                biases |= {i for i in (prod.inputs if prod else []) if i is not None
                           and i.name in derived}
    return carrying


def data_indices(node: ir.Node) -> tuple[int, ...]:
    idx = QUANT_OPS[node.op_type]
    return tuple(range(len(node.inputs))) if idx is None else idx


def data_inputs(node: ir.Node) -> list[ir.Value]:
    return [node.inputs[i] for i in data_indices(node)
            if i < len(node.inputs) and node.inputs[i] is not None]


def activation_params(lo: float, hi: float) -> tuple[float, int]:
    """int8 asymmetric: the range always holds 0 (zero padding must be exact)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / 255.0
    if not scale > 1e-12:
        return 1.0, 0
    zp = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return float(np.float32(scale)), zp


def weight_axis(node: ir.Node, w: np.ndarray) -> int | None:
    if node.op_type == "Conv":
        return 0
    if node.op_type == "ConvTranspose":
        return 1 if node.attributes.get_int("group", 1) == 1 else None
    if node.op_type == "Gemm":
        return 0 if node.attributes.get_int("transB", 0) else 1
    if node.op_type == "MatMul" and w.ndim == 2:
        return 1
    return None


def quantize_weight(w: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 in [-127, 127] (TFLite's weight contract), per channel when axis given."""
    if axis is None:
        amax = np.array(np.abs(w).max(), np.float32)
    else:
        amax = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shaped = scale if axis is None else scale.reshape([-1 if i == axis else 1
                                                       for i in range(w.ndim)])
    q = np.clip(np.round(w / shaped), -127, 127).astype(np.int8)
    return q, scale


def consumer_weights(p: Plan) -> dict[str, np.ndarray]:
    """Per planned tensor read only by Conv/Gemm with constant weights (directly or through
    Adds): how much a unit error in each of its channels adds to the squared error of those
    layers' outputs (sum of the squared weights reading that channel), scaled to mean 1. Range
    search weighs errors by it: a channel the next layers barely read can be clipped to give
    the others a finer step."""
    memo: dict[str, np.ndarray | None] = {}

    def weights(v: ir.Value, depth: int = 0) -> np.ndarray | None:
        if v.name in memo:
            return memo[v.name]
        total = None
        for use in v.uses():
            if use.node.op_type == "Add" and depth < 8 and not v.is_graph_output():
                other = [x for i, x in enumerate(use.node.inputs) if i != use.idx]
                same = all(x is not None and x.shape == v.shape for x in other)
                w = weights(use.node.outputs[0], depth + 1) if same else None
            else:
                w = _reading_weights(use.node, use.idx)
            if w is None or (total is not None and w.shape != total.shape):
                total = None
                break
            total = w if total is None else total + w
        memo[v.name] = total
        return total

    out = {}
    for name, v in p.tensors.items():
        total = weights(v)
        if total is not None and total.mean() > 0:
            out[name] = (total / total.mean()).astype(np.float64)
    return out


def _reading_weights(node: ir.Node, idx: int) -> np.ndarray | None:
    """Sum of squared weights per input channel of a Conv/Gemm's data input, or None."""
    if idx != 0 or node.op_type not in ("Conv", "Gemm") or len(node.inputs) < 2:
        return None
    w = initializer_array(node.inputs[1])
    if w is None:
        return None
    w = np.square(w.astype(np.float64))
    if node.op_type == "Gemm":
        if node.attributes.get_int("transA", 0):
            return None
        return w.sum(0) if node.attributes.get_int("transB", 0) else w.sum(1)
    group = node.attributes.get_int("group", 1)
    cout, cin_g = w.shape[0], w.shape[1]
    per = w.reshape(group, cout // group, cin_g, -1).sum(axis=(1, 3))  # (group, cin_g)
    return per.reshape(-1)
