"""Neural-network ATen ops: convolutions, normalizations, reductions (and TopK/sort), softmax,
matrix products and attention. Pooling is in ops_pool.py.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import onnx_ir as ir
import torch

from edgeexport.exporter.aten.context import Context, NotLowerable, axis as _axis
from edgeexport.exporter.aten.context import per_dim as _tuple
from edgeexport.exporter.aten.registry import lowers

aten = torch.ops.aten


# -- convolution -------------------------------------------------------------------------------


def _conv(ctx: Context, node: Any, x: Any, weight: Any, bias: Any, stride: Any, padding: Any,
          dilation: Any, transposed: bool, output_padding: Any, groups: int) -> ir.Value:
    n = ctx.rank(weight) - 2
    if ctx.rank(x) != n + 2:
        raise NotLowerable("a convolution of an unbatched input")
    attrs: dict[str, Any] = {"strides": _tuple(stride, n), "dilations": _tuple(dilation, n),
                             "group": int(groups), "kernel_shape": list(ctx.shape(weight)[2:])}
    if isinstance(padding, str):
        if padding == "valid":
            pads = [0] * n
        elif padding == "same":  # PyTorch puts the odd extra pad at the end, like SAME_UPPER
            total = [d * (k - 1) for d, k in zip(attrs["dilations"], attrs["kernel_shape"])]
            attrs["pads"] = [t // 2 for t in total] + [t - t // 2 for t in total]
            pads = None
        else:
            raise NotLowerable(f"padding={padding}")
    else:
        pads = _tuple(padding, n)
    if pads is not None:
        attrs["pads"] = pads + pads
    inputs = [ctx.value(x), ctx.value(weight)] + ([ctx.value(bias)] if bias is not None else [])
    if transposed:
        attrs["output_padding"] = _tuple(output_padding, n)
        return ctx.op("ConvTranspose", inputs, attrs, final=True)
    return ctx.op("Conv", inputs, attrs, final=True)


@lowers(aten.conv1d.default, aten.conv2d.default, aten.conv3d.default,
        aten.conv1d.padding, aten.conv2d.padding, aten.conv3d.padding)
def _convnd(ctx: Context, node: Any, x: Any, weight: Any, bias: Any = None, stride: Any = 1,
            padding: Any = 0, dilation: Any = 1, groups: int = 1) -> ir.Value:
    return _conv(ctx, node, x, weight, bias, stride, padding, dilation, False, 0, groups)


@lowers(aten.conv_transpose1d.default, aten.conv_transpose2d.input, aten.conv_transpose3d.input)
def _conv_transpose(ctx: Context, node: Any, x: Any, weight: Any, bias: Any = None,
                    stride: Any = 1, padding: Any = 0, output_padding: Any = 0, groups: int = 1,
                    dilation: Any = 1) -> ir.Value:
    return _conv(ctx, node, x, weight, bias, stride, padding, dilation, True, output_padding,
                 groups)


@lowers(aten.convolution.default)
def _convolution(ctx: Context, node: Any, x: Any, weight: Any, bias: Any, stride: Any,
                 padding: Any, dilation: Any, transposed: bool, output_padding: Any,
                 groups: int) -> ir.Value:
    return _conv(ctx, node, x, weight, bias, stride, padding, dilation, transposed,
                 output_padding, groups)


# -- normalization -----------------------------------------------------------------------------


def _param(ctx: Context, arg: Any, size: int, fill: float, name: str, dtype: Any) -> ir.Value:
    if arg is None:
        return ctx.const(np.full(size, fill, dtype=dtype), f"{ctx.fx_node.name}_{name}")
    return ctx.value(arg)


def _batch_norm(ctx: Context, node: Any, x: Any, weight: Any, bias: Any, mean: Any, var: Any,
                eps: float) -> ir.Value:
    if mean is None or var is None:
        raise NotLowerable("batch_norm without running statistics")
    channels, dtype = ctx.shape(x)[1], ctx.dtype(x)
    inputs = [ctx.value(x), _param(ctx, weight, channels, 1.0, "scale", dtype),
              _param(ctx, bias, channels, 0.0, "bias", dtype), ctx.value(mean), ctx.value(var)]
    val = node.meta["val"]
    final = not isinstance(val, (tuple, list))
    out = ctx.op("BatchNormalization", inputs, {"epsilon": float(eps)}, final=final,
                 shape=ctx.shape(x), dtype=dtype)
    return out if final else (out, None, None)


@lowers(aten.batch_norm.default)
def _batch_norm_default(ctx: Context, node: Any, x: Any, weight: Any, bias: Any, mean: Any,
                        var: Any, training: bool, momentum: float, eps: float,
                        cudnn_enabled: bool = True) -> ir.Value:
    if training:
        raise NotLowerable("batch_norm in training mode")
    return _batch_norm(ctx, node, x, weight, bias, mean, var, eps)


@lowers(aten._native_batch_norm_legit_no_training.default)
def _batch_norm_no_training(ctx: Context, node: Any, x: Any, weight: Any, bias: Any, mean: Any,
                            var: Any, momentum: float, eps: float) -> tuple:
    return _batch_norm(ctx, node, x, weight, bias, mean, var, eps)


@lowers(aten.native_group_norm.default)
def _native_group_norm(ctx: Context, node: Any, x: Any, weight: Any, bias: Any, n: int, c: int,
                       hw: int, groups: int, eps: float) -> tuple:
    ctx_out = _group_norm_values(ctx, node, x, groups, weight, bias, eps,
                                 tuple(int(d) for d in node.meta["val"][0].shape))
    return (ctx_out, None, None)


@lowers(aten.layer_norm.default, aten.native_layer_norm.default)
def _layer_norm(ctx: Context, node: Any, x: Any, normalized_shape: Sequence[int],
                weight: Any = None, bias: Any = None, eps: float = 1e-5,
                cudnn_enable: bool = True) -> Any:
    dims = [int(d) for d in normalized_shape]
    dtype = ctx.dtype(x)
    scale = (ctx.value(weight) if weight is not None
             else ctx.const(np.ones(dims, dtype), f"{node.name}_scale"))
    inputs = [ctx.value(x), scale] + ([ctx.value(bias)] if bias is not None else [])
    attrs = {"axis": -len(dims), "epsilon": float(eps)}
    if node.target == aten.native_layer_norm.default:  # (y, mean, rstd) as ONNX's 3 outputs
        stats = tuple(int(d) for d in node.meta["val"][1].shape)
        outs = ctx.op("LayerNormalization", inputs, attrs, num_outputs=3,
                      shape=[ctx.shape(x), stats, stats], dtype=dtype)
        return tuple(outs)
    return ctx.op("LayerNormalization", inputs, attrs, final=True)


@lowers(aten.group_norm.default)
def _group_norm(ctx: Context, node: Any, x: Any, groups: int, weight: Any = None,
                bias: Any = None, eps: float = 1e-5, cudnn_enabled: bool = True) -> ir.Value:
    return _group_norm_values(ctx, node, x, groups, weight, bias, eps, None)


def _group_norm_values(ctx: Context, node: Any, x: Any, groups: int, weight: Any, bias: Any,
                       eps: float, out_shape: tuple | None) -> ir.Value:
    """`out_shape` None: the last op takes the FX node's metadata (single-output ops)."""
    # opset 20's GroupNormalization scales per group (per channel only from opset 21): normalize
    # with unit scale, then apply PyTorch's per-channel affine
    shape, dtype = ctx.shape(x), ctx.dtype(x)
    final = out_shape is None
    unit = [ctx.const(np.full(groups, v, dtype), f"{node.name}_{n}")
            for v, n in ((1.0, "scale"), (0.0, "bias"))]
    y = ctx.op("GroupNormalization", [ctx.value(x), *unit],
               {"num_groups": int(groups), "epsilon": float(eps)}, shape=shape, dtype=dtype,
               final=final and weight is None and bias is None)
    per_channel = (-1,) + (1,) * (len(shape) - 2)
    for arg, op_type in ((weight, "Mul"), (bias, "Add")):
        if arg is None:
            continue
        w = ctx.constant(arg)
        if w is None:
            raise NotLowerable("group_norm with a computed affine")
        last = op_type == "Add" or bias is None
        y = ctx.op(op_type, [y, ctx.const(w.reshape(per_channel), f"{node.name}_{op_type}")],
                   shape=shape, dtype=dtype, final=final and last)
    return y


