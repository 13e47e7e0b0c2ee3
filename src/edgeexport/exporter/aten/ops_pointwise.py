"""Elementwise ATen ops: arithmetic with PyTorch's type promotion, comparisons, activations,
casts and the no-op ops (clone, dropout in eval, detach).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir
import torch

from edgeexport.exporter.aten.context import Context, NotLowerable, np_dtype
from edgeexport.exporter.aten.registry import lowers

aten = torch.ops.aten


def _proxy(ctx: Context, x: Any) -> Any:
    if isinstance(x, torch.fx.Node):
        val = ctx.meta(x)
        return torch.empty(val.shape, dtype=val.dtype, device="meta")
    return x


def promoted(ctx: Context, a: Any, b: Any) -> np.dtype:
    """PyTorch's result dtype for two operands (tensors outrank 0-d tensors outrank scalars)."""
    return np_dtype(torch.result_type(_proxy(ctx, a), _proxy(ctx, b)))


def operand(ctx: Context, x: Any, dtype: np.dtype) -> ir.Value:
    """A tensor argument cast to `dtype`, or a Python number as a typed scalar."""
    if isinstance(x, torch.fx.Node):
        return ctx.cast(ctx.value(x), dtype)
    if not isinstance(x, (int, float, bool)):
        raise NotLowerable(f"an operand of type {type(x).__name__}")
    return ctx.scalar(x, dtype)


def _binary(op_type: str, *, out_dtype: bool = True):
    def lower(ctx: Context, node: Any, a: Any, b: Any, *, alpha: Any = 1) -> ir.Value:
        dtype = ctx.dtype(node) if out_dtype else promoted(ctx, a, b)
        if out_dtype and op_type == "Div" and not np.issubdtype(dtype, np.floating):
            raise NotLowerable("integer division")
        if out_dtype and dtype == np.bool_:
            raise NotLowerable(f"{op_type} on booleans")
        x, y = operand(ctx, a, dtype), operand(ctx, b, dtype)
        if alpha != 1:
            y = ctx.op("Mul", [y, ctx.scalar(alpha, dtype)], shape=y.shape, dtype=dtype)
        return ctx.op(op_type, [x, y], final=True)

    return lower


lowers(aten.add.Tensor, aten.add.Scalar)(_binary("Add"))
lowers(aten.sub.Tensor, aten.sub.Scalar)(_binary("Sub"))
lowers(aten.mul.Tensor, aten.mul.Scalar)(_binary("Mul"))
lowers(aten.div.Tensor, aten.div.Scalar)(_binary("Div"))
lowers(aten.maximum.default)(_binary("Max"))
lowers(aten.minimum.default)(_binary("Min"))
lowers(aten.eq.Tensor, aten.eq.Scalar)(_binary("Equal", out_dtype=False))
lowers(aten.lt.Tensor, aten.lt.Scalar)(_binary("Less", out_dtype=False))
lowers(aten.le.Tensor, aten.le.Scalar)(_binary("LessOrEqual", out_dtype=False))
lowers(aten.gt.Tensor, aten.gt.Scalar)(_binary("Greater", out_dtype=False))
lowers(aten.ge.Tensor, aten.ge.Scalar)(_binary("GreaterOrEqual", out_dtype=False))


def _logical(op_type: str, *, bitwise: bool):
    def lower(ctx: Context, node: Any, a: Any, b: Any) -> ir.Value:
        if bitwise and ctx.dtype(node) != np.bool_:
            raise NotLowerable(f"bitwise {op_type} on integers")
        return ctx.op(op_type, [operand(ctx, a, np.bool_), operand(ctx, b, np.bool_)],
                      final=True)

    return lower


lowers(aten.logical_and.default)(_logical("And", bitwise=False))
lowers(aten.logical_or.default)(_logical("Or", bitwise=False))
lowers(aten.logical_xor.default)(_logical("Xor", bitwise=False))
lowers(aten.__and__.Tensor, aten.bitwise_and.Tensor)(_logical("And", bitwise=True))
lowers(aten.__or__.Tensor, aten.bitwise_or.Tensor)(_logical("Or", bitwise=True))
lowers(aten.__xor__.Tensor, aten.bitwise_xor.Tensor)(_logical("Xor", bitwise=True))


@lowers(aten.ne.Tensor, aten.ne.Scalar)
def _ne(ctx: Context, node: Any, a: Any, b: Any) -> ir.Value:
    dtype = promoted(ctx, a, b)
    eq = ctx.op("Equal", [operand(ctx, a, dtype), operand(ctx, b, dtype)],
                shape=ctx.shape(node), dtype=np.bool_)
    return ctx.op("Not", [eq], final=True)


