"""Observe activations on calibration data (onnxruntime runs the float IR with the observed
values as extra outputs) and turn what was seen into ranges: minmax, percentile, entropy (KL,
onnxruntime's HistogramCollector) or MSE (ours: onnxruntime has no MSE calibrator).
"""

from __future__ import annotations

import contextlib
import io
from typing import Callable, Iterable

import numpy as np
import onnx_ir as ir

METHODS = ("minmax", "percentile", "entropy", "mse")


def session_with_outputs(model: ir.Model, names: Iterable[str]):
    """An onnxruntime session over a copy of `model` that also returns the named values."""
    import onnxruntime as ort

    copy = ir.serde.deserialize_model(ir.serde.serialize_model(model))
    values = {v.name: v for node in copy.graph for v in node.outputs}
    values.update((v.name, v) for v in copy.graph.inputs)
    have = {v.name for v in copy.graph.outputs}
    for n in names:
        if n not in have:
            copy.graph.outputs.append(values[n])
            have.add(n)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # keep every observed value alive: graph optimizations would fuse some of them away
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return ort.InferenceSession(ir.to_proto(copy).SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def run_observed(model: ir.Model, samples: list[dict[str, np.ndarray]], names: list[str],
                 visit: Callable[[dict[str, np.ndarray]], None]) -> None:
    sess = session_with_outputs(model, names)
    inputs = {i.name for i in sess.get_inputs()}
    for feeds in samples:
        outs = sess.run(names, {k: v for k, v in feeds.items() if k in inputs})
        visit(dict(zip(names, outs)))


def collect_ranges(model: ir.Model, samples: list[dict[str, np.ndarray]], names: list[str],
                   method: str = "minmax", *, percentile: float = 99.999,
                   num_bins: int = 2048, channel_means: dict[str, np.ndarray] | None = None,
                   extra: Callable[[dict[str, np.ndarray]], None] | None = None,
                   channel_weights: dict[str, np.ndarray] | None = None,
                   histograms: dict | None = None) -> dict[str, tuple[float, float]]:
    """(low, high) per value name. `channel_means`, when given, receives the mean over samples
    and positions of each observed value per axis-1 channel (for bias correction); `extra` sees
    every sample's observed values too (weight rounding statistics). `channel_weights` (mse
    only): per axis-1 channel, how much an error there weighs in the consumers' outputs;
    `histograms` (mse only) receives name -> (histogram, observed range) for `mse_range`."""
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r} (one of {', '.join(METHODS)})")
    lo = {n: np.inf for n in names}
    hi = {n: -np.inf for n in names}
    collector = None
    weighted: dict[str, _WeightedHistogram] = {}
    if method == "mse":
        weighted = {n: _WeightedHistogram((channel_weights or {}).get(n)) for n in names}
    elif method != "minmax":
        from onnxruntime.quantization.calibrate import HistogramCollector

        # onnxruntime's KL search is quadratic in Python over the bins: 2048 bins take minutes
        bins = 256 if method == "entropy" else num_bins
        collector = HistogramCollector(method="entropy" if method == "mse" else method,
                                       symmetric=False, num_bins=bins,
                                       num_quantized_bins=128, percentile=percentile,
                                       scenario="same")

    sums: dict[str, np.ndarray] = {}

    def visit(outs: dict[str, np.ndarray]) -> None:
        for n, a in outs.items():
            if a.size:
                lo[n] = min(lo[n], float(a.min()))
                hi[n] = max(hi[n], float(a.max()))
                if channel_means is not None and a.ndim >= 2:
                    m = a.mean(axis=tuple(i for i in range(a.ndim) if i != 1), dtype=np.float64)
                    sums[n] = sums.get(n, 0) + m
        if extra is not None:
            extra(outs)
        for n, h in weighted.items():
            if outs[n].size:
                h.update(outs[n])
        if collector is not None:
            with contextlib.redirect_stdout(io.StringIO()):  # it prints on every call
                collector.collect({n: [a] for n, a in outs.items()})

    run_observed(model, samples, names, visit)
    if channel_means is not None:
        channel_means.update({n: v / len(samples) for n, v in sums.items()})
    ranges = {n: (lo[n], hi[n]) for n in names}
    if method == "mse":
        if histograms is not None:
            histograms.update({n: (weighted[n].histogram(), ranges[n]) for n in names})
        return {n: mse_range(weighted[n].histogram(), *ranges[n]) for n in names}
    if collector is None:
        return ranges
    with contextlib.redirect_stdout(io.StringIO()):
        found = collector.compute_collection_result()
    out = {}
    for n in names:
        t_lo, t_hi = float(found[n][0]), float(found[n][1])
        # entropy is symmetric: never widen past what was observed (a Relu output stays >= 0)
        out[n] = (max(t_lo, ranges[n][0]), min(t_hi, ranges[n][1]))
    return out