@lowers(aten.softmax.int, aten._softmax.default, aten._safe_softmax.default)
def _softmax(ctx: Context, node: Any, x: Any, dim: int, *rest: Any, **kwargs: Any) -> ir.Value:
    value = ctx.cast(ctx.value(x), ctx.dtype(node))
    return ctx.op("Softmax", [value], {"axis": _axis(dim, ctx.rank(x))}, final=True)


@lowers(aten.log_softmax.int, aten._log_softmax.default)
def _log_softmax(ctx: Context, node: Any, x: Any, dim: int, *rest: Any, **kwargs: Any
                 ) -> ir.Value:
    value = ctx.cast(ctx.value(x), ctx.dtype(node))
    return ctx.op("LogSoftmax", [value], {"axis": _axis(dim, ctx.rank(x))}, final=True)


# -- matrix products ---------------------------------------------------------------------------


@lowers(aten.linear.default)
def _linear(ctx: Context, node: Any, x: Any, weight: Any, bias: Any = None) -> ir.Value:
    if ctx.rank(x) == 2 and ctx.rank(weight) == 2:
        inputs = [ctx.value(x), ctx.value(weight)] + ([ctx.value(bias)] if bias is not None else [])
        return ctx.op("Gemm", inputs, {"transB": 1}, final=True)
    w = ctx.constant(weight)
    if w is not None:
        wt = ctx.const(w.T.copy(), f"{node.name}_weight_t")
    else:
        wt = ctx.op("Transpose", [ctx.value(weight)], {"perm": [1, 0]},
                    shape=ctx.shape(weight)[::-1], dtype=ctx.dtype(weight))
    if bias is None:
        return ctx.op("MatMul", [ctx.value(x), wt], final=True)
    y = ctx.op("MatMul", [ctx.value(x), wt], shape=ctx.shape(node), dtype=ctx.dtype(node))
    return ctx.op("Add", [y, ctx.value(bias)], final=True)


