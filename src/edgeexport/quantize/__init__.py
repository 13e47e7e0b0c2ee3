"""Quantization: int8 static post-training (QDQ), fp16 weight storage, dynamic int8 (weights
only), with an accuracy budget that keeps the most sensitive layers float.

`apply(result, scheme, calibration, **opts)` rewrites `result.model` in place and returns the
"quantization" section of report.json.
"""

from __future__ import annotations

import sys
import types
import time
from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport import ir as eir
from edgeexport.errors import UsageError
from edgeexport.progress import Step, no_step
from edgeexport.quantize import budget as budget_mod
from edgeexport.quantize import calibration, embedding, observe, qdq, rewrite, rounding, scaling

SCHEMES = ("int8", "fp16", "dynamic-int8")
DEFAULT_METHOD = "mse"
#: samples the budget and the per-layer SQNR are measured on (the first of the calibration set)
EVAL_SAMPLES = 16
#: weights of rounding noise against clipping error tried by the MSE range search
NOISE_WEIGHTS = (1.0, 4.0, 8.0, 16.0)
#: plain int8 whose outputs are further than this from float (cosine) gets a loud warning
POOR_COSINE = 0.95
#: parts of the graph (consecutive in topological order) whose noise weight is then refined
SEGMENTS = 3


def clone(model: ir.Model) -> ir.Model:
    return ir.serde.deserialize_model(ir.serde.serialize_model(model))


def apply(result: Any, scheme: str, calibration_data: str | None = None, **opts: Any
          ) -> dict[str, Any]:
    """Quantize `result.model` (an ExportResult's IR) in place.

    opts: calibration_method (minmax|percentile|entropy|mse), max_error ('cosine=0.995',
    'top1=1', 'rel=0.02'), preprocess (image folder spec), max_samples, percentile, progress
    (a Step: called with each sub-step's text, e.g. 'calibration sample 3/100'),
    channel_scaling (int8: True, False or the largest factor; see scaling.py), embedding_tables
    (int8 and dynamic-int8: constant lookup tables stored int8, default True; see embedding.py).
    """
    if scheme not in SCHEMES:
        raise UsageError(f"unknown quantization scheme '{scheme}' (one of {', '.join(SCHEMES)})")
    model: ir.Model = result.model
    start = time.perf_counter()
    size_before = len(eir.to_bytes(model))
    info: dict[str, Any] = {"scheme": scheme}
    if scheme == "fp16":
        names = rewrite.weights_fp16(model)
        info.update(storage="fp16 weights + Cast to float32 (compute precision is the target's)",
                    weights_fp16=len(names))
    elif scheme == "dynamic-int8":
        layers = rewrite.weight_only_int8(model)
        info.update(storage="int8 per-channel weights + DequantizeLinear; activations float",
                    layers=[{"node": k, "weight": v["weight"], "axis": v["axis"],
                             "weight_scale": _scale_summary(v["scale"])}
                            for k, v in layers.items()])
        info["embedding_tables"] = _tables(model) if opts.get("embedding_tables", True) else []
    else:
        info.update(_static_int8(result, calibration_data, **opts))
        rewrite.share_scalars(model)
    _strip_debug_metadata(model)
    info["size_bytes"] = {"before": size_before, "after": len(eir.to_bytes(model))}
    info["size_ratio"] = round(info["size_bytes"]["after"] / size_before, 4)
    info["seconds"] = round(time.perf_counter() - start, 3)
    return info