@lowers(aten.rsub.Scalar, aten.rsub.Tensor)
def _rsub(ctx: Context, node: Any, a: Any, b: Any, *, alpha: Any = 1) -> ir.Value:
    dtype = ctx.dtype(node)
    x, y = operand(ctx, a, dtype), operand(ctx, b, dtype)
    if alpha != 1:
        x = ctx.op("Mul", [x, ctx.scalar(alpha, dtype)], shape=x.shape, dtype=dtype)
    return ctx.op("Sub", [y, x], final=True)


@lowers(aten.div.Tensor_mode, aten.div.Scalar_mode)
def _div_mode(ctx: Context, node: Any, a: Any, b: Any, *, rounding_mode: str | None = None
              ) -> ir.Value:
    dtype = ctx.dtype(node)
    if not np.issubdtype(dtype, np.floating) or rounding_mode not in (None, "floor"):
        raise NotLowerable(f"div with rounding_mode={rounding_mode} on {dtype}")
    q = ctx.op("Div", [operand(ctx, a, dtype), operand(ctx, b, dtype)],
               shape=ctx.shape(node), dtype=dtype, final=rounding_mode is None)
    return q if rounding_mode is None else ctx.op("Floor", [q], final=True)


@lowers(aten.pow.Tensor_Scalar, aten.pow.Tensor_Tensor)
def _pow(ctx: Context, node: Any, a: Any, b: Any) -> ir.Value:
    dtype = ctx.dtype(node)
    if not np.issubdtype(dtype, np.floating):
        raise NotLowerable("integer pow")
    x = operand(ctx, a, dtype)
    if b == 2:  # x*x is exact; Pow goes through exp/log on some targets
        return ctx.op("Mul", [x, x], final=True)
    return ctx.op("Pow", [x, operand(ctx, b, dtype)], final=True)


@lowers(aten.where.self, aten.where.ScalarSelf, aten.where.ScalarOther, aten.where.Scalar)
def _where(ctx: Context, node: Any, cond: Any, a: Any, b: Any) -> ir.Value:
    dtype = ctx.dtype(node)
    c = ctx.cast(ctx.value(cond), np.bool_)
    return ctx.op("Where", [c, operand(ctx, a, dtype), operand(ctx, b, dtype)], final=True)


_UNARY = {
    aten.relu.default: "Relu", aten.sigmoid.default: "Sigmoid", aten.tanh.default: "Tanh",
    aten.exp.default: "Exp", aten.log.default: "Log", aten.sqrt.default: "Sqrt",
    aten.neg.default: "Neg", aten.abs.default: "Abs", aten.reciprocal.default: "Reciprocal",
    aten.sin.default: "Sin", aten.cos.default: "Cos", aten.tan.default: "Tan",
    aten.asin.default: "Asin", aten.acos.default: "Acos", aten.atan.default: "Atan",
    aten.sinh.default: "Sinh", aten.cosh.default: "Cosh", aten.asinh.default: "Asinh",
    aten.acosh.default: "Acosh", aten.atanh.default: "Atanh", aten.erf.default: "Erf",
    aten.floor.default: "Floor", aten.ceil.default: "Ceil", aten.round.default: "Round",
    aten.sign.default: "Sign", aten.hardswish.default: "HardSwish", aten.mish.default: "Mish",
}
_INTEGER_IDENTITY = {"Floor", "Ceil", "Round"}  # on integers PyTorch returns the input


@lowers(*_UNARY)
def _unary(ctx: Context, node: Any, x: Any) -> ir.Value:
    op_type = _UNARY[node.target] if node.target in _UNARY else _UNARY[_functional(node.target)]
    dtype = ctx.dtype(node)
    value = ctx.cast(ctx.value(x), dtype)
    if op_type in _INTEGER_IDENTITY and not np.issubdtype(dtype, np.floating):
        return ctx.op("Identity", [value], final=True)
    if op_type in ("Relu", "Neg", "Abs", "Sign") or np.issubdtype(dtype, np.floating):
        return ctx.op(op_type, [value], final=True)
    raise NotLowerable(f"{node.target} on {dtype}")


def _functional(target: Any) -> Any:
    name = target._schema.name.split("::")[-1].rstrip("_")
    return getattr(getattr(aten, name), target._overloadname)


@lowers(aten.trunc.default, aten.fix.default)
def _trunc(ctx: Context, node: Any, x: Any) -> ir.Value:
    dtype = ctx.dtype(node)
    value = ctx.value(x)
    if not np.issubdtype(dtype, np.floating):
        return ctx.op("Identity", [value], final=True)
    shape = ctx.shape(node)
    mag = ctx.op("Floor", [ctx.op("Abs", [value], shape=shape, dtype=dtype)], shape=shape,
                 dtype=dtype)
    return ctx.op("Mul", [ctx.op("Sign", [value], shape=shape, dtype=dtype), mag], final=True)


