"""Einsum of one or two operands as a batched matmul: MIL's own einsum takes a single equation
form, so indices are sorted into batch / left / right / contracted groups, each operand is
transposed and reshaped to [batch, rows, inner], multiplied, and the result laid out as ONNX asks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.coreml.context import (
    REGISTRY, EmitContext, all_checks, attr, float_input, static_shape,
)


def parse(equation: str) -> tuple[list[str], str] | None:
    """The operands' index strings and the output's (implicit form: the indices seen once, in
    alphabetical order), or None for forms not handled here (ellipsis, non-letters)."""
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    terms = lhs.split(",")
    if "." in eq or not all(t.isalpha() for t in terms) or (out and not out.isalpha()):
        return None
    if not arrow:
        letters = "".join(terms)
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return terms, out


def _check_einsum(node: ir.Node, ctx: Any) -> str | None:
    parsed = parse(str(attr(node, "equation", "")))
    if parsed is None:
        return "Einsum with an ellipsis has no CoreML mapping"
    terms, out = parsed
    if len(terms) != len(node.inputs) or len(terms) not in (1, 2):
        return "Einsum of more than two operands has no CoreML mapping"
    if any(len(set(t)) != len(t) for t in terms) or len(set(out)) != len(out):
        return "Einsum with a repeated index in one term (diagonal) has no CoreML mapping"
    sizes: dict[str, int] = {}
    for term, v in zip(terms, node.inputs):
        shape = static_shape(v)
        if shape is None or len(shape) != len(term):
            return "Einsum needs operands of static shape matching the equation for CoreML"
        for c, d in zip(term, shape):
            if sizes.setdefault(c, d) != d:
                return "Einsum with broadcast index sizes has no CoreML mapping"
    if not set(out) <= set(sizes):
        return "Einsum output index not in any operand"
    return None


@REGISTRY.op("Einsum", check=all_checks(float_input, _check_einsum),
             conditions="one or two operands, static shapes, no ellipsis or diagonal")
def emit_einsum(node: ir.Node, ctx: EmitContext) -> None:
    terms, out_idx = parse(str(attr(node, "equation")))
    out = node.outputs[0]
    name = ctx.name(out)
    sizes = {c: d for t, v in zip(terms, node.inputs) for c, d in zip(t, static_shape(v))}
    ops = [_sum_alone(ctx, ctx.get(v), i, terms, out_idx, f"{name}__in{i}")
           for i, v in enumerate(node.inputs)]
    if len(terms) == 1:
        var, idx = ops[0]
        ctx.set(out, _transpose(ctx, var, idx, out_idx, name, final=True))
        return
    (a, ia), (b, ib) = ops
    batch = [c for c in out_idx if c in ia and c in ib]
    left = [c for c in out_idx if c in ia and c not in ib]
    right = [c for c in out_idx if c in ib and c not in ia]
    inner = [c for c in ia if c in ib and c not in out_idx]

    def prod(idx: list[str]) -> int:
        return math.prod(sizes[c] for c in idx)

    a = _transpose(ctx, a, ia, "".join(batch + left + inner), name + "__a_t")
    a = ctx.mb.reshape(x=a, shape=np.array([prod(batch), prod(left), prod(inner)], np.int32),
                       name=name + "__a")
    b = _transpose(ctx, b, ib, "".join(batch + inner + right), name + "__b_t")
    b = ctx.mb.reshape(x=b, shape=np.array([prod(batch), prod(inner), prod(right)], np.int32),
                       name=name + "__b")
    y = ctx.mb.matmul(x=a, y=b, name=name + "__mm")
    got = batch + left + right
    y = ctx.mb.reshape(x=y, shape=np.array([sizes[c] for c in got] or [1], np.int32),
                       name=name + "__unflat" if got else name)
    if not got:  # a full contraction: ONNX gives a scalar
        ctx.set(out, ctx.mb.squeeze(x=y, name=name))
        return
    ctx.set(out, _transpose(ctx, y, "".join(got), out_idx, name, final=True))


def _sum_alone(ctx: EmitContext, var: Any, i: int, terms: list[str], out_idx: str,
               name: str) -> tuple[Any, str]:
    """Sum out the indices that appear in operand `i` only (and not in the output)."""
    term = terms[i]
    others = "".join(t for j, t in enumerate(terms) if j != i) + out_idx
    alone = [k for k, c in enumerate(term) if c not in others]
    if not alone:
        return var, term
    var = ctx.mb.reduce_sum(x=var, axes=alone, keep_dims=False, name=name + "_sum")
    return var, "".join(c for c in term if c in others)


def _transpose(ctx: EmitContext, var: Any, have: str, want: str, name: str,
               final: bool = False) -> Any:
    if have == want:
        return ctx.mb.identity(x=var, name=name) if final else var
    return ctx.mb.transpose(x=var, perm=[have.index(c) for c in want], name=name)