def _static_int8(result: Any, calibration_data: str | None, *,
                 calibration_method: str | None = None, max_error: Any = None,
                 preprocess: str | None = None, max_samples: int | None = 100,
                 percentile: float = 99.999, progress: Step = no_step,
                 channel_scaling: float | bool = True, embedding_tables: bool = True, **_: Any
                 ) -> dict[str, Any]:
    # (warnings go into the returned report's "warnings"; the caller shows them)
    from edgeexport.exporter import integer_input_ranges

    method = calibration_method or DEFAULT_METHOD
    if method not in observe.METHODS:
        raise UsageError(f"unknown calibration method '{method}' "
                         f"(one of {', '.join(observe.METHODS)})")
    budget = budget_mod.parse_budget(max_error)
    model: ir.Model = result.model
    calib = calibration.load(calibration_data, result.inputs, preprocess=preprocess,
                             max_samples=max_samples, int_high=integer_input_ranges(model))
    float_model = clone(model)
    t0 = time.perf_counter()
    _check_feeds(float_model, calib)
    scaled = {"links": 0, "channels_scaled": 0}
    # how much an error in each channel weighs, in the units of the model as given: scaled
    # channels count 1/s^2 (their readers divide by s)
    full_plan = qdq.plan(float_model)
    channel_weights = qdq.consumer_weights(full_plan)
    if channel_scaling:
        progress("channel scaling")
        max_scale = scaling.MAX_SCALE if channel_scaling is True else float(channel_scaling)
        factors: dict[str, np.ndarray] = {}
        scaled = scaling.apply(float_model, calib.samples, max_scale, applied=factors)
        for name, s in factors.items():
            if name in channel_weights and channel_weights[name].shape == s.shape:
                w = channel_weights[name] / (s * s)
                channel_weights[name] = w / w.mean()
        if scaled["links"]:  # new weight initializers where a constant was shared
            full_plan = qdq.plan(float_model)
    means: dict[str, np.ndarray] = {}
    patches = _patch_stats(full_plan)

    seen = 0

    def extra(outs: dict[str, np.ndarray]) -> None:
        nonlocal seen
        seen += 1
        progress(f"calibration sample {seen}/{len(calib.samples)}")
        for name, stats in patches.items():
            if name[1] in outs:
                stats.update(outs[name[1]])

    histograms: dict = {}
    ranges = observe.collect_ranges(float_model, calib.samples, full_plan.observed(), method,
                                    percentile=percentile, channel_means=means, extra=extra,
                                    channel_weights=channel_weights,
                                    histograms=histograms)
    covs = {node: s.covariance() for (node, _), s in patches.items()}
    eval_samples = calib.samples[:EVAL_SAMPLES]
    out_names = [v.name for v in float_model.graph.outputs]
    expected = observe.float_outputs(float_model, eval_samples, out_names)

    weights: dict = {}  # int8 weights, the same in every model built below

    def build(float_nodes: set[str], trial: dict[str, tuple[float, float]] | None = None
              ) -> tuple[ir.Model, qdq.Plan, dict]:
        m = clone(float_model)
        p = qdq.plan(m, float_nodes)
        params = _params(p, ranges if trial is None else trial)
        return m, p, rewrite.insert_qdq(m, p, params, means, covs, weights) | {"params": params}

    noise_weight = None
    if histograms:
        trials = 0

        def error(trial: dict[str, tuple[float, float]]) -> float:
            nonlocal trials
            trials += 1
            progress(f"range search {trials}/{len(NOISE_WEIGHTS) + 2 * SEGMENTS} (at most)")
            got = observe.float_outputs(build(set(), trial)[0], eval_samples, out_names)
            return _relative_error(expected, got)

        ranges, noise_weight = _choose_noise_weight(histograms, list(full_plan.tensors), error)
    calib_seconds = time.perf_counter() - t0

    layers = _layers(full_plan)
    float_nodes: set[str] = set()
    reasons: list[dict] = []
    budget_info = None
    if budget is not None:
        # top-1 agreement barely moves when one layer goes float: rank layers by cosine
        rank_by = budget_mod.Budget("cosine", 0.0) if budget.metric == "top1" else budget

        evaluations = 0

        def evaluate(keep_float: set[str], by: budget_mod.Budget = budget,
                     searching: bool = True) -> float:
            nonlocal evaluations
            evaluations += 1
            if searching:
                progress(f"budget search step {evaluations}: {len(keep_float)} layers float")
            nodes = set().union(*(layers[k] for k in keep_float)) if keep_float else set()
            m, _, _ = build(nodes)
            got = observe.float_outputs(m, eval_samples, out_names)
            return budget_mod.score(by, expected, got)

        chosen, reasons, base, final = budget_mod.search(
            budget, lambda: _rank_layers(rank_by, layers, lambda k: evaluate(k, rank_by, False),
                                         progress),
            evaluate)
        float_nodes = set().union(*(layers[k] for k in chosen)) if chosen else set()
        budget_info = {"budget": budget.describe(), "all_int8": round(base, 6),
                       "final": round(final, 6), "met": budget.holds(final),
                       "evaluated_on": len(eval_samples),
                       "models_evaluated": evaluations}
    progress("building the int8 model")
    qmodel, plan, inserted = build(float_nodes)
    _replace_graph(model, qmodel)
    tables = _tables(model) if embedding_tables else []
    progress("per-layer error vs float")
    per_layer = _per_layer(float_model, model, plan, inserted, eval_samples[:2])
    got = observe.float_outputs(model, eval_samples, out_names)
    overall = {}
    for b in (budget_mod.Budget("cosine", 0), budget_mod.Budget("top1", 0)):
        overall[b.metric] = round(budget_mod.score(b, expected, got), 6)
    warnings = list(calib.warnings)
    if budget is None and overall["cosine"] < POOR_COSINE:
        warnings.append(
            f"int8 everywhere moves the outputs far from float (cosine {overall['cosine']:.3f} "
            f"on {len(eval_samples)} calibration samples): keep the sensitive layers float with "
            "--max-error cosine=0.99, or use dynamic-int8 (transformer encoders, whose outlier "
            "channels per-tensor int8 cannot hold)")
    report: dict[str, Any] = {
        "calibration": {"source": calib.source, "samples": len(calib.samples),
                        "method": method, "seconds": round(calib_seconds, 3),
                        **({"noise_weight": noise_weight} if noise_weight is not None else {})},
        "channel_scaling": scaled,
        "embedding_tables": tables,
        "activations": "int8 asymmetric per-tensor",
        "weights": "int8 symmetric per-channel (output-channel axis); bias-corrected; "
                   f"data-aware rounding for convolutions with <= {rounding.MAX_FAN_IN} weights "
                   "per output",
        "bias": "int32, scale = input scale x weight scale",
        "quantized_nodes": len(plan.nodes),
        "layers_float": [dict(r, op=_op_of(float_model, r["node"])) for r in reasons],
        "vs_float": overall,
        "per_layer": per_layer,
        "warnings": warnings,
    }
    if budget_info is not None:
        report["accuracy_budget"] = budget_info
    return report