@lowers(aten.matmul.default, aten.mm.default, aten.bmm.default)
def _matmul(ctx: Context, node: Any, a: Any, b: Any) -> ir.Value:
    return ctx.op("MatMul", [ctx.value(a), ctx.value(b)], final=True)


@lowers(aten.addmm.default)
def _addmm(ctx: Context, node: Any, bias: Any, a: Any, b: Any, *, beta: float = 1,
           alpha: float = 1) -> ir.Value:
    return ctx.op("Gemm", [ctx.value(a), ctx.value(b), ctx.value(bias)],
                  {"alpha": float(alpha), "beta": float(beta)}, final=True)


@lowers(aten.scaled_dot_product_attention.default)
def _sdpa(ctx: Context, node: Any, q: Any, k: Any, v: Any, attn_mask: Any = None,
          dropout_p: float = 0.0, is_causal: bool = False, *, scale: float | None = None,
          enable_gqa: bool = False) -> ir.Value:
    if dropout_p or enable_gqa:
        raise NotLowerable("attention with dropout or grouped-query heads")
    qs, ks = ctx.shape(q), ctx.shape(k)
    dtype = ctx.dtype(q)
    scale = 1.0 / math.sqrt(qs[-1]) if scale is None else scale
    rank = len(ks)
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    kt = ctx.op("Transpose", [ctx.value(k)], {"perm": perm}, shape=ks[:-2] + ks[:-3:-1],
                dtype=dtype)
    scores_shape = qs[:-1] + ks[-2:-1]
    s = ctx.op("MatMul", [ctx.value(q), kt], shape=scores_shape, dtype=dtype)
    s = ctx.op("Mul", [s, ctx.scalar(scale, dtype)], shape=scores_shape, dtype=dtype)
    # a mask known at export time (HF builds ViT's all-true and GPT-2's causal masks from
    # aranges) becomes one constant additive bias: no Where, and the fully-hidden-row guard
    # below only when the constant hides a whole row
    bias = np.zeros((), dtype)
    if is_causal:
        bias = np.where(np.tril(np.ones((qs[-2], ks[-2]), dtype=bool)), 0, -np.inf).astype(dtype)
    const = ctx.constant(attn_mask) if attn_mask is not None else None
    if const is not None:
        bias = bias + (np.where(const, 0, -np.inf) if const.dtype == np.bool_ else const
                       ).astype(dtype)
    if bias.ndim and not (bias == 0).all():
        s = ctx.op("Add", [s, ctx.const(bias, f"{node.name}_mask")], shape=scores_shape,
                   dtype=dtype)
    guard = const is not None and bool(np.isneginf(np.broadcast_to(
        bias, np.broadcast_shapes(bias.shape, scores_shape))).all(-1).any())
    if attn_mask is not None and const is None:
        guard = True
        mask = ctx.value(attn_mask)
        if ctx.dtype(attn_mask) == np.bool_:
            s = ctx.op("Where", [mask, s, ctx.scalar(-np.inf, dtype)], shape=scores_shape,
                       dtype=dtype)
        else:
            s = ctx.op("Add", [s, ctx.cast(mask, dtype)], shape=scores_shape, dtype=dtype)
    p = ctx.op("Softmax", [s], {"axis": -1}, shape=scores_shape, dtype=dtype)
    if guard:  # PyTorch gives 0, not NaN, where a mask hides a whole row
        hidden = ctx.op("IsInf", [s], {"detect_positive": 0}, shape=scores_shape, dtype=np.bool_)
        hidden = ctx.op("Cast", [hidden], {"to": ir.DataType.from_numpy(np.dtype(dtype))},
                        shape=scores_shape, dtype=dtype)
        rows = scores_shape[:-1] + (1,)
        hidden = ctx.op("ReduceMin", [hidden, ctx.ints([-1])], {"keepdims": 1}, shape=rows,
                        dtype=dtype)
        hidden = ctx.op("Cast", [hidden], {"to": ir.DataType.BOOL}, shape=rows, dtype=np.bool_)
        p = ctx.op("Where", [hidden, ctx.scalar(0.0, dtype), p], shape=scores_shape, dtype=dtype)
    return ctx.op("MatMul", [p, ctx.value(v)], final=True)


