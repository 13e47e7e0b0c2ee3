"""The Bundle object of the Python API: a bundle folder (artifact, manifest, report, parity
tensors) that can be run, re-validated and benchmarked; the CLI's validate/bench/run use it too.
"""

from __future__ import annotations

import html
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeexport.errors import UsageError


class Bundle:
    """A converted model. `passed`/`verdict`/`report["parity"]` are what convert measured."""

    def __init__(self, path: Path, *, keep: Any = None, report: dict[str, Any] | None = None,
                 manifest: dict[str, Any] | None = None) -> None:
        from edgeexport.validate import bundle as files

        self.path = Path(path)
        self._keep = keep  # the TemporaryDirectory of out=None: removed with the Bundle
        self.manifest = manifest if manifest is not None else files.read_manifest(self.path)
        self.report = report if report is not None else files.read_report(self.path)

    @property
    def artifact(self) -> Path:
        return self.path / self.manifest["artifact"]

    @property
    def target(self) -> str:
        return self.manifest["target"]

    @property
    def verdict(self) -> str:
        return self.report["verdict"]

    @property
    def passed(self) -> bool:
        return bool(self.report["passed"])

    @property
    def parity(self) -> list[dict[str, Any]]:
        return self.report["parity"]

    def __repr__(self) -> str:
        return f"<Bundle {self.target} {self.verdict} at {self.path}>"

    def _repr_html_(self) -> str:
        cols = ("runtime", "device", "executed", "max_abs_err", "max_rel_err", "cosine",
                "top1_agreement", "latency_ms", "passed")
        cell = lambda v: html.escape(f"{v:.3g}" if isinstance(v, float) else str(v))  # noqa: E731
        rows = "".join("<tr>" + "".join(f"<td>{cell(p.get(c, '-'))}</td>" for c in cols)
                       + "</tr>" for p in self.parity)
        return (f"<p><b>{html.escape(self.target)}</b>: {html.escape(self.artifact.name)} "
                f"&mdash; parity <b>{html.escape(self.verdict.upper())}</b></p><table><tr>"
                + "".join(f"<th>{c}</th>" for c in cols) + f"</tr>{rows}</table>")

    def _inputs(self, inputs: Any) -> dict[str, np.ndarray]:
        names = [i["name"] for i in self.manifest["inputs"]]
        if isinstance(inputs, dict):
            items = inputs.items()
        else:
            values = inputs if isinstance(inputs, (list, tuple)) else [inputs]
            if len(values) != len(names):
                raise UsageError(f"the artifact takes {len(names)} input(s) "
                                 f"({', '.join(names)}); {len(values)} given")
            items = zip(names, values)
        return {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
                for k, v in items}

    def run(self, inputs: Any, runtime: str | None = None) -> dict[str, np.ndarray]:
        """The artifact's outputs (by name) on `inputs` (a dict by input name, a tensor/array
        or a tuple in input order) with `runtime` (default: the first available)."""
        return run_artifact(self.artifact, self._inputs(inputs), runtime)[2]

    def validate(self, per_layer: bool = False) -> dict[str, Any]:
        """Parity re-measured on every runtime of the target: {verdict, parity, per_layer}."""
        return validate(self.path, per_layer)

    def bench(self, runs: int = 20) -> list[dict[str, Any]]:
        """Latency of the artifact on every runtime of the target (after 2 warm-up runs)."""
        return bench(self.path, runs)


def run_artifact(path: Path, feeds: dict[str, np.ndarray], runtime: str | None = None
                 ) -> tuple[str, str, dict[str, np.ndarray]]:
    """(runtime name, device, outputs) of an artifact file on the first runtime that runs it."""
    from edgeexport import runtimes

    if not path.exists():
        raise UsageError(f"{path}: no such artifact")
    fmt = runtimes.artifact_format(path)
    names = [runtime] if runtime else runtimes.runtimes_for(fmt)
    chosen = None
    for name in names:
        try:
            candidate = runtimes.get(name)
        except KeyError as exc:
            raise UsageError(str(exc).strip("'\"")) from None
        if fmt not in candidate.formats:
            raise UsageError(f"runtime '{name}' does not execute {fmt} artifacts")
        if candidate.unavailable_reason() is None:
            chosen = candidate
            break
    if chosen is None:
        raise UsageError(f"{path}: no runtime available here for {fmt} artifacts")
    session = chosen.load(path)
    return chosen.name, session.device, session.run(feeds)