@lowers(aten.round.decimals)
def _round_decimals(ctx: Context, node: Any, x: Any, *, decimals: int = 0) -> ir.Value:
    dtype, shape = ctx.dtype(node), ctx.shape(node)
    if not np.issubdtype(dtype, np.floating) or decimals < 0:
        raise NotLowerable("round with negative decimals or on integers")
    scale = ctx.scalar(10.0 ** decimals, dtype)
    up = ctx.op("Mul", [ctx.value(x), scale], shape=shape, dtype=dtype)
    rounded = ctx.op("Round", [up], shape=shape, dtype=dtype)
    return ctx.op("Div", [rounded, scale], final=True)


def _log_base(base: float):
    def lower(ctx: Context, node: Any, x: Any) -> ir.Value:
        dtype = ctx.dtype(node)
        if not np.issubdtype(dtype, np.floating):
            raise NotLowerable("log of integers")
        ln = ctx.op("Log", [ctx.cast(ctx.value(x), dtype)], shape=ctx.shape(node), dtype=dtype)
        return ctx.op("Div", [ln, ctx.scalar(np.log(base), dtype)], final=True)

    return lower


lowers(aten.log2.default)(_log_base(2.0))
lowers(aten.log10.default)(_log_base(10.0))


@lowers(aten.clamp.Tensor)
def _clamp_tensor(ctx: Context, node: Any, x: Any, min: Any = None, max: Any = None
                  ) -> ir.Value:
    dtype, shape = ctx.dtype(node), ctx.shape(node)
    y = ctx.cast(ctx.value(x), dtype)
    bounds = [(b, op) for b, op in ((min, "Max"), (max, "Min")) if b is not None]
    for i, (bound, op_type) in enumerate(bounds):
        y = ctx.op(op_type, [y, operand(ctx, bound, dtype)], shape=shape, dtype=dtype,
                   final=i == len(bounds) - 1)
    return y


@lowers(aten.rsqrt.default)
def _rsqrt(ctx: Context, node: Any, x: Any) -> ir.Value:
    dtype = ctx.dtype(node)
    s = ctx.op("Sqrt", [ctx.cast(ctx.value(x), dtype)], shape=ctx.shape(node), dtype=dtype)
    return ctx.op("Reciprocal", [s], final=True)


@lowers(aten.logical_not.default, aten.bitwise_not.default)
def _not(ctx: Context, node: Any, x: Any) -> ir.Value:
    if ctx.dtype(x) != np.bool_ and node.target == aten.bitwise_not.default:
        raise NotLowerable("bitwise_not on integers")
    return ctx.op("Not", [ctx.cast(ctx.value(x), np.bool_)], final=True)


@lowers(aten.isnan.default)
def _isnan(ctx: Context, node: Any, x: Any) -> ir.Value:
    return ctx.op("IsNaN", [ctx.value(x)], final=True)


@lowers(aten.isinf.default)
def _isinf(ctx: Context, node: Any, x: Any) -> ir.Value:
    return ctx.op("IsInf", [ctx.value(x)], final=True)


# -- activations with parameters ---------------------------------------------------------------


def _clip(ctx: Context, node: Any, x: Any, lo: Any, hi: Any) -> ir.Value:
    dtype = ctx.dtype(node)
    inputs = [ctx.cast(ctx.value(x), dtype),
              None if lo is None else ctx.scalar(lo, dtype),
              None if hi is None else ctx.scalar(hi, dtype)]
    while inputs[-1] is None:
        inputs.pop()
    return ctx.op("Clip", inputs, final=True)


@lowers(aten.hardtanh.default)
def _hardtanh(ctx: Context, node: Any, x: Any, min_val: float = -1.0, max_val: float = 1.0
              ) -> ir.Value:
    return _clip(ctx, node, x, min_val, max_val)


@lowers(aten.relu6.default)
def _relu6(ctx: Context, node: Any, x: Any) -> ir.Value:
    return _clip(ctx, node, x, 0.0, 6.0)


@lowers(aten.clamp.default)
def _clamp(ctx: Context, node: Any, x: Any, min: Any = None, max: Any = None) -> ir.Value:
    if not np.issubdtype(ctx.dtype(node), np.floating) and (
            isinstance(min, float) or isinstance(max, float)):
        raise NotLowerable("clamp of integers by float bounds")
    return _clip(ctx, node, x, min, max)


