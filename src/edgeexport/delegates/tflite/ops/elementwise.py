"""Elementwise arithmetic, math and logic: one TFLite op each, operands kept in the layout of the
first full-rank activation (constants are stored to match, so no transpose is needed).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import onnx_ir as ir
from ai_edge_litert import schema_py_generated as fb

from edgeexport.delegates.tflite import layout as L
from edgeexport.delegates.tflite.context import EmitContext, is_const
from edgeexport.delegates.tflite.registry import REGISTRY

_BINARY = {
    "Add": ("ADD", fb.AddOptionsT), "Sub": ("SUB", fb.SubOptionsT),
    "Mul": ("MUL", fb.MulOptionsT), "Div": ("DIV", fb.DivOptionsT),
    "Pow": ("POW", fb.PowOptionsT), "Max": ("MAXIMUM", fb.MaximumMinimumOptionsT),
    "Min": ("MINIMUM", fb.MaximumMinimumOptionsT),
    "Equal": ("EQUAL", fb.EqualOptionsT), "Less": ("LESS", fb.LessOptionsT),
    "LessOrEqual": ("LESS_EQUAL", fb.LessEqualOptionsT),
    "Greater": ("GREATER", fb.GreaterOptionsT),
    "GreaterOrEqual": ("GREATER_EQUAL", fb.GreaterEqualOptionsT),
    "And": ("LOGICAL_AND", fb.LogicalAndOptionsT), "Or": ("LOGICAL_OR", fb.LogicalOrOptionsT),
    "Xor": ("NOT_EQUAL", fb.NotEqualOptionsT),  # on booleans xor is inequality
}
_FUSABLE = {"ADD", "SUB", "MUL", "DIV"}
_UNARY = {
    "Abs": "ABS", "Neg": "NEG", "Sqrt": "SQRT", "Exp": "EXP", "Log": "LOG", "Floor": "FLOOR",
    "Ceil": "CEIL", "Round": "ROUND", "Sign": "SIGN", "Sin": "SIN", "Cos": "COS",
    "Not": "LOGICAL_NOT",
}


def _static(node: ir.Node, ctx: object) -> str | None:
    for v in list(node.inputs) + list(node.outputs):
        if v is not None and (v.shape is None or not all(isinstance(d, int) for d in v.shape)):
            return "dynamic shapes"
        if v is not None and v.shape is not None and len(v.shape) > 6:
            return "rank above 6"
    return None


def constant_second_input(what: str) -> Callable[[ir.Node, object], str | None]:
    """The check of an op whose second input (`what`) TFLite needs as a constant."""
    def check(node: ir.Node, ctx: object) -> str | None:
        if not is_const(node.inputs[1]):
            return f"{what} must be a constant"
        return _static(node, ctx)
    return check


def operands(ctx: EmitContext, values: Sequence[ir.Value], out: ir.Value
             ) -> tuple[list[int], L.Perm]:
    """Tensors of broadcasting operands in one shared layout, and that layout."""
    rank = ctx.rank(out)
    lay = L.identity(rank)
    for v in values:
        if ctx.const(v) is None and ctx.rank(v) == rank:
            lay = ctx.layout(v)
            break
    return [operand(ctx, v, lay) for v in values], lay


def operand(ctx: EmitContext, v: ir.Value, lay: L.Perm) -> int:
    rank = len(lay)
    arr = ctx.const(v)
    q = ctx.quant.get(v.name)
    if arr is None and q is not None and "int_value" in q:  # a quantized constant, int8 node
        iv = q["int_value"]
        pad = rank - iv.ndim
        lifted = dict(q, int_value=iv.reshape((1,) * pad + iv.shape), axis=q.get("axis", 0) + pad)
        return ctx._quant_const(v.name, lifted, lay)
    if arr is not None:
        if arr.ndim == 0 or arr.size == 1 and L.is_identity(lay):
            return ctx.input(v)
        if L.is_identity(lay) and arr.ndim <= rank:
            return ctx.input(v)
        full = arr.reshape((1,) * (rank - arr.ndim) + arr.shape)
        return ctx.const_tensor(full, v.name, lay)
    if ctx.rank(v) == rank:
        return ctx.input(v, lay)
    if L.is_identity(lay):
        return ctx.input(v, L.identity(ctx.rank(v)))
    # a lower-rank activation broadcast against a permuted one: lift it to full rank first
    shape = (1,) * (rank - ctx.rank(v)) + ctx.shape(v)
    src = ctx.input(v, L.identity(ctx.rank(v)))
    lifted = ctx.temp(f"{v.name}/r{rank}", shape, ctx.fb.dtype(src))
    ctx.reshape(src, lifted)
    phys = ctx.temp(f"{v.name}/r{rank}/{''.join(map(str, lay))}", L.physical_shape(shape, lay),
                    ctx.fb.dtype(src))
    if L.same_memory_order(shape, lay):
        ctx.reshape(lifted, phys)
    else:
        ctx.fb.op("TRANSPOSE", [lifted, ctx.int32(lay, f"perm{''.join(map(str, lay))}")], [phys])
    return phys


@REGISTRY.op(*_BINARY, check=_static, conditions="static shapes, rank <= 6")
def emit_binary(node: ir.Node, ctx: EmitContext) -> None:
    opname, options = _BINARY[node.op_type]
    divisor = ctx.const(node.inputs[1]) if node.op_type == "Div" and not ctx.int8_node else None
    if divisor is not None and divisor.dtype == np.float32 and np.all(divisor != 0):
        # x / c as x * (1/c): MUL is cheaper and delegated more widely (as litert-torch does)
        recip = (np.float32(1) / divisor).astype(np.float32)
        ins, lay = operands(ctx, [node.inputs[0]], node.outputs[0])
        c = recip.reshape((1,) * (len(lay) - recip.ndim) + recip.shape) if recip.ndim else recip
        ins.append(ctx.const_tensor(c, node.inputs[1].name + "/recip", lay if c.ndim else None))
        opname, options = "MUL", fb.MulOptionsT
    else:
        ins, lay = operands(ctx, list(node.inputs), node.outputs[0])
    act = fb.ActivationFunctionType.NONE
    out = node.outputs[0]
    if opname in _FUSABLE and ctx.dtype(out) == np.float32:
        out, act = ctx.fuse_activation(out)
    y = ctx.output(out, lay)
    opt = options()
    if opname in _FUSABLE:
        opt.fusedActivationFunction = act
    ctx.fb.op(opname, ins, [y], opt)


@REGISTRY.op("Sum", "Mean", check=_static, conditions="static shapes")
def emit_variadic(node: ir.Node, ctx: EmitContext) -> None:
    ins, lay = operands(ctx, list(node.inputs), node.outputs[0])
    out = node.outputs[0]
    acc = ins[0]
    shape = L.physical_shape(ctx.shape(out), lay)
    for i, t in enumerate(ins[1:]):
        last = i == len(ins) - 2 and node.op_type == "Sum"
        nxt = ctx.output(out, lay) if last else ctx.temp(f"{out.name}/acc{i}", shape, np.float32)
        ctx.fb.op("ADD", [acc, t], [nxt], fb.AddOptionsT())
        acc = nxt
    if node.op_type == "Mean":
        y = ctx.output(out, lay)
        ctx.fb.op("MUL", [acc, ctx.const_tensor(np.float32(1.0 / len(ins)), f"1/{len(ins)}")],
                  [y], fb.MulOptionsT())
    elif len(ins) == 1:
        ctx.alias(out, node.inputs[0])


@REGISTRY.op(*_UNARY, check=_static, conditions="static shapes")
def emit_unary(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    lay = ctx.layout(x)
    unary(ctx, _UNARY[node.op_type], ctx.input(x, lay), node.outputs[0], lay)


def unary(ctx: EmitContext, opname: str, x: int, out: ir.Value, lay: L.Perm,
          options: object = None) -> int:
    y = ctx.output(out, lay)
    ctx.fb.op(opname, [x], [y], options)
    return y


@REGISTRY.op("Reciprocal", check=_static, conditions="static shapes")
def emit_reciprocal(node: ir.Node, ctx: EmitContext) -> None:
    x = node.inputs[0]
    lay = ctx.layout(x)
    y = ctx.output(node.outputs[0], lay)
    ctx.fb.op("DIV", [ctx.const_tensor(np.float32(1), "one"), ctx.input(x, lay)], [y],
              fb.DivOptionsT())


def _check_where(node: ir.Node, ctx: object) -> str | None:
    return _static(node, ctx)


@REGISTRY.op("Where", check=_check_where, conditions="static shapes")
def emit_where(node: ir.Node, ctx: EmitContext) -> None:
    ins, lay = operands(ctx, list(node.inputs), node.outputs[0])
    y = ctx.output(node.outputs[0], lay)
    ctx.fb.op("SELECT_V2", ins, [y], fb.SelectV2OptionsT())


def _check_mod(node: ir.Node, ctx: object) -> str | None:
    fmod = node.attributes.get("fmod")
    if fmod is not None and fmod.as_int():
        return "fmod=1 (C-style remainder) has no TFLite op"
    return _static(node, ctx)


@REGISTRY.op("Mod", check=_check_mod, conditions="fmod=0")
def emit_mod(node: ir.Node, ctx: EmitContext) -> None:
    ins, lay = operands(ctx, list(node.inputs), node.outputs[0])
    y = ctx.output(node.outputs[0], lay)
    ctx.fb.op("FLOOR_MOD", ins, [y], fb.FloorModOptionsT())
