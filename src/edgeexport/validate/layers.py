"""Per-layer parity (every intermediate tensor a runtime exposes against the reference runtime's,
named by the PyTorch module that made it) and the per-node picture of a target's partition.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport.metrics import Tolerance, error_stats

#: convert compares layers only up to this many IR nodes: the reference runtime then keeps every
#: tensor of the first sample in memory, and a runtime re-runs with all tensors exposed
MAX_NODES = 3000
#: ... and up to this many elements in all intermediate tensors together (the reference keeps
#: them all in memory, float32, and each runtime hands back as many)
MAX_ELEMENTS = 64_000_000
#: runtimes whose run with every tensor exposed is too slow to do during convert
SLOW_RUNTIMES = ("litert-aarch64-qemu",)


def module_path(node: ir.Node) -> str | None:
    """The PyTorch module that made `node` (e.g. `features.0.2`), from the `namespace` both
    lowerings record (`path: Class/.../fx_name: aten.op`); None for the root module or unknown."""
    ns = node.metadata_props.get("namespace")
    if not ns:
        return None
    scopes = ns.split("/")[:-1]  # the last part is the FX node itself
    for scope in reversed(scopes):
        path = scope.split(":")[0].strip()
        if path:
            return path
    return None


def modules(model: ir.Model) -> dict[str, str | None]:
    """Module path per node name; a node the lowering did not scope (the quantizer's
    Quantize/DequantizeLinear) takes the module of the node whose output it reads."""
    found: dict[str, str | None] = {}
    for node in model.graph:
        path = module_path(node)
        if path is None and node.inputs and node.inputs[0] is not None:
            producer = node.inputs[0].producer()
            path = found.get(producer.name) if producer is not None else None
        found[node.name] = path
    return found


def layer_tolerance(tolerance: dict[str, Any]) -> Tolerance:
    """The artifact's tolerance applied to one tensor: relative error and cosine; top-1 agreement
    of an intermediate tensor's last axis means nothing."""
    return Tolerance(tolerance.get("name", "layer"), tolerance.get("max_rel_err"),
                     tolerance.get("min_cosine"))


def compare(model: ir.Model, artifact: Path, runtime_names: list[str],
            ir_feeds: dict[str, np.ndarray], artifact_feeds: dict[str, np.ndarray],
            tolerance: dict[str, Any], skip: tuple[str, ...] = ()
            ) -> tuple[dict[str, Any], dict[str, str]]:
    """Per runtime {layers, first_over_tolerance}, and the runtimes not compared with why.

    The reference runtime runs the IR on PyTorch's inputs; the runtimes run the artifact on its
    own (NHWC, int8 with --io-layout/--int8-io): both sides are read back in the IR's layout.
    """
    from edgeexport import runtimes
    from edgeexport.runtimes import reference

    ref = reference.run(model, ir_feeds, keep_all=True)
    tol = layer_tolerance(tolerance)
    paths = modules(model)
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name in runtime_names:
        rt = runtimes.get(name)
        reason = "the reference itself" if name == "reference" else (
            "too slow to expose every tensor during convert" if name in skip
            else rt.unavailable_reason())
        if reason:
            skipped[name] = reason
            continue
        try:
            with warnings.catch_warnings():  # LiteRT's "for debugging only": this is debugging
                warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
                got = rt.load(artifact).run_all(artifact_feeds)
        except NotImplementedError as exc:
            skipped[name] = str(exc)
            continue
        rows, first_bad = [], None
        for node in model.graph:
            for v in node.outputs:
                if v.name not in got or v.name not in ref:
                    continue
                if ref[v.name].dtype.kind in "iu" and got[v.name].dtype.kind == "f":
                    continue  # QuantizeLinear's int8: the runtime hands it back dequantized
                stats = error_stats(ref[v.name], got[v.name])
                s, over = stats.to_json(), tol.violations(stats)
                rows.append({"node": node.name, "module": paths[node.name], "op": node.op_type,
                             "tensor": v.name, "max_abs_err": s["max_abs_err"],
                             "max_rel_err": s["max_rel_err"], "sqnr_db": s["sqnr_db"],
                             "cosine": s["cosine"], "over_tolerance": bool(over)})
                if first_bad is None and over:
                    first_bad = rows[-1]
        results[name] = {"layers": rows, "first_over_tolerance": first_bad}
    return results, skipped


def for_report(model: ir.Model, artifact: Path, runtime_names: list[str],
               ir_feeds: dict[str, np.ndarray], artifact_feeds: dict[str, np.ndarray],
               tolerance: Tolerance) -> dict[str, Any]:
    """report.json `per_layer`: the comparison on the first parity sample, or why it was skipped."""
    n = len(model.graph)
    info: dict[str, Any] = {"sample": 0, "reference": "reference", "nodes": n,
                            "tolerance": tolerance.to_json()}
    size = _elements(model)
    if n > MAX_NODES or size > MAX_ELEMENTS:
        return {**info, "computed": False,
                "reason": f"{n} nodes, {size:,} elements in intermediate tensors (limits "
                          f"{MAX_NODES}, {MAX_ELEMENTS:,}): run `edgeexport validate --per-layer`"}
    t = time.perf_counter()
    try:
        runs, skipped = compare(model, artifact, runtime_names, ir_feeds, artifact_feeds,
                                tolerance.to_json(), skip=SLOW_RUNTIMES)
    except Exception as exc:  # a diagnostic; the parity verdict above does not depend on it
        return {**info, "computed": False, "reason": f"{type(exc).__name__}: {exc}"}
    return {**info, "computed": True, "seconds": round(time.perf_counter() - t, 3),
            "runtimes": runs, "not_compared": skipped}


def _elements(model: ir.Model) -> int:
    """Elements of every node output whose shape is known (a dynamic dim counts as 1)."""
    total = 0
    for node in model.graph:
        for v in node.outputs:
            if v.shape is not None:
                total += int(np.prod([d if isinstance(d, int) else 1 for d in v.shape]))
    return total


def node_strip(model: ir.Model, coverage: dict[str, Any]) -> list[dict[str, Any]]:
    """report.json `nodes`: each IR node in order, whether the target takes it, and if not why.

    A target names its fallbacks by IR node (several of its ops may come from one node); a
    fallback named after a graph input (a layout transpose of it) gets a cell of its own.
    """
    reasons: dict[str, list[str]] = {}
    for fb in coverage.get("fallback", []):
        reasons.setdefault(fb["node"], []).append(f"{fb['op']}: {fb['reason']}")
    paths = modules(model)
    cells = [{"node": k, "module": None, "op": "(graph boundary)", "delegated": False,
              "reason": "; ".join(v)} for k, v in reasons.items() if k not in paths]
    for node in model.graph:
        why = reasons.get(node.name)
        cells.append({"node": node.name, "module": paths[node.name], "op": node.op_type,
                      "delegated": why is None, "reason": "; ".join(why) if why else None})
    return cells


def worst(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The n layers furthest from the reference: lowest SQNR first, then largest relative error."""
    def key(r: dict[str, Any]) -> tuple[float, float]:
        s = r.get("sqnr_db")
        sqnr = float(s) if isinstance(s, (int, float, str)) else float("inf")
        return (-math.inf if math.isnan(sqnr) else sqnr, -float(r.get("max_rel_err") or 0.0))
    return sorted(rows, key=key)[:n]