@lowers(aten.clamp_min.default)
def _clamp_min(ctx: Context, node: Any, x: Any, lo: Any) -> ir.Value:
    return _clamp(ctx, node, x, lo, None)


@lowers(aten.clamp_max.default)
def _clamp_max(ctx: Context, node: Any, x: Any, hi: Any) -> ir.Value:
    return _clamp(ctx, node, x, None, hi)


@lowers(aten.leaky_relu.default)
def _leaky_relu(ctx: Context, node: Any, x: Any, negative_slope: float = 0.01) -> ir.Value:
    return ctx.op("LeakyRelu", [ctx.value(x)], {"alpha": float(negative_slope)}, final=True)


@lowers(aten.elu.default)
def _elu(ctx: Context, node: Any, x: Any, alpha: float = 1.0, scale: float = 1.0,
         input_scale: float = 1.0) -> ir.Value:
    if scale != 1 or input_scale != 1:
        raise NotLowerable("elu with scale or input_scale")
    return ctx.op("Elu", [ctx.value(x)], {"alpha": float(alpha)}, final=True)


@lowers(aten.gelu.default)
def _gelu(ctx: Context, node: Any, x: Any, *, approximate: str = "none") -> ir.Value:
    return ctx.op("Gelu", [ctx.value(x)], {"approximate": approximate}, final=True)


@lowers(aten.silu.default)
def _silu(ctx: Context, node: Any, x: Any) -> ir.Value:
    value = ctx.value(x)
    s = ctx.op("Sigmoid", [value], shape=ctx.shape(node), dtype=ctx.dtype(node))
    return ctx.op("Mul", [value, s], final=True)


@lowers(aten.hardsigmoid.default)
def _hardsigmoid(ctx: Context, node: Any, x: Any) -> ir.Value:
    return ctx.op("HardSigmoid", [ctx.value(x)], {"alpha": 1.0 / 6.0, "beta": 0.5}, final=True)


@lowers(aten.softplus.default)
def _softplus(ctx: Context, node: Any, x: Any, beta: float = 1.0, threshold: float = 20.0
              ) -> ir.Value:
    # above the threshold PyTorch returns x; log1p(exp(x)) equals x there in float32
    if beta != 1 or threshold < 15:
        raise NotLowerable("softplus with beta != 1 or a low threshold")
    return ctx.op("Softplus", [ctx.value(x)], final=True)


@lowers(aten.prelu.default, aten._prelu_kernel.default)
def _prelu(ctx: Context, node: Any, x: Any, weight: Any) -> ir.Value:
    slope = ctx.constant(weight)
    rank = ctx.rank(x)
    if slope is None or slope.ndim != 1 or rank < 2:
        raise NotLowerable("prelu with a non-constant or non-channel weight")
    shaped = slope.reshape((-1,) + (1,) * (rank - 2)) if slope.size > 1 else slope
    return ctx.op("PRelu", [ctx.value(x), ctx.const(shaped, f"{node.name}_slope")], final=True)


# -- casts and no-ops --------------------------------------------------------------------------


def _cast_to_node(ctx: Context, node: Any, x: Any) -> ir.Value:
    dtype = ctx.dtype(node)
    value = ctx.value(x)
    if value.dtype == ir.DataType.from_numpy(dtype):
        return value
    return ctx.op("Cast", [value], {"to": ir.DataType.from_numpy(dtype)}, final=True)


@lowers(aten.to.dtype, aten.to.dtype_layout, aten._to_copy.default, aten.type_as.default,
        aten.to.device, aten.to.other)
def _to(ctx: Context, node: Any, x: Any, *args: Any, **kwargs: Any) -> ir.Value:
    return _cast_to_node(ctx, node, x)


@lowers(aten.clone.default, aten.contiguous.default, aten.alias.default, aten.detach.default,
        aten.lift_fresh_copy.default, aten.dropout.default, aten.feature_dropout.default,
        aten.alpha_dropout.default, aten.feature_alpha_dropout.default)
def _identity(ctx: Context, node: Any, x: Any, *args: Any, **kwargs: Any) -> ir.Value:
    if node.target in (aten.dropout.default, aten.feature_dropout.default,
                       aten.alpha_dropout.default, aten.feature_alpha_dropout.default) and (
            len(args) > 1 and args[1]):
        raise NotLowerable("dropout in training mode")
    return ctx.value(x)


@lowers(aten.native_dropout.default)
def _native_dropout(ctx: Context, node: Any, x: Any, p: float, train: bool | None) -> tuple:
    if train:
        raise NotLowerable("dropout in training mode")
    return (ctx.value(x), None)

