"""Integer-exact execution of QDQ graphs as TFLite's int8 kernels compute them (int32 sums,
fixed-point multiplier + shift, TFLite rounding): on the laptop it predicts the device's output.
"""

# DQ -> Conv/Gemm/MatMul/Add [-> Relu/Clip] -> Q runs in integers and QuantizeLinear rounds like
# TFLite's QUANTIZE; every other node runs the float reference kernel on dequantized values
# (MaxPool, Reshape and friends give the same integers that way).

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport.ir import initializer_array
from edgeexport.runtimes.reference import node_attributes
from edgeexport.runtimes.reference.kernels import KERNELS

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
#: "tflite": the reference kernels' fixed-point multiplier and shift (gemmlowp rounding);
#: "xnnpack": the float32 requantization LiteRT's default XNNPACK delegate uses for Conv/FC
ROUNDINGS = ("tflite", "xnnpack")


def quantize_multiplier(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's QuantizeMultiplier: m = q * 2^(shift - 31), q a Q31 int32 in [2^30, 2^31)."""
    m = np.asarray(m, np.float64)
    frac, shift = np.frexp(m)
    q = np.round(frac * (1 << 31)).astype(np.int64)
    over = q == (1 << 31)
    q = np.where(over, q // 2, q)
    shift = np.where(over, shift + 1, shift).astype(np.int64)
    tiny = shift < -31
    return np.where(tiny | (m == 0), 0, q), np.where(tiny | (m == 0), 0, shift)


def _srdhm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul (gemmlowp): (a * b * 2 + 2^31) >> 32, toward zero."""
    ab = a.astype(np.int64) * b.astype(np.int64)
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    res = np.sign(s) * (np.abs(s) >> 31)  # C++ division truncates toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, res)


def _rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    exponent = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, q: np.ndarray, shift: np.ndarray,
                                     single_rounding: bool = False) -> np.ndarray:
    if single_rounding:  # TFLITE_SINGLE_ROUNDING: one rounding shift of the 64-bit product
        total = 31 - np.asarray(shift, np.int64)
        return (x.astype(np.int64) * q + (np.int64(1) << (total - 1))) >> total
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return _rounding_divide_by_pot(_srdhm(x * (np.int64(1) << left), q), right)


@dataclass
class _Pattern:
    q: ir.Node
    op: ir.Node
    act: ir.Node | None


def _dq_source(v: ir.Value | None) -> ir.Node | None:
    p = v.producer() if v is not None else None
    return p if p is not None and p.op_type == "DequantizeLinear" else None


def find_patterns(graph: ir.Graph) -> dict[int, _Pattern]:
    """Q nodes that close an integer kernel: id(Q) -> the pattern."""
    found = {}
    for q in graph:
        if q.op_type != "QuantizeLinear":
            continue
        v = q.inputs[0]
        p = v.producer()
        act = None
        if p is not None and p.op_type in ("Relu", "Clip") and len(v.uses()) == 1:
            act, v = p, p.inputs[0]
            p = v.producer()
            if len(v.uses()) != 1:
                continue
        if p is None or p.op_type not in ("Conv", "Gemm", "MatMul", "Add"):
            continue
        data = [p.inputs[0], p.inputs[1]]
        if not all(_dq_source(x) is not None for x in data):
            continue
        if p.op_type == "Gemm":
            a = p.attributes
            if a.get_int("transA", 0) or a.get_float("alpha", 1.0) != 1.0 \
                    or a.get_float("beta", 1.0) != 1.0:
                continue
        if len(p.inputs) > 2 and p.inputs[2] is not None and _dq_source(p.inputs[2]) is None:
            continue
        found[id(q)] = _Pattern(q, p, act)
    return found


class IntegerInterpreter:
    """A QDQ model prepared for integer-exact runs."""

    def __init__(self, model: ir.Model, rounding: str = "tflite") -> None:
        if rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}")
        self.model = model
        self.rounding = rounding
        self.patterns = find_patterns(model.graph)
        self.consts = {n: v.const_value.numpy() for n, v in model.graph.initializers.items()
                       if v.const_value is not None}
        self._fns: dict[int, Any] = {}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        env: dict[str, np.ndarray] = dict(self.consts)
        env.update(feeds)
        for node in self.model.graph:
            if id(node) in self.patterns:
                outs = [self._integer(self.patterns[id(node)], env)]
            elif node.op_type == "QuantizeLinear" and _per_tensor_int8(node, env):
                outs = [self._quantize(node, env)]
            else:
                outs = self._float(node, env)
            for v, a in zip(node.outputs, outs):
                env[v.name] = np.asarray(a)
        return {v.name: env[v.name] for v in self.model.graph.outputs}

    def _quantize(self, node: ir.Node, env: dict[str, np.ndarray]) -> np.ndarray:
        """TFLite's QUANTIZE rounds half away from zero (std::round of x / scale); XNNPACK
        multiplies by the float32 reciprocal and rounds half to even."""
        x = env[node.inputs[0].name].astype(np.float32)
        scale = np.float32(env[node.inputs[1].name])
        zp = int(env[node.inputs[2].name])
        if self.rounding == "xnnpack":
            v = np.rint(x * (np.float32(1) / scale))
        else:
            y = x / scale
            v = np.sign(y) * np.floor(np.abs(y) + np.float32(0.5))
        return np.clip(v + zp, -128, 127).astype(np.int8)

    def _float(self, node: ir.Node, env: dict[str, np.ndarray]) -> list[np.ndarray]:
        fn = self._fns.get(id(node))
        if fn is None:
            consts = [None if v is None else initializer_array(v) for v in node.inputs]
            fn = KERNELS[node.op_type].bind(node_attributes(node), consts, len(node.outputs))
            self._fns[id(node)] = fn
        args = [None if v is None else env[v.name] for v in node.inputs]
        while args and args[-1] is None:
            args.pop()
        res = fn(*args)
        return list(res) if isinstance(res, tuple) else [res]

    def _integer(self, pat: _Pattern, env: dict[str, np.ndarray]) -> np.ndarray:
        def qparams(dq: ir.Node) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            x = env[dq.inputs[0].name]
            s = np.asarray(env[dq.inputs[1].name], np.float64)
            z = (np.asarray(env[dq.inputs[2].name], np.int64) if len(dq.inputs) > 2
                 and dq.inputs[2] is not None else np.zeros(s.shape, np.int64))
            return x.astype(np.int64), s, z

        q = pat.q
        so = float(env[q.inputs[1].name])
        zo = int(env[q.inputs[2].name])
        op = pat.op
        xa, sa, za = qparams(_dq_source(op.inputs[0]))
        xb, sb, zb = qparams(_dq_source(op.inputs[1]))
        if op.op_type == "Add":
            out = _add(xa - za, float(sa), xb - zb, float(sb), so)
        else:
            if np.any(zb != 0) and op.op_type != "MatMul":
                raise ValueError(f"{op.name}: weights must be symmetric (zero point 0)")
            acc, ch_axis = _accumulate(op, xa - za, xb - zb.reshape(_axis_shape(op, zb, xb)))
            if len(op.inputs) > 2 and op.inputs[2] is not None:
                bq, _, _ = qparams(_dq_source(op.inputs[2]))
                acc = acc + _along(bq, acc, ch_axis)
            m = float(sa) * sb / so
            if self.rounding == "xnnpack":
                # XNNPACK's "fp32" requantization: float32 scale, round half to even
                scale = _along(np.asarray(m, np.float32), acc, ch_axis)
                out = np.rint(acc.astype(np.float32) * scale).astype(np.int64)
            else:
                qm, sh = quantize_multiplier(m)
                out = multiply_by_quantized_multiplier(acc, _along(qm, acc, ch_axis),
                                                       _along(sh, acc, ch_axis))
        out = out + zo
        lo, hi = -128, 127
        if pat.act is not None:  # the fused activation is a clamp in the integer domain
            lo = max(lo, zo)
            if pat.act.op_type == "Clip":
                cmin = env[pat.act.inputs[1].name] if len(pat.act.inputs) > 1 and \
                    pat.act.inputs[1] is not None else None
                cmax = env[pat.act.inputs[2].name] if len(pat.act.inputs) > 2 and \
                    pat.act.inputs[2] is not None else None
                lo = -128 if cmin is None else max(-128, zo + int(np.round(float(cmin) / so)))
                if cmax is not None:
                    hi = min(127, zo + int(np.round(float(cmax) / so)))
        return np.clip(out, lo, hi).astype(np.int8)


def _per_tensor_int8(node: ir.Node, env: dict[str, np.ndarray]) -> bool:
    if len(node.inputs) < 3 or node.inputs[2] is None:
        return False
    zp = env[node.inputs[2].name]
    return zp.dtype == np.int8 and zp.size == 1 and np.asarray(env[node.inputs[1].name]).size == 1


def _axis_shape(op: ir.Node, z: np.ndarray, w: np.ndarray) -> tuple[int, ...]:
    return () if z.ndim == 0 or z.size == 1 else tuple(-1 if i == 0 else 1 for i in range(w.ndim))


def _along(param: np.ndarray, acc: np.ndarray, axis: int) -> np.ndarray:
    param = np.asarray(param)
    if param.ndim == 0 or param.size == 1:
        return param.reshape(())
    shape = [1] * acc.ndim
    shape[axis] = param.size
    return param.reshape(shape)


def _accumulate(op: ir.Node, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, int]:
    """Exact integer sums of products (float64 holds them exactly: |acc| << 2^53)."""
    xf, wf = x.astype(np.float64), w.astype(np.float64)
    if op.op_type == "Gemm":
        wf = wf.T if op.attributes.get_int("transB", 0) else wf
        return np.rint(xf @ wf).astype(np.int64), 1
    if op.op_type == "MatMul":
        return np.rint(np.matmul(xf, wf)).astype(np.int64), -1 % np.matmul(xf, wf).ndim
    return np.rint(_conv(xf, wf, node_attributes(op))).astype(np.int64), 1


def _conv(x: np.ndarray, w: np.ndarray, a: dict[str, Any]) -> np.ndarray:
    n, c, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    group = a.get("group", 1)
    sh, sw = a.get("strides", [1, 1])
    dh, dw = a.get("dilations", [1, 1])
    t, l_, b, r = a.get("pads", [0, 0, 0, 0])
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise ValueError("integer Conv: auto_pad SAME_* is not supported; pads are explicit")
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (l_, r)))  # zero padding = the zero point
    win = np.lib.stride_tricks.sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1),
                                                   axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    oh, ow = win.shape[2], win.shape[3]
    outs = []
    for g in range(group):
        patches = win[:, g * cin_g:(g + 1) * cin_g].transpose(0, 2, 3, 1, 4, 5)
        patches = patches.reshape(n * oh * ow, cin_g * kh * kw)
        wg = w[g * (cout // group):(g + 1) * (cout // group)].reshape(cout // group, -1)
        outs.append((patches @ wg.T).reshape(n, oh, ow, -1))
    return np.concatenate(outs, axis=3).transpose(0, 3, 1, 2)


def _add(a: np.ndarray, sa: float, b: np.ndarray, sb: float, so: float) -> np.ndarray:
    """TFLite's int8 ADD: both inputs to a common scale with 20 bits of headroom, then out."""
    left_shift = 20
    twice_max = 2 * max(sa, sb)
    qa, sha = quantize_multiplier(sa / twice_max)
    qb, shb = quantize_multiplier(sb / twice_max)
    qo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * so))
    sa_ = multiply_by_quantized_multiplier(a * (1 << left_shift), qa, sha)
    sb_ = multiply_by_quantized_multiplier(b * (1 << left_shift), qb, shb)
    return multiply_by_quantized_multiplier(sa_ + sb_, qo, sho)


def run(model: ir.Model, feeds: dict[str, np.ndarray], *, rounding: str = "tflite"
        ) -> dict[str, np.ndarray]:
    """Outputs of a QDQ model computed the way TFLite's int8 kernels compute them."""
    return IntegerInterpreter(model, rounding).run(feeds)


__all__ = ["IntegerInterpreter", "find_patterns", "multiply_by_quantized_multiplier",
           "quantize_multiplier", "ROUNDINGS", "run"]
