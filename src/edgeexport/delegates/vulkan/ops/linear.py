"""Gemm and MatMul: with a constant right-hand side -> ncnn InnerProduct (a following bias Add
and activation fused in); between two activations -> ncnn MatMul (batched, broadcast batch).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.vulkan.context import Blob, EmitContext, const_array, default_kept
from edgeexport.delegates.vulkan.ops._common import (attr_float, attr_int, check_all,
                                                    input_const, shape_of, static)
from edgeexport.delegates.vulkan.ops.activation import fuse_activation
from edgeexport.delegates.vulkan.quant import as_int8
from edgeexport.delegates.vulkan.registry import REGISTRY


def _check_gemm(node: ir.Node, ctx: object) -> str | None:
    if attr_int(node, "transA", 0):
        return "Gemm with transA is not mapped"
    if input_const(node, 1) is None:
        return "Gemm needs a constant B"
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        c = input_const(node, 2)
        b = input_const(node, 1)
        n = b.shape[0] if attr_int(node, "transB", 0) else b.shape[1]
        if c is None:
            return "Gemm needs a constant C"
        if c.size not in (1, n) or (c.ndim == 2 and c.shape[0] != 1):
            return "Gemm C must broadcast along N only"
    return None


def _check_matmul(node: ir.Node, ctx: object) -> str | None:
    a, b = shape_of(node.inputs[0]), shape_of(node.inputs[1])
    if a is None or b is None or len(a) < 2 or len(b) < 2:
        return "MatMul of 1-D operands is not mapped"
    if const_array(node.inputs[0]) is not None and const_array(node.inputs[1]) is None:
        return "MatMul with a constant left operand is not mapped"
    return None


def _bias_of_add(add: ir.Node, produced: ir.Value, n: int) -> np.ndarray | None:
    """The Add's constant operand when it is a per-output-column bias, else None."""
    other = add.inputs[1] if add.inputs[0] is produced else add.inputs[0]
    c = const_array(other)
    if c is None or c.size != n or (c.ndim and c.shape[-1] != n):
        return None
    out_shape = shape_of(add.outputs[0])
    if out_shape is None or out_shape != shape_of(produced):
        return None
    return c.astype(np.float32).ravel()


def inner_product(node: ir.Node, ctx: EmitContext, x: Blob, rows: int, weight: np.ndarray,
                  bias: np.ndarray | None, output: ir.Value) -> None:
    """y = x @ weight.T + bias over the last axis of x; weight is (N, K). In a QDQ graph the
    layer is ncnn's int8 InnerProduct when quant.int8_form allows it."""
    n, k = weight.shape
    if bias is None:
        add = ctx.sole_consumer(output)
        if add is not None and add.op_type == "Add":
            bias = _bias_of_add(add, output, n)
            if bias is not None:
                ctx.absorb(add)
                output = add.outputs[0]
    params: dict[int, object] = {0: int(n), 1: int(bias is not None), 2: int(weight.size)}
    act, output = fuse_activation(output, ctx)
    params.update(act)
    # 1-D input: one vector; 2-D input: ncnn's batched InnerProduct, one row per matrix row
    xin = ctx.as_ncnn_shape(x, (k,) if rows == 1 else (rows, k), node.name + "_rows")
    weights = [(np.ascontiguousarray(weight, dtype=np.float32), True)]
    if bias is not None:
        weights.append((bias, False))
    xin = as_int8(node, ctx, xin, params, weights)
    out_shape = tuple(output.shape)
    tmp_kept = default_kept(out_shape)
    want = tuple(out_shape[a] for a in tmp_kept)
    got = (n,) if rows == 1 else (rows, n)
    if want == got:
        ctx.emit(node, "InnerProduct", [xin], params, weights, kept=tmp_kept, output=output)
        return
    name = ctx.unique(output.name + "_ip")
    ctx.add("InnerProduct", node.name or "InnerProduct", [xin], [name], params, weights)
    ctx.reshaped_as(output, Blob(name, tuple(range(len(got))), got))


@REGISTRY.op("Gemm", check=check_all(static, _check_gemm),
             conditions="constant B and C, no transA")
def emit_gemm(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    b = input_const(node, 1).astype(np.float32)
    weight = b if attr_int(node, "transB", 0) else b.T
    weight = weight * attr_float(node, "alpha", 1.0)
    bias = None
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        c = input_const(node, 2).astype(np.float32).ravel() * attr_float(node, "beta", 1.0)
        bias = np.broadcast_to(c, (weight.shape[0],)).copy()
    rows = x.shape[0]
    inner_product(node, ctx, x, rows, weight, bias, node.outputs[0])


@REGISTRY.op("MatMul", check=check_all(static, _check_matmul), conditions="2-D or batched")
def emit_matmul(node: ir.Node, ctx: EmitContext) -> None:
    b_const = const_array(node.inputs[1])
    x = ctx.blob(node.inputs[0])
    if b_const is not None and b_const.ndim == 2:
        rows = int(np.prod(x.shape[:-1]))
        inner_product(node, ctx, x, rows, b_const.astype(np.float32).T, None, node.outputs[0])
        return
    out_shape = tuple(node.outputs[0].shape)
    kept = default_kept(out_shape)
    r = len(out_shape)
    names = []
    for i, v in enumerate(node.inputs[:2]):
        shape = (1,) * (r - len(v.shape)) + tuple(v.shape)
        ncnn_shape = tuple(shape[a] for a in kept)
        c = const_array(v)
        if c is not None:
            names.append(ctx.constant_blob(f"{node.name}_in{i}", c, ncnn_shape))
        else:
            names.append(ctx.as_ncnn_shape(ctx.blob(v), ncnn_shape, f"{node.name}_in{i}"))
    ctx.emit(node, "MatMul", names, {0: 0}, kept=kept)