def _tables(model: ir.Model) -> list[dict[str, Any]]:
    """Constant lookup tables stored int8 (per-column scales, dequantized after the lookup)."""
    return [{"table": k, **v} for k, v in embedding.int8_tables(model).items()]


def _choose_noise_weight(histograms: dict, order: list[str], error: Any
                         ) -> tuple[dict[str, tuple[float, float]], list[float]]:
    """MSE ranges for each candidate weight of rounding noise against clipping; the one whose
    all-int8 model is closest to the float model on the eval samples wins, then each third of
    the graph (in topological order) tries half and twice that weight. (Squared error of one
    tensor undervalues its rounding noise: it adds up over the layers that follow, while
    clipped tails often land where the next activation saturates anyway.)"""
    def ranges(weights: list[float]) -> dict[str, tuple[float, float]]:
        return {n: observe.mse_range(h, lo, hi, weights[part[n]])
                for n, (h, (lo, hi)) in histograms.items()}

    names = [n for n in order if n in histograms]
    part = {n: min(SEGMENTS - 1, SEGMENTS * i // max(1, len(names))) for i, n in enumerate(names)}
    part.update({n: 0 for n in histograms if n not in part})
    best = None
    for w in NOISE_WEIGHTS:
        err = error(ranges([w] * SEGMENTS))
        if best is None or err < best[0]:
            best = (err, [w] * SEGMENTS)
    for seg in range(SEGMENTS):
        for factor in (2.0, 0.5):
            trial = list(best[1])
            trial[seg] *= factor
            err = error(ranges(trial))
            if err < best[0]:
                best = (err, trial)
                break
    return ranges(best[1]), best[1]


def _relative_error(expected: list[dict[str, np.ndarray]], got: list[dict[str, np.ndarray]]
                    ) -> float:
    """Squared error over squared signal, over every eval sample and output."""
    noise = signal = 0.0
    for e, g in zip(expected, got):
        for name, want in e.items():
            want = want.astype(np.float64)
            noise += float(np.sum(np.square(want - g[name])))
            signal += float(np.sum(np.square(want)))
    return noise / signal if signal > 0 else noise


def _rank_layers(budget: budget_mod.Budget, layers: dict[str, set[str]],
                 evaluate: Any, progress: Step = no_step) -> list[tuple[str, str]]:
    """Layers by measured sensitivity: the model is evaluated with each one alone kept float
    (int8 everywhere else); the layers whose float copy helps most come first."""
    base = evaluate(set())
    scored = []
    for i, layer in enumerate(layers, 1):
        progress(f"sensitivity ranking {i}/{len(layers)}")
        v = evaluate({layer})
        gain = v - base if budget.higher_is_better else base - v
        scored.append((-gain, layer, f"kept float alone it moves {budget.metric} "
                                     f"{base:.5f} -> {v:.5f}"))
    scored.sort()
    return [(layer, why) for _, layer, why in scored]


def _patch_stats(plan: qdq.Plan) -> dict[tuple[str, str], rounding.PatchStats]:
    """(conv node, its input value) -> patch statistics, for data-aware weight rounding."""
    from edgeexport.ir import initializer_array

    out = {}
    for node in plan.nodes:
        if node.op_type != "Conv" or node.inputs[0].name not in plan.tensors:
            continue
        w = initializer_array(node.inputs[1])
        if w is not None and rounding.eligible(node, w):
            out[node.name, node.inputs[0].name] = rounding.PatchStats(node, w.shape)
    return out


def _check_feeds(model: ir.Model, calib: calibration.CalibrationSet) -> None:
    try:
        observe.float_outputs(model, calib.samples[:1], [model.graph.outputs[0].name])
    except Exception as exc:  # onnxruntime names the input and the mismatch
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{calib.source}: calibration data does not fit the model ({msg})") \
            from None


def _params(plan: qdq.Plan, ranges: dict[str, tuple[float, float]]
            ) -> dict[str, tuple[float, int]]:
    merged: dict[str, tuple[float, float]] = {}
    for name, g in plan.group.items():
        if name in ranges:
            lo, hi = ranges[name]
            glo, ghi = merged.get(g, (np.inf, -np.inf))
            merged[g] = (min(glo, lo), max(ghi, hi))
    params = {}
    for name in plan.tensors:
        if name in plan.fixed:
            params[name] = plan.fixed[name]
        else:
            lo, hi = merged.get(plan.group[name], (0.0, 0.0))
            params[name] = qdq.activation_params(lo, hi)
    return params


def _layers(plan: qdq.Plan) -> dict[str, set[str]]:
    """Budget units: a compute node with the activation fused into it."""
    out: dict[str, set[str]] = {}
    for node in plan.nodes:
        if node.op_type in qdq.PASSTHROUGH or node.op_type in qdq.FUSED_ACTIVATIONS:
            continue
        unit = {node.name}
        for v in node.outputs:
            for use in v.uses():
                if use.node.op_type in qdq.FUSED_ACTIVATIONS:
                    unit.add(use.node.name)
        out[node.name] = unit
    return out


#: torch.onnx's per-node debugging metadata; `namespace` (what node_source reads) is kept
_DEBUG_METADATA = ("pkg.torch.onnx.stack_trace", "pkg.torch.onnx.fx_node",
                   "pkg.torch.onnx.class_hierarchy", "pkg.torch.onnx.name_scopes",
                   "pkg.onnxscript.rewriter.rule_name")


def _strip_debug_metadata(model: ir.Model) -> None:
    """A deployment artifact carries where each node came from, not Python stack traces."""
    keep = set(model.graph.inputs) | set(model.graph.outputs)
    for node in model.graph:
        ns = node.metadata_props.get("namespace")
        if ns:
            for key in _DEBUG_METADATA:
                node.metadata_props.pop(key, None)
            node.metadata_props["namespace"] = _short_namespace(ns)
        for v in node.outputs:
            if v not in keep:
                v.metadata_props.pop("pkg.torch.onnx.original_node_name", None)


def _short_namespace(ns: str) -> str:
    """torch's 'scope: module class/.../name: aten op' without the module classes: what
    exporter.node_source reads (scopes and the op) stays, the repeated class paths go."""
    parts = ns.split("/")
    short = [p.split(":")[0] + ":" for p in parts[:-1]] + [parts[-1]]
    return "/".join(short)


def _replace_graph(model: ir.Model, new: ir.Model) -> None:
    """Make `model` (the object the pipeline holds) carry `new`'s graph."""
    model.graph = new.graph
    for k, v in new.opset_imports.items():
        model.opset_imports[k] = v


def _per_layer(float_model: ir.Model, qmodel: ir.Model, plan: qdq.Plan, inserted: dict,
               samples: list[dict[str, np.ndarray]]) -> list[dict[str, Any]]:
    """SQNR of each quantized node's output (float IR vs the dequantized int8 value)."""
    pairs = []
    for node in plan.nodes:
        out = node.outputs[0].name
        if out in inserted["dequantized"]:
            pairs.append((node, out, inserted["dequantized"][out]))
    if not pairs or not samples:
        return []
    ref = observe.float_outputs(float_model, samples, [p[1] for p in pairs])
    got = observe.float_outputs(qmodel, samples, [p[2] for p in pairs])
    rows = []
    for node, fname, qname in pairs:
        signal = sum(float(np.sum(np.square(r[fname], dtype=np.float64))) for r in ref)
        noise = sum(float(np.sum(np.square(r[fname].astype(np.float64) - g[qname])))
                    for r, g in zip(ref, got))
        sqnr = 10 * np.log10(signal / noise) if noise > 0 and signal > 0 else None
        scale, zp = inserted["params"][fname]
        row = {"node": node.name, "op": node.op_type, "output": fname,
               "sqnr_db": None if sqnr is None else round(float(sqnr), 2),
               "scale": scale, "zero_point": zp}
        w = inserted["weights"].get(node.name)
        if w is not None:
            row["weight_scale"] = _scale_summary(w["scale"])
        rows.append(row)
    return rows


def _scale_summary(scale: np.ndarray) -> dict[str, float] | float:
    scale = np.asarray(scale)
    if scale.ndim == 0:
        return float(scale)
    return {"channels": int(scale.size), "min": float(scale.min()), "max": float(scale.max())}


def _op_of(model: ir.Model, name: str) -> str | None:
    for n in model.graph:
        if n.name == name:
            return n.op_type
    return None


__all__ = ["SCHEMES", "apply"]


class _CallableModule(types.ModuleType):
    """`edgeexport.quantize(model, example_inputs, scheme=...)`: the API's quantize()."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from edgeexport.api import quantize as api_quantize

        return api_quantize(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
