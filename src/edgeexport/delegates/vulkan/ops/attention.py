"""Multi-head attention written out as ONNX ops (projections, head reshapes, QK^T, scale, mask,
Softmax, @V, merge, output projection) -> one ncnn MultiHeadAttention layer when it matches.

Two spellings are matched: separate Q/K/V projections (BERT) and one fused QKV projection split
by Gather (ViT). Anything else is left to the per-op emitters, which handle it too, just slower.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.vulkan.context import Blob, EmitContext, const_array
from edgeexport.delegates.vulkan.ops._common import attr_int, attr_ints, shape_of


@dataclass
class Head:
    """Where one of Q, K or V comes from: x @ weight + bias, split into heads."""

    x: ir.Value
    weight: np.ndarray  # (in, embed) as MatMul's constant operand
    bias: np.ndarray
    heads: int
    transposed: bool
    nodes: list[ir.Node] = field(default_factory=list)


@dataclass
class Attention:
    q: Head
    k: Head
    v: Head
    scale: float
    mask: ir.Value | None
    out_weight: np.ndarray  # (embed, out)
    out_bias: np.ndarray
    output: ir.Value
    nodes: list[ir.Node]


def _producer(value: ir.Value | None, op: str) -> ir.Node | None:
    node = value.producer() if value is not None else None
    return node if node is not None and node.op_type == op else None


def _scalar(value: ir.Value) -> float | None:
    c = const_array(value)
    return float(c.ravel()[0]) if c is not None and c.size == 1 else None


def _projection(value: ir.Value, nodes: list[ir.Node]) -> tuple | None:
    """value = x @ W (+ b) with constant W (in, out) and b (out,): (x, W, b)."""
    add = _producer(value, "Add")
    bias = None
    if add is not None:
        for i in (0, 1):
            c = const_array(add.inputs[1 - i])
            if c is not None and add.inputs[i].producer() is not None:
                bias, value = c.ravel().astype(np.float32), add.inputs[i]
                nodes.append(add)
                break
    mm = _producer(value, "MatMul")
    w = const_array(mm.inputs[1]) if mm is not None else None
    if mm is None or w is None or w.ndim != 2:
        return None
    nodes.append(mm)
    if bias is None:
        bias = np.zeros(w.shape[1], np.float32)
    return mm.inputs[0], w.astype(np.float32), bias


def _head(value: ir.Value) -> tuple[Head, int] | None:
    """Parse a per-head tensor (1, H, S, d) or its transpose (1, H, d, S): (head, part) where
    part is the index into a fused QKV projection (0 when the projection is Q/K/V alone)."""
    nodes: list[ir.Node] = []
    node = value.producer()
    transposed, part, parts = False, 0, 1
    if node is not None and node.op_type == "Transpose" and attr_ints(node, "perm") == [0, 1, 3, 2]:
        transposed, value = True, node.inputs[0]
        nodes.append(node)
        node = value.producer()
    if node is None:
        return None
    if node.op_type == "Gather":  # ViT: (3, 1, H, S, d)[part] of a fused projection
        idx = const_array(node.inputs[1])
        tr = _producer(node.inputs[0], "Transpose")
        if (idx is None or idx.size != 1 or attr_int(node, "axis", 0) != 0 or tr is None
                or attr_ints(tr, "perm") != [2, 0, 3, 1, 4]):
            return None
        part = int(idx.ravel()[0])
        nodes += [node, tr]
        reshape = _producer(tr.inputs[0], "Reshape")
        shape = shape_of(reshape.outputs[0]) if reshape is not None else None
        if shape is None or len(shape) != 5 or shape[0] != 1:
            return None
        parts, heads = shape[2], shape[3]
    else:  # BERT: (1, S, H, d) -> (1, H, S, d) or (1, H, d, S)
        perm = attr_ints(node, "perm") if node.op_type == "Transpose" else None
        if perm not in ([0, 2, 1, 3], [0, 2, 3, 1]) or transposed:
            return None
        transposed = perm == [0, 2, 3, 1]
        nodes.append(node)
        reshape = _producer(node.inputs[0], "Reshape")
        shape = shape_of(reshape.outputs[0]) if reshape is not None else None
        if shape is None or len(shape) != 4 or shape[0] != 1:
            return None
        heads = shape[2]
    nodes.append(reshape)
    proj = _projection(reshape.inputs[0], nodes)
    if proj is None:
        return None
    x, w, b = proj
    embed = w.shape[1] // parts
    cols = slice(part * embed, (part + 1) * embed)
    return Head(x, w[:, cols], b[cols], heads, transposed, nodes), part


def match(softmax: ir.Node) -> Attention | None:
    """The attention block around a Softmax over the last axis, or None."""
    shape = shape_of(softmax.outputs[0])
    if shape is None or len(shape) != 4 or attr_int(softmax, "axis", -1) % 4 != 3:
        return None
    nodes = [softmax]
    value, mask, scale = softmax.inputs[0], None, 1.0
    add = _producer(value, "Add")
    if add is not None:
        a, b = add.inputs
        inner = a if _producer(a, "Mul") or _producer(a, "Div") or _producer(a, "MatMul") else b
        mask, value = (b if inner is a else a), inner
        nodes.append(add)
    for op in ("Mul", "Div"):
        node = _producer(value, op)
        if node is not None and _scalar(node.inputs[1]) is not None:
            s = _scalar(node.inputs[1])
            scale, value = (s if op == "Mul" else 1.0 / s), node.inputs[0]
            nodes.append(node)
            break
    qk = _producer(value, "MatMul")
    users = [u.node for u in softmax.outputs[0].uses()]
    if qk is None or len(users) != 1 or users[0].op_type != "MatMul":
        return None
    pv = users[0]
    q, k, v = _head(qk.inputs[0]), _head(qk.inputs[1]), _head(pv.inputs[1])
    if None in (q, k, v) or q[0].transposed or not k[0].transposed or v[0].transposed:
        return None
    if pv.inputs[0] is not softmax.outputs[0] or (q[1], k[1], v[1]) not in ((0, 0, 0), (0, 1, 2)):
        return None
    nodes += [qk, pv]
    merged = _merge(pv, nodes)
    if merged is None:
        return None
    out_value, wo, bo = merged
    heads = q[0].heads
    if k[0].heads != heads or v[0].heads != heads or mask is not None and not _mask_ok(mask):
        return None
    att = Attention(q[0], k[0], v[0], scale, mask, wo, bo, out_value, [])
    att.nodes = list({id(n): n for n in nodes + q[0].nodes + k[0].nodes + v[0].nodes}.values())
    return att if _self_contained(att) else None


def _merge(pv: ir.Node, nodes: list[ir.Node]) -> tuple | None:
    """(1, H, S, d) -> Transpose -> Reshape (1, S, E) -> output projection: (value, W, b)."""
    users = [u.node for u in pv.outputs[0].uses()]
    if len(users) != 1 or users[0].op_type != "Transpose" or \
            attr_ints(users[0], "perm") != [0, 2, 1, 3]:
        return None
    tr = users[0]
    users = [u.node for u in tr.outputs[0].uses()]
    if len(users) != 1 or users[0].op_type != "Reshape":
        return None
    reshape = users[0]
    users = [u.node for u in reshape.outputs[0].uses()]
    if len(users) != 1 or users[0].op_type != "MatMul" or \
            users[0].inputs[0] is not reshape.outputs[0]:
        return None
    mm = users[0]
    w = const_array(mm.inputs[1])
    if w is None or w.ndim != 2:
        return None
    nodes += [tr, reshape, mm]
    out, bias = mm.outputs[0], np.zeros(w.shape[1], np.float32)
    users = [u.node for u in out.uses()]
    if len(users) == 1 and users[0].op_type == "Add":
        add = users[0]
        other = add.inputs[1] if add.inputs[0] is out else add.inputs[0]
        c = const_array(other)
        if c is not None and c.size == w.shape[1] and shape_of(add.outputs[0]) == shape_of(out):
            nodes.append(add)
            out, bias = add.outputs[0], c.ravel().astype(np.float32)
    return out, w.astype(np.float32), bias


def _mask_ok(mask: ir.Value) -> bool:
    shape = shape_of(mask)
    return shape is not None and len(shape) == 4 and shape[0] == 1 and shape[1] == 1


def _self_contained(att: Attention) -> bool:
    """Every value made inside the block is read only inside it (or is its output)."""
    inside = {id(n) for n in att.nodes}
    for node in att.nodes:
        for out in node.outputs:
            if out is att.output:
                continue
            if out.is_graph_output() or any(id(u.node) not in inside for u in out.uses()):
                return False
    return True


def find(graph: ir.Graph) -> list[Attention]:
    found, taken = [], set()
    for node in graph:
        if node.op_type != "Softmax":
            continue
        att = match(node)
        if att is not None and not any(id(n) in taken for n in att.nodes):
            found.append(att)
            taken.update(id(n) for n in att.nodes)
    return found


def emit(att: Attention, ctx: EmitContext) -> None:
    """One MultiHeadAttention layer; its inputs are the projections' 2-D (S, features) views."""
    names, uniq = [], []
    for head in (att.q, att.k, att.v):
        if head.x.name not in uniq:
            uniq.append(head.x.name)
    if len(uniq) == 2 and att.k.x is not att.v.x:
        uniq = [att.q.x.name, att.k.x.name, att.v.x.name]
    values = {h.x.name: h.x for h in (att.q, att.k, att.v)}
    for name in uniq:
        blob = ctx.blob(values[name])
        seq, feat = int(np.prod(blob.shape[:-1])), blob.shape[-1]
        names.append(ctx.as_ncnn_shape(blob, (seq, feat), f"{name}_seq"))
    embed = att.q.weight.shape[1]
    sq = int(np.prod(att.q.x.shape[:-1]))
    sk = int(np.prod(att.k.x.shape[:-1]))
    params = {0: embed, 1: att.q.heads, 2: int(att.q.weight.size), 3: att.k.weight.shape[0],
              4: att.v.weight.shape[0], 6: float(att.scale)}
    if att.mask is not None:
        params[5] = 1
        names.append(_mask_blob(att, ctx, sq, sk))
    weights: list[tuple[np.ndarray, bool]] = []
    for head in (att.q, att.k, att.v):
        weights += [(np.ascontiguousarray(head.weight.T), True), (head.bias, False)]
    weights += [(np.ascontiguousarray(att.out_weight.T), True), (att.out_bias, False)]
    for node in att.nodes:
        ctx.absorb(node)
    name = ctx.unique(att.output.name)
    ctx.add("MultiHeadAttention", f"mha_{att.output.name}", names, [name], params, weights)
    ctx.reshaped_as(att.output, Blob(name, (0, 1), (sq, att.out_weight.shape[1])))


def _mask_blob(att: Attention, ctx: EmitContext, sq: int, sk: int) -> str:
    """ncnn adds a (Sq, Sk) mask to every head: broadcast (1, 1, 1|Sq, Sk) explicitly."""
    shape = shape_of(att.mask)
    c = const_array(att.mask)
    if c is not None:
        return ctx.constant_blob(f"{att.output.name}_mask",
                                 np.broadcast_to(c.astype(np.float32), (1, 1, sq, sk)).copy(),
                                 (sq, sk))
    blob = ctx.blob(att.mask)
    if shape[2] == sq:
        return ctx.as_ncnn_shape(blob, (sq, sk), f"{att.output.name}_mask")
    row = ctx.as_ncnn_shape(blob, (1, sk), f"{att.output.name}_mask_row")
    zeros = ctx.constant_blob(f"{att.output.name}_mask_zeros", np.zeros((sq, sk), np.float32),
                              (sq, sk))
    name = ctx.unique(f"{att.output.name}_mask")
    ctx.add("BinaryOp", f"{att.output.name}_mask", [zeros, row], [name], {0: 0})
    return name
