"""Data-aware weight rounding for convolutions with few weights per output (depthwise, first
layers): each weight rounds up or down to minimize E[(dW x)^2] = dW^T Cov(x) dW on the input.
"""

# Rounding to nearest minimizes each weight's error alone; with correlated inputs the errors add
# up, and choosing the direction per weight cancels them (the idea of AdaRound, Nagel et al. 2020,
# solved here by coordinate descent on the quadratic instead of a learned relaxation).

from __future__ import annotations

import numpy as np
import onnx_ir as ir

#: layers with at most this many weights per output channel get data-aware rounding
MAX_FAN_IN = 64
#: patch positions per sample that feed the covariance (keeps calibration fast)
MAX_POSITIONS = 256


def eligible(node: ir.Node, w: np.ndarray) -> bool:
    if node.op_type != "Conv" or w.ndim != 4:
        return False
    return int(np.prod(w.shape[1:])) <= MAX_FAN_IN


class PatchStats:
    """Running sums of a Conv's input patches (per group): sum x, sum x x^T, count."""

    def __init__(self, node: ir.Node, w_shape: tuple[int, ...]) -> None:
        a = node.attributes
        self.kernel = tuple(w_shape[2:])
        self.strides = tuple(a.get_ints("strides", [1, 1]))
        self.dilations = tuple(a.get_ints("dilations", [1, 1]))
        self.pads = tuple(a.get_ints("pads", [0, 0, 0, 0]))
        self.group = a.get_int("group", 1)
        self.auto_pad = a.get_string("auto_pad", "NOTSET")
        self.sum = None
        self.sum_sq = None
        self.count = 0

    def update(self, x: np.ndarray) -> None:
        if self.auto_pad not in ("NOTSET", "VALID"):
            return  # SAME padding: leave those layers to rounding to nearest
        n, c, h, w = x.shape
        t, l_, b, r = self.pads[0], self.pads[1], self.pads[2], self.pads[3]
        kh, kw = self.kernel
        dh, dw = self.dilations
        oh = (h + t + b - (kh - 1) * dh - 1) // self.strides[0] + 1
        ow = (w + l_ + r - (kw - 1) * dw - 1) // self.strides[1] + 1
        if oh <= 0 or ow <= 0:
            return
        # an evenly spaced subset of output positions: the statistics converge fast; only
        # their windows are gathered (zero padding by masking), never a padded copy of x
        step = max(1, int(np.ceil(np.sqrt(oh * ow / MAX_POSITIONS))))
        iy = (np.arange(0, oh, step) * self.strides[0] - t)[:, None] + np.arange(kh) * dh
        ix = (np.arange(0, ow, step) * self.strides[1] - l_)[:, None] + np.arange(kw) * dw
        my, mx = (iy >= 0) & (iy < h), (ix >= 0) & (ix < w)
        win = x[:, :, np.clip(iy, 0, h - 1)[:, :, None, None],
                np.clip(ix, 0, w - 1)[None, None, :, :]].astype(np.float64)
        win *= (my[:, :, None, None] & mx[None, None, :, :])
        # (n, c, rows, kh, cols, kw) -> (n, c, rows, cols, kh, kw)
        win = win.transpose(0, 1, 2, 4, 3, 5)
        g = self.group
        # (group, positions, fan_in)
        p = win.transpose(1, 0, 2, 3, 4, 5).reshape(g, c // g, -1, kh * kw)
        p = p.transpose(0, 2, 1, 3).reshape(g, -1, (c // g) * kh * kw)
        s = p.sum(1)
        sq = np.matmul(p.transpose(0, 2, 1), p)  # batched BLAS: x^T x per group
        self.sum = s if self.sum is None else self.sum + s
        self.sum_sq = sq if self.sum_sq is None else self.sum_sq + sq
        self.count += p.shape[1]

    def covariance(self) -> np.ndarray | None:
        if not self.count:
            return None
        mean = self.sum / self.count
        return self.sum_sq / self.count - np.einsum("gi,gj->gij", mean, mean)


def adaptive_round(w: np.ndarray, scale: np.ndarray, cov: np.ndarray, group: int,
                   sweeps: int = 4) -> np.ndarray:
    """int8 weights (per output channel `scale`) minimizing dW^T Cov dW per output channel."""
    cout = w.shape[0]
    flat = w.reshape(cout, -1).astype(np.float64)
    s = scale.reshape(cout, 1).astype(np.float64)
    c = cov[np.arange(cout) // (cout // group)]  # (cout, f, f): each output's group covariance
    lo = np.clip(np.floor(flat / s), -127, 127)
    q = np.clip(np.round(flat / s), -127, 127)
    err = q * s - flat  # dW
    ce = np.einsum("oij,oj->oi", c, err)
    for _ in range(sweeps):
        changed = False
        for j in range(flat.shape[1]):
            # the other neighbour of w/s: floor <-> floor + 1
            alt = np.where(q[:, j] == lo[:, j], lo[:, j] + 1, lo[:, j])
            alt = np.clip(alt, -127, 127)
            d = (alt - q[:, j]) * s[:, 0]
            gain = d * d * c[:, j, j] + 2 * d * ce[:, j]
            better = (gain < -1e-12) & (alt != q[:, j])
            if better.any():
                changed = True
                q[better, j] = alt[better]
                ce[better] += c[better, :, j] * d[better, None]
        if not changed:
            break
    return q.reshape(w.shape).astype(np.int8)