# -- reductions --------------------------------------------------------------------------------
def _axes(dims: Any, rank: int) -> list[int]:
    """A reduction's `dim` argument (None, [], one int or several) as sorted non-negative axes."""
    if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
        return list(range(rank))
    return sorted(_axis(int(d), rank) for d in ([dims] if isinstance(dims, int) else dims))


def _reduce(ctx: Context, node: Any, op_type: str, x: Any, dims: Any, keepdim: bool) -> ir.Value:
    rank = ctx.rank(x)
    dtype = ctx.dtype(node)
    value = ctx.cast(ctx.value(x), dtype)
    axes = _axes(dims, rank)
    if rank == 0:
        return ctx.op("Identity", [value], final=True)
    return ctx.op(op_type, [value, ctx.ints(axes)], {"keepdims": int(bool(keepdim))}, final=True)


@lowers(aten.mean.dim)
def _mean(ctx: Context, node: Any, x: Any, dim: Any, keepdim: bool = False, *,
          dtype: Any = None) -> ir.Value:
    return _reduce(ctx, node, "ReduceMean", x, dim, keepdim)


@lowers(aten.mean.default)
def _mean_all(ctx: Context, node: Any, x: Any, *, dtype: Any = None) -> ir.Value:
    return _reduce(ctx, node, "ReduceMean", x, None, False)


