"""Pooling ATen ops: max/average pooling (ceil mode with PyTorch's divisors), adaptive pooling
(uneven windows as a MatMul with the averaging matrix).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx_ir as ir
import torch

from edgeexport.exporter.aten.context import Context, NotLowerable
from edgeexport.exporter.aten.context import per_dim as _tuple
from edgeexport.exporter.aten.registry import lowers

aten = torch.ops.aten


def _batched(ctx: Context, node: Any, x: Any) -> int:
    """Spatial rank of a pooling op (from its name); unbatched inputs are left to torch.onnx."""
    name = node.target._schema.name
    n = 3 if "3d" in name else 1 if "1d" in name else 2
    if ctx.rank(x) != n + 2:
        raise NotLowerable(f"{node.target} on an unbatched input")
    return n


def _pool_out(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    span = size + 2 * p - d * (k - 1) - 1
    return (-(-span // s) if ceil else span // s) + 1


def _check_pool_shape(ctx: Context, node: Any, x: Any, k: list[int], s: list[int],
                      p: list[int], d: list[int], ceil: bool, out_shape: Sequence[int]) -> None:
    got = [_pool_out(n, *a, ceil) for n, *a in zip(ctx.shape(x)[2:], k, s, p, d)]
    if got != list(out_shape[2:]):  # PyTorch drops a last window that starts in the padding
        raise NotLowerable("a ceil-mode pooling window that ONNX counts differently")


def _max_pool_value(ctx: Context, node: Any, x: Any, kernel_size: Any, stride: Any,
                    padding: Any, dilation: Any, ceil_mode: bool,
                    out_shape: tuple[int, ...] | None) -> ir.Value:
    """`out_shape` None: the MaxPool output takes the FX node's metadata (single output)."""
    n = _batched(ctx, node, x)
    k = _tuple(kernel_size, n)
    s = _tuple(stride, n) if stride not in ((), [], None) else k
    p, d = _tuple(padding, n), _tuple(dilation, n)
    _check_pool_shape(ctx, node, x, k, s, p, d, ceil_mode, out_shape or ctx.shape(node))
    return ctx.op("MaxPool", [ctx.value(x)], {"kernel_shape": k, "strides": s, "pads": p + p,
                                              "dilations": d, "ceil_mode": int(ceil_mode)},
                  final=out_shape is None, shape=out_shape, dtype=ctx.dtype(x))


@lowers(aten.max_pool1d.default, aten.max_pool2d.default, aten.max_pool3d.default)
def _max_pool(ctx: Context, node: Any, x: Any, kernel_size: Any, stride: Any = (),
              padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False) -> ir.Value:
    return _max_pool_value(ctx, node, x, kernel_size, stride, padding, dilation, ceil_mode, None)


@lowers(aten.avg_pool1d.default, aten.avg_pool2d.default, aten.avg_pool3d.default)
def _avg_pool(ctx: Context, node: Any, x: Any, kernel_size: Any, stride: Any = (),
              padding: Any = 0, ceil_mode: bool = False, count_include_pad: bool = True,
              divisor_override: Any = None) -> ir.Value:
    n = _batched(ctx, node, x)
    k = _tuple(kernel_size, n)
    s = _tuple(stride, n) if stride not in ((), [], None) else k
    p = _tuple(padding, n)
    k, s = _one_window_clipped(ctx.shape(x)[2:], ctx.shape(node)[2:], k, s, p)
    if ceil_mode and any(_pool_out(i, *a, 1, True) != _pool_out(i, *a, 1, False)
                         for i, *a in zip(ctx.shape(x)[2:], k, s, p)):
        # (when ceil adds no window, ceil mode changes nothing)
        return _avg_pool_divided(ctx, node, x, k, s, p, count_include_pad, divisor_override)
    _check_pool_shape(ctx, node, x, k, s, p, [1] * n, False, ctx.shape(node))
    attrs = {"kernel_shape": k, "strides": s, "pads": p + p,
             "count_include_pad": int(count_include_pad or divisor_override is not None)}
    if divisor_override is None:
        return ctx.op("AveragePool", [ctx.value(x)], attrs, final=True)
    # every window lies inside the padded input (no ceil mode): sum = mean * kernel size
    mean = ctx.op("AveragePool", [ctx.value(x)], attrs, shape=ctx.shape(node), dtype=ctx.dtype(x))
    factor = ctx.scalar(float(np.prod(k)) / float(divisor_override), ctx.dtype(x))
    return ctx.op("Mul", [mean, factor], final=True)


def _one_window_clipped(size: Sequence[int], out: Sequence[int], k: list[int], s: list[int],
                        p: list[int]) -> tuple[list[int], list[int]]:
    """On an axis with one output, a ceil-mode window longer than the padded input is clipped
    to it: PyTorch divides by the clipped length (count_include_pad) or by the input's (not),
    the same as a kernel of the padded input's length. Without this, HF EfficientNet's pooler
    (AvgPool2d(320, ceil_mode=True) on 2x2) zero-padded its input to 320x320 (131 MB), and
    ncnn-vulkan averaged that blob 1.6x off."""
    k, s = list(k), list(s)
    for i, (n, o) in enumerate(zip(size, out)):
        if o == 1 and k[i] > n + 2 * p[i]:
            k[i] = s[i] = n + 2 * p[i]
    return k, s