class _WeightedHistogram:
    """Histogram over [-R, R] whose counts are weighted per channel; R doubles (merging bin
    pairs, exactly) when a value falls outside. Samples at most MAX_POSITIONS positions of
    each channel per sample: the tails converge over the calibration set."""

    BINS = 4096  # even halves: bin edges stay aligned when R doubles
    MAX_POSITIONS = 2048

    def __init__(self, weights: np.ndarray | None) -> None:
        self.weights = weights
        self.radius = 0.0
        self.counts = np.zeros(self.BINS, np.float64)

    def update(self, a: np.ndarray) -> None:
        if a.ndim >= 2 and self.weights is not None and a.shape[1] == self.weights.size:
            x = np.moveaxis(a, 1, 0).reshape(a.shape[1], -1)
            x = x[:, ::max(1, -(-x.shape[1] // self.MAX_POSITIONS))]
            w = np.broadcast_to(self.weights[:, None], x.shape).ravel()
            x = x.ravel()
        else:
            x = a.ravel()
            x = x[::max(1, -(-x.size // (64 * self.MAX_POSITIONS)))]
            w = None
        amax = float(np.abs(x).max())
        if not amax > 0:
            amax = 1e-6
        if self.radius == 0.0:
            self.radius = 2.0 ** np.ceil(np.log2(amax))
        while amax > self.radius:
            half = self.BINS // 4
            merged = self.counts.reshape(-1, 2).sum(1)
            self.counts = np.concatenate([np.zeros(half), merged, np.zeros(half)])
            self.radius *= 2
        width = 2 * self.radius / self.BINS
        idx = np.clip(((x.astype(np.float64) + self.radius) / width).astype(np.int64), 0,
                      self.BINS - 1)
        self.counts += np.bincount(idx, weights=w, minlength=self.BINS)

    def histogram(self) -> tuple[np.ndarray, np.ndarray]:
        r = self.radius or 1.0
        return self.counts, np.linspace(-r, r, self.BINS + 1)


def mse_range(histogram, lo: float, hi: float, noise_weight: float = 1.0,
              steps: int = 100) -> tuple[float, float]:
    """The clipping range minimizing the expected squared error of int8 asymmetric
    quantization on the histogram: clipping error of the tails + `noise_weight` x the uniform
    rounding noise step^2/12 inside. noise_weight > 1 favours a finer step over the tails."""
    hist, edges = np.asarray(histogram[0], np.float64), np.asarray(histogram[1], np.float64)
    centers = (edges[:-1] + edges[1:]) / 2
    keep = hist > 0
    hist, centers = hist[keep], centers[keep]
    if hist.size == 0 or hi <= lo:
        return lo, hi
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    fracs = np.linspace(0.05, 1.0, steps)
    b = hi * fracs if hi > 0 else np.array([0.0])
    a = lo * fracs if lo < 0 else np.array([0.0])
    # tails are separable: sum over centers beyond t of h (c - t)^2 from suffix sums
    err_hi = _tail_error(hist, centers, b)
    err_lo = _tail_error(hist[::-1], -centers[::-1], -a)
    step = (b[None, :] - a[:, None]) / 255.0
    err = err_lo[:, None] + err_hi[None, :] + noise_weight * hist.sum() * step * step / 12.0
    err[step <= 0] = np.inf
    i, j = np.unravel_index(int(np.argmin(err)), err.shape)
    return float(a[i]), float(b[j])


def _tail_error(hist: np.ndarray, centers: np.ndarray, t: np.ndarray) -> np.ndarray:
    """For each threshold t: sum of hist * (center - t)^2 over centers > t (centers ascending)."""
    s0 = np.concatenate([np.cumsum(hist[::-1])[::-1], [0.0]])
    s1 = np.concatenate([np.cumsum((hist * centers)[::-1])[::-1], [0.0]])
    s2 = np.concatenate([np.cumsum((hist * centers * centers)[::-1])[::-1], [0.0]])
    k = np.searchsorted(centers, t, side="right")
    return np.maximum(s2[k] - 2 * t * s1[k] + t * t * s0[k], 0.0)


def float_outputs(model: ir.Model, samples: list[dict[str, np.ndarray]],
                  names: list[str]) -> list[dict[str, np.ndarray]]:
    """The named values for every sample (for SQNR and the accuracy budget)."""
    got: list[dict[str, np.ndarray]] = []
    run_observed(model, samples, names, lambda outs: got.append(outs))
    return got


__all__ = ["METHODS", "collect_ranges", "float_outputs", "mse_range", "run_observed",
           "session_with_outputs"]