@lowers(aten.sum.dim_IntList)
def _sum(ctx: Context, node: Any, x: Any, dim: Any, keepdim: bool = False, *,
         dtype: Any = None) -> ir.Value:
    return _reduce(ctx, node, "ReduceSum", x, dim, keepdim)


@lowers(aten.sum.default)
def _sum_all(ctx: Context, node: Any, x: Any, *, dtype: Any = None) -> ir.Value:
    return _reduce(ctx, node, "ReduceSum", x, None, False)


@lowers(aten.linalg_vector_norm.default)
def _vector_norm(ctx: Context, node: Any, x: Any, ord: Any = 2, dim: Any = None,
                 keepdim: bool = False, *, dtype: Any = None) -> ir.Value:
    """torch.linalg.vector_norm (F.normalize, sentence-embedding heads): ReduceL2 / ReduceL1
    as they are, max/min |x| for +-inf, (sum |x|^p)^(1/p) otherwise."""
    p = float(ord)
    if p == 2:
        return _reduce(ctx, node, "ReduceL2", x, dim, keepdim)
    if p == 1:
        return _reduce(ctx, node, "ReduceL1", x, dim, keepdim)
    if p == 0 or p != p:
        raise NotLowerable(f"vector_norm with ord={ord}")
    dt = ctx.dtype(node)
    magnitude = ctx.op("Abs", [ctx.cast(ctx.value(x), dt)], shape=ctx.shape(x), dtype=dt)
    axes = _axes(dim, ctx.rank(x))
    kept = [1 if i in axes else n for i, n in enumerate(ctx.shape(x))]
    out_shape = kept if keepdim else [n for i, n in enumerate(ctx.shape(x)) if i not in axes]
    if p in (float("inf"), float("-inf")):
        return ctx.op("ReduceMax" if p > 0 else "ReduceMin", [magnitude, ctx.ints(axes)],
                      {"keepdims": int(bool(keepdim))}, final=True)
    powered = ctx.op("Pow", [magnitude, ctx.scalar(p, dt)], shape=ctx.shape(x), dtype=dt)
    total = ctx.op("ReduceSum", [powered, ctx.ints(axes)], {"keepdims": int(bool(keepdim))},
                   shape=out_shape, dtype=dt)
    return ctx.op("Pow", [total, ctx.scalar(1.0 / p, dt)], final=True)


@lowers(aten.amax.default)
def _amax(ctx: Context, node: Any, x: Any, dim: Any = (), keepdim: bool = False) -> ir.Value:
    return _reduce(ctx, node, "ReduceMax", x, dim, keepdim)


@lowers(aten.amin.default)
def _amin(ctx: Context, node: Any, x: Any, dim: Any = (), keepdim: bool = False) -> ir.Value:
    return _reduce(ctx, node, "ReduceMin", x, dim, keepdim)


@lowers(aten.prod.default)
def _prod_all(ctx: Context, node: Any, x: Any, *, dtype: Any = None) -> ir.Value:
    return _reduce(ctx, node, "ReduceProd", x, None, False)


@lowers(aten.prod.dim_int)
def _prod(ctx: Context, node: Any, x: Any, dim: int, keepdim: bool = False, *,
          dtype: Any = None) -> ir.Value:
    return _reduce(ctx, node, "ReduceProd", x, [dim], keepdim)


