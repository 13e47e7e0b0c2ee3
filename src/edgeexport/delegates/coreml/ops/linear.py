"""MatMul and Gemm: Gemm with a constant B becomes MIL `linear` (weight [out, in], alpha and
beta folded into the constants); everything else is `matmul` (+ `add`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.coreml.context import REGISTRY, EmitContext, attr, float_input


@REGISTRY.op("MatMul", check=float_input)
def emit_matmul(node: ir.Node, ctx: EmitContext) -> None:
    a, b = node.inputs
    ctx.set(node.outputs[0], ctx.mb.matmul(x=ctx.get(a), y=ctx.get(b),
                                           name=ctx.name(node.outputs[0])))


def _check_gemm(node: ir.Node, ctx: Any) -> str | None:
    c = node.inputs[2] if len(node.inputs) > 2 else None
    if c is not None and attr(node, "beta", 1.0) != 1.0 and ctx_const(c) is None:
        return "Gemm with beta != 1 needs a constant C for CoreML"
    return float_input(node, ctx)


def ctx_const(value: ir.Value) -> np.ndarray | None:
    from edgeexport import ir as eir

    return eir.initializer_array(value)


@REGISTRY.op("Gemm", check=_check_gemm, conditions="beta != 1 needs a constant C")
def emit_gemm(node: ir.Node, ctx: EmitContext) -> None:
    a, b = node.inputs[0], node.inputs[1]
    c = node.inputs[2] if len(node.inputs) > 2 else None
    alpha, beta = float(attr(node, "alpha", 1.0)), float(attr(node, "beta", 1.0))
    trans_a, trans_b = int(attr(node, "transA", 0)), int(attr(node, "transB", 0))
    out = node.outputs[0]
    x = ctx.get(a)
    if trans_a:
        x = ctx.mb.transpose(x=x, perm=[1, 0], name=ctx.name(out) + "__a_t")
    w = ctx.const_array(b)
    c_arr = ctx.const_array(c) if c is not None else None
    if w is not None and (c is None or c_arr is not None):
        # the common nn.Linear case: fold the transposes and scalars into the constants
        weight = (w if trans_b else w.T).astype(np.float32) * alpha
        kwargs = {}
        if c_arr is not None:
            bias = np.broadcast_to(c_arr.astype(np.float32) * beta, (weight.shape[0],))
            kwargs["bias"] = ctx.to_mil_array(np.ascontiguousarray(bias))
        ctx.set(out, ctx.mb.linear(x=x, weight=ctx.to_mil_array(weight), name=ctx.name(out),
                                   **kwargs))
        return
    y = ctx.mb.matmul(x=x, y=ctx.get(b), transpose_y=bool(trans_b),
                      name=ctx.name(out) + ("__mm" if c is not None or alpha != 1 else ""))
    if alpha != 1.0:
        y = ctx.mb.mul(x=y, y=ctx.to_mil_array(np.array(alpha, np.float32)),
                       name=ctx.name(out) + ("__alpha" if c is not None else ""))
    if c is not None:
        cv = ctx.get(c) if beta == 1.0 else ctx.to_mil_array(c_arr.astype(np.float32) * beta)
        y = ctx.mb.add(x=y, y=cv, name=ctx.name(out))
    ctx.set(out, y)
