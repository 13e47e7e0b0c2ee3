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
                   extra: Callable[[dict[str, np.ndarray]], None] | None = None
                   ) -> dict[str, tuple[float, float]]:
    """(low, high) per value name. `channel_means`, when given, receives the mean over samples
    and positions of each observed value per axis-1 channel (for bias correction); `extra` sees
    every sample's observed values too (weight rounding statistics)."""
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r} (one of {', '.join(METHODS)})")
    lo = {n: np.inf for n in names}
    hi = {n: -np.inf for n in names}
    collector = None
    if method != "minmax":
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
        if collector is not None:
            with contextlib.redirect_stdout(io.StringIO()):  # it prints on every call
                collector.collect({n: [a] for n, a in outs.items()})

    run_observed(model, samples, names, visit)
    if channel_means is not None:
        channel_means.update({n: v / len(samples) for n, v in sums.items()})
    ranges = {n: (lo[n], hi[n]) for n in names}
    if collector is None:
        return ranges
    if method == "mse":
        return {n: _mse_range(collector.histogram_dict[n], *ranges[n]) for n in names}
    with contextlib.redirect_stdout(io.StringIO()):
        found = collector.compute_collection_result()
    out = {}
    for n in names:
        t_lo, t_hi = float(found[n][0]), float(found[n][1])
        # entropy is symmetric: never widen past what was observed (a Relu output stays >= 0)
        out[n] = (max(t_lo, ranges[n][0]), min(t_hi, ranges[n][1]))
    return out


def _mse_range(histogram, lo: float, hi: float, steps: int = 100) -> tuple[float, float]:
    """The clipping range minimizing expected squared error of int8 asymmetric quantization
    (clipping error of the tails + uniform rounding noise step^2/12 inside) on the histogram."""
    hist, edges = np.asarray(histogram[0], np.float64), np.asarray(histogram[1], np.float64)
    centers = (edges[:-1] + edges[1:]) / 2
    keep = hist > 0
    hist, centers = hist[keep], centers[keep]
    if hist.size == 0 or hi <= lo:
        return lo, hi
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    fracs = np.linspace(0.05, 1.0, steps)
    b = hi * fracs if hi > 0 else np.array([0.0])
    best, best_err = (lo, hi), np.inf
    for a in (lo * fracs if lo < 0 else np.array([0.0])):
        step = (b - a) / 255.0  # one candidate upper bound per row
        clipped = np.clip(centers[None, :], a, b[:, None])
        err = (hist[None, :] * (centers[None, :] - clipped) ** 2).sum(1) \
            + hist.sum() * step * step / 12.0
        err[step <= 0] = np.inf
        i = int(np.argmin(err))
        if err[i] < best_err:
            best, best_err = (float(a), float(b[i])), float(err[i])
    return best


def float_outputs(model: ir.Model, samples: list[dict[str, np.ndarray]],
                  names: list[str]) -> list[dict[str, np.ndarray]]:
    """The named values for every sample (for SQNR and the accuracy budget)."""
    got: list[dict[str, np.ndarray]] = []
    run_observed(model, samples, names, lambda outs: got.append(outs))
    return got


__all__ = ["METHODS", "collect_ranges", "float_outputs", "run_observed", "session_with_outputs"]