def _any_all(op_type: str):
    def lower(ctx: Context, node: Any, x: Any, dim: Any = None, keepdim: bool = False
              ) -> ir.Value:
        # any/all = max/min of (x != 0) as 0/1 floats: bool reductions are newer than opset 20
        rank, shape = ctx.rank(x), ctx.shape(x)
        src = ctx.value(x)
        zero = ctx.scalar(0, ctx.dtype(x)) if ctx.dtype(x) != np.bool_ else None
        truth = (ctx.op("Not", [ctx.op("Equal", [src, zero], shape=shape, dtype=np.bool_)],
                        shape=shape, dtype=np.bool_) if zero is not None else src)
        ones = ctx.op("Cast", [truth], {"to": ir.DataType.FLOAT}, shape=shape, dtype=np.float32)
        dims = list(range(rank)) if dim is None or dim == [] else (
            [dim] if isinstance(dim, int) else list(dim))
        axes = sorted(_axis(int(d), rank) for d in dims)
        out_shape = ctx.shape(node)
        red = ctx.op(op_type, [ones, ctx.ints(axes)], {"keepdims": int(bool(keepdim))},
                     shape=out_shape, dtype=np.float32)
        return ctx.op("Cast", [red], {"to": ir.DataType.BOOL}, final=True)

    return lower


lowers(aten.any.default, aten.any.dim, aten.any.dims)(_any_all("ReduceMax"))
lowers(aten.all.default, aten.all.dim, aten.all.dims)(_any_all("ReduceMin"))


def _arg(ctx: Context, node: Any, op_type: str, x: Any, dim: Any, keepdim: bool) -> ir.Value:
    if dim is None:  # over all elements: flatten first
        flat = (int(np.prod(ctx.shape(x))),)
        value = ctx.op("Reshape", [ctx.value(x), ctx.ints(flat)], shape=flat, dtype=ctx.dtype(x))
        idx = ctx.op(op_type, [value], {"axis": 0, "keepdims": 1}, shape=(1,), dtype=np.int64)
        return ctx.op("Reshape", [idx, ctx.ints(ctx.shape(node))], final=True)
    return ctx.op(op_type, [ctx.value(x)], {"axis": _axis(int(dim), ctx.rank(x)),
                                            "keepdims": int(bool(keepdim))},
                  final=True)


@lowers(aten.argmax.default)
def _argmax(ctx: Context, node: Any, x: Any, dim: Any = None, keepdim: bool = False) -> ir.Value:
    return _arg(ctx, node, "ArgMax", x, dim, keepdim)


@lowers(aten.argmin.default)
def _argmin(ctx: Context, node: Any, x: Any, dim: Any = None, keepdim: bool = False) -> ir.Value:
    return _arg(ctx, node, "ArgMin", x, dim, keepdim)


@lowers(aten.topk.default)
def _topk(ctx: Context, node: Any, x: Any, k: int, dim: int = -1, largest: bool = True,
          sorted: bool = True) -> tuple:
    return _top(ctx, node, x, int(k), dim, largest)


@lowers(aten.sort.default, aten.sort.stable)
def _sort(ctx: Context, node: Any, x: Any, dim: int = -1, descending: bool = False, *,
          stable: bool | None = None) -> tuple:
    """A full sort is TopK with k = the axis length; TopK puts equal values in index order,
    which is the stable sort (the default sort leaves their order open)."""
    shape = ctx.shape(x)
    return _top(ctx, node, x, shape[_axis(dim, len(shape))] if shape else 1, dim, descending)


def _top(ctx: Context, node: Any, x: Any, k: int, dim: int, largest: bool) -> tuple:
    shape = list(ctx.shape(x))
    if not shape:
        raise NotLowerable("TopK of a 0-d tensor")
    axis = _axis(dim, len(shape))
    shape[axis] = k
    values, indices = ctx.op("TopK", [ctx.value(x), ctx.ints([k])],
                             {"axis": axis, "largest": int(bool(largest)), "sorted": 1},
                             shape=[shape, shape], dtype=ctx.dtype(x), num_outputs=2)
    indices.type = ir.TensorType(ir.DataType.INT64)
    return values, indices


@lowers(aten.pixel_shuffle.default)
def _pixel_shuffle(ctx: Context, node: Any, x: Any, factor: int) -> ir.Value:
    if ctx.rank(x) != 4:
        raise NotLowerable("pixel_shuffle on a tensor that is not 4-d")
    return ctx.op("DepthToSpace", [ctx.value(x)], {"blocksize": int(factor), "mode": "CRD"},
                  final=True)