def _avg_pool_divided(ctx: Context, node: Any, x: Any, k: list[int], s: list[int],
                      p: list[int], count_include_pad: bool, divisor_override: Any) -> ir.Value:
    """avg_pool whose windows PyTorch divides by a count ONNX's AveragePool does not use (ceil
    mode: the last window is clipped to the padded input): zero-pad so that every window is
    whole, take the whole-window mean, then scale each output by kernel size / PyTorch's
    divisor for that window (a constant: the divisors depend on positions only)."""
    in_shape, out_shape = ctx.shape(x), ctx.shape(node)
    factors, after = [], []
    for size, out, k_, s_, p_ in zip(in_shape[2:], out_shape[2:], k, s, p):
        after.append(max((out - 1) * s_ + k_ - size - p_, 0))
        start = np.arange(out) * s_ - p_
        end = np.minimum(start + k_, size + p_)
        counted = end - start if count_include_pad else (
            np.minimum(end, size) - np.maximum(start, 0))
        factors.append(k_ / counted)
    scale = factors[0]
    for f in factors[1:]:
        scale = np.multiply.outer(scale, f)
    if divisor_override is not None:  # whole-window mean * kernel size / the given divisor
        scale = np.full_like(scale, float(np.prod(k)) / float(divisor_override))
    dtype = ctx.dtype(x)
    padded = [a + p_ + b for a, p_, b in zip(in_shape[2:], p, after)]
    value = ctx.op("Pad", [ctx.value(x), ctx.ints([0, 0, *p, 0, 0, *after])],
                   shape=list(in_shape[:2]) + padded, dtype=dtype)
    mean = ctx.op("AveragePool", [value], {"kernel_shape": k, "strides": s},
                  shape=out_shape, dtype=dtype)
    return ctx.op("Mul", [mean, ctx.const(scale.astype(dtype), f"{node.name}_divisor")],
                  final=True)


def _adaptive(ctx: Context, node: Any, x: Any, op_type: str, reduce: str) -> ir.Value:
    in_shape, out_shape = ctx.shape(x), ctx.shape(node)
    n = _batched(ctx, node, x)
    if all(o == 1 for o in out_shape[2:]):
        axes = list(range(2, 2 + n))
        return ctx.op(reduce, [ctx.value(x), ctx.ints(axes)], {"keepdims": 1}, final=True)
    if any(i % o for i, o in zip(in_shape[2:], out_shape[2:])):
        if op_type != "AveragePool":
            raise NotLowerable("adaptive max pooling with uneven windows")
        return _adaptive_avg_uneven(ctx, node, x)
    k = [i // o for i, o in zip(in_shape[2:], out_shape[2:])]
    return ctx.op(op_type, [ctx.value(x)], {"kernel_shape": k, "strides": k}, final=True)


def _adaptive_avg_uneven(ctx: Context, node: Any, x: Any) -> ir.Value:
    """Adaptive average pooling with windows of different sizes: per spatial axis, a MatMul with
    the averaging matrix (window i spans floor(i*In/Out) .. ceil((i+1)*In/Out)); axes other than
    the last are moved last for it and back."""
    shape, out_shape, dtype = list(ctx.shape(x)), ctx.shape(node), ctx.dtype(x)
    value = ctx.value(x)
    rank = len(shape)
    for axis in range(2, rank):
        size, out = shape[axis], out_shape[axis]
        if size == out:
            continue
        weights = np.zeros((size, out), dtype)
        for i in range(out):
            lo, hi = (i * size) // out, -(-((i + 1) * size) // out)
            weights[lo:hi, i] = 1.0 / (hi - lo)
        perm = list(range(rank))
        perm[axis], perm[-1] = perm[-1], perm[axis]
        if axis != rank - 1:
            value = ctx.op("Transpose", [value], {"perm": perm},
                           shape=[shape[d] for d in perm], dtype=dtype)
        moved = [shape[d] for d in perm]
        moved[-1] = out
        value = ctx.op("MatMul", [value, ctx.const(weights, f"{node.name}_window")],
                       shape=moved, dtype=dtype)
        if axis != rank - 1:
            value = ctx.op("Transpose", [value], {"perm": perm},
                           shape=[moved[d] for d in perm], dtype=dtype)
        shape[axis] = out
    return ctx.op("Identity", [value], final=True)


@lowers(aten.adaptive_avg_pool1d.default, aten.adaptive_avg_pool2d.default,
        aten._adaptive_avg_pool2d.default, aten.adaptive_avg_pool3d.default)
def _adaptive_avg(ctx: Context, node: Any, x: Any, output_size: Any) -> ir.Value:
    return _adaptive(ctx, node, x, "AveragePool", "ReduceMean")


@lowers(aten.adaptive_max_pool2d.default)
def _adaptive_max(ctx: Context, node: Any, x: Any, output_size: Any) -> tuple:
    value = _adaptive(ctx, node, x, "MaxPool", "ReduceMax")
    return (value, None)


@lowers(aten.max_pool2d_with_indices.default, aten.max_pool3d_with_indices.default)
def _max_pool_with_indices(ctx: Context, node: Any, x: Any, kernel_size: Any, stride: Any = (),
                           padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False) -> tuple:
    out_shape = tuple(int(v) for v in node.meta["val"][0].shape)
    values = _max_pool_value(ctx, node, x, kernel_size, stride, padding, dilation, ceil_mode,
                             out_shape)
    return (values, None)  # the indices are for max_unpool/backward: not lowered