def validate(out: Path, per_layer: bool = False) -> dict[str, Any]:
    from edgeexport import delegates
    from edgeexport.validate import Tolerance, check_runtime, decide_verdict
    from edgeexport.validate.bundle import load_parity_tensors, read_manifest, read_report
    from edgeexport.validate.manifest import errors as manifest_errors

    manifest = read_manifest(out)
    problems = manifest_errors(manifest) if "schema_version" in manifest else []
    if problems:  # (bundles from before schema_version are read as they are)
        raise UsageError(f"{out / 'manifest.json'}: does not follow manifest.schema.json "
                         f"({problems[0]}); convert the model again")
    target = delegates.load_target(manifest["target"])
    samples, expected = load_parity_tensors(out, manifest)
    tolerance = Tolerance(**manifest["tolerances"])
    artifact = out / manifest["artifact"]
    parity = [check_runtime(name, artifact, samples, expected, tolerance).to_json()
              for name in target.runtimes]
    # the inputs are the bundle's: what convert said of them holds for this run too
    verdict, reason = decide_verdict(parity, read_report(out).get("parity_inputs_unverified"))
    layers = per_layer_errors(out, manifest, samples[0]) if per_layer else None
    return {"ok": verdict == "passed", "verdict": verdict, "verdict_reason": reason,
            "parity": parity, "per_layer": layers}


def per_layer_errors(out: Path, manifest: dict[str, Any], feeds: dict[str, np.ndarray]) -> dict:
    """Compare every intermediate tensor a runtime exposes with the reference runtime's."""
    from edgeexport import ir as eir
    from edgeexport import runtimes
    from edgeexport.runtimes import reference
    from edgeexport.validate import error_stats
    from edgeexport.validate.manifest import pytorch_inputs

    ir_path = out / manifest.get("ir", manifest["artifact"])
    if runtimes.artifact_format(ir_path) != "onnx":
        raise UsageError(f"{out}: the bundle has no IR model to compare layers with")
    model = eir.load(ir_path)
    # the parity inputs are the artifact's (NHWC, int8 with --io-layout/--int8-io): the IR
    # takes PyTorch's
    ref = reference.run(model, pytorch_inputs(manifest, feeds), keep_all=True)
    results = {}
    for name in runtimes.runtimes_for(runtimes.artifact_format(out / manifest["artifact"])):
        rt = runtimes.get(name)
        if name == "reference" or rt.unavailable_reason():
            continue
        try:
            got = rt.load(out / manifest["artifact"]).run_all(feeds)
        except NotImplementedError:
            continue
        rows, first_bad = [], None
        tol = manifest["tolerances"].get("max_rel_err", 1e-4) or 1e-4
        for node in model.graph:
            for v in node.outputs:
                if v.name in got and v.name in ref:
                    s = error_stats(ref[v.name], got[v.name])
                    rows.append({"node": node.name, "op": node.op_type, "tensor": v.name,
                                 "max_abs_err": s.max_abs_err, "max_rel_err": s.max_rel_err})
                    if first_bad is None and s.max_rel_err > tol:
                        first_bad = rows[-1]
        results[name] = {"layers": rows, "first_over_tolerance": first_bad}
    return results


def bench(out: Path, runs: int = 20) -> list[dict[str, Any]]:
    from edgeexport import delegates, runtimes
    from edgeexport.validate.bundle import load_parity_tensors, read_manifest

    manifest = read_manifest(out)
    if runs < 1:
        raise UsageError("--runs must be at least 1", api="runs must be at least 1")
    feeds = load_parity_tensors(out, manifest)[0][0]
    rows = []
    for name in delegates.load_target(manifest["target"]).runtimes:
        rt = runtimes.get(name)
        reason = rt.unavailable_reason()
        if reason:
            rows.append({"runtime": name, "executed": False, "reason": reason})
            continue
        session = rt.load(out / manifest["artifact"])
        for _ in range(2):
            session.run(feeds)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            session.run(feeds)
            times.append((time.perf_counter() - t) * 1000)
        details = dict(getattr(session, "details", {}))
        rows.append({"runtime": name, "executed": True, "device": session.device,
                     "median_ms": round(statistics.median(times), 3),
                     "p90_ms": round(sorted(times)[int(0.9 * (len(times) - 1))], 3),
                     "min_ms": round(min(times), 3), "runs": runs,
                     "emulated": bool(details.get("emulated", False))})
    return rows
