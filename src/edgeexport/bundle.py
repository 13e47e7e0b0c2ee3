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
        self._loaded = report is None  # read from disk (load_bundle), not just written here
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
        or a tuple in input order) with `runtime` (default: the first available). A bundle
        read from disk runs in a child process first (a corrupt artifact is an error, not a
        crash of this interpreter); one this process just wrote runs here."""
        return run_artifact(self.artifact, self._inputs(inputs), runtime,
                            isolate=self._loaded)[2]

    def validate(self, per_layer: bool = False, *, native: bool = False) -> dict[str, Any]:
        """Parity re-measured on every runtime of the target (and the C++ runner's with
        native=True): {ok, verdict, verdict_reason, parity, per_layer, warnings}."""
        return validate(self.path, per_layer, native=native)

    def bench(self, runs: int = 20, *, native: bool = False) -> list[dict[str, Any]]:
        """Latency of the artifact on every runtime of the target (after 2 warm-up runs)."""
        return bench(self.path, runs, native=native)


def artifact_of(path: Path) -> Path:
    """The artifact to run for PATH: itself, or the one a bundle folder's manifest names (the
    manifest's hashes checked first)."""
    from edgeexport.validate.bundle import read_manifest

    if path.is_dir() and (path / "manifest.json").exists():
        return path / read_manifest(path)["artifact"]
    return path


def run_artifact(path: Path, feeds: dict[str, np.ndarray], runtime: str | None = None, *,
                 files: dict[str, str] | None = None, isolate: bool = True
                 ) -> tuple[str, str, dict[str, np.ndarray]]:
    """(runtime name, device, outputs) of an artifact (or a bundle folder's) on `runtime` or
    the first runtime here that runs its format. The feeds are checked against the inputs the
    artifact declares (`files`: where each came from, for the message); `isolate`: loaded and
    run in a child process (a crash or hang is an error naming the file)."""
    from edgeexport import runtimes
    from edgeexport.runtimes.isolate import check_feeds, declared_inputs, run_isolated

    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such artifact")
    path = artifact_of(path)
    try:
        fmt = runtimes.artifact_format(path)
    except ValueError as exc:
        raise UsageError(f"{exc}; pass an .onnx, .tflite, .param, .mlpackage or a bundle "
                         "folder") from None
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
    check_feeds(feeds, files or {k: k for k in feeds}, declared_inputs(path, fmt), path)
    if isolate:
        outputs, facts = run_isolated(chosen.name, path, feeds)
        return chosen.name, facts["device"], outputs
    session = chosen.load(path)
    return chosen.name, session.device, session.run(feeds)


#: runtimes that already run out of process or in pure Python: a crash cannot take us down
_SAFE_RUNTIMES = ("reference", "litert-aarch64-qemu", "mil-interpreter")


def probe(artifact: Path, names: Any, samples: list[dict[str, np.ndarray]]) -> None:
    """A bundle's artifact is checked structurally, then loaded and run on the first sample in
    a child process by each native runtime here, before this process loads it (exit 2 when the
    file is corrupt, instead of a crash)."""
    from edgeexport import runtimes
    from edgeexport.runtimes.isolate import declared_inputs, run_isolated

    try:
        fmt = runtimes.artifact_format(artifact)
    except ValueError as exc:
        raise UsageError(f"{exc}; convert the model again to rewrite the bundle") from None
    declared_inputs(artifact, fmt)
    for name in names:
        if name in _SAFE_RUNTIMES or runtimes.get(name).unavailable_reason():
            continue
        run_isolated(name, artifact, samples[0] if samples else {})


def validate(out: Path, per_layer: bool = False, *, native: bool = False, emulation: Any = None,
             progress: Any = None) -> dict[str, Any]:
    """Parity of a bundle re-measured on every runtime of its target here (and the C++
    runner's with `native`), against the bundle's own tolerance and parity tensors:
    {ok, verdict, verdict_reason, parity, per_layer, warnings}."""
    from edgeexport import delegates
    from edgeexport.progress import runtime_step
    from edgeexport.validate import Tolerance, check_runtime, decide_verdict
    from edgeexport.validate.bundle import load_parity_tensors, read_manifest, read_report
    from edgeexport.validate.manifest import errors as manifest_errors

    out = Path(out)
    manifest = read_manifest(out)
    problems = manifest_errors(manifest) if "schema_version" in manifest else []
    if problems:  # (bundles from before schema_version are read as they are)
        raise UsageError(f"{out / 'manifest.json'}: does not follow manifest.schema.json "
                         f"({problems[0]}); convert the model again")
    target = delegates.load_target(manifest["target"])
    samples, expected = load_parity_tensors(out, manifest)
    tolerance = Tolerance(**manifest["tolerances"])
    artifact = out / manifest["artifact"]
    probe(artifact, target.runtimes, samples)
    step = progress or (lambda stage, detail: None)
    parity = [check_runtime(name, artifact, samples, expected, tolerance, emulation=emulation,
                            progress=runtime_step(step, name)).to_json()
              for name in target.runtimes]
    if native:
        from edgeexport.runtimes import native as native_mod

        parity += native_mod.parity_rows(out, manifest)
    warnings = [w for p in parity for w in (p.get("details") or {}).get("warnings", [])]
    # the inputs are the bundle's: what convert said of them holds for this run too
    verdict, reason = decide_verdict(parity, read_report(out).get("parity_inputs_unverified"))
    layers = per_layer_errors(out, manifest, samples[0]) if per_layer else None
    return {"ok": verdict == "passed", "verdict": verdict, "verdict_reason": reason,
            "parity": parity, "per_layer": layers, "warnings": warnings}


def per_layer_errors(out: Path, manifest: dict[str, Any], feeds: dict[str, np.ndarray]) -> dict:
    """Compare every intermediate tensor a runtime exposes with the reference runtime's."""
    from edgeexport import ir as eir
    from edgeexport import runtimes
    from edgeexport.validate import layers
    from edgeexport.validate.manifest import pytorch_inputs

    ir_path = out / manifest.get("ir", manifest["artifact"])
    if runtimes.artifact_format(ir_path) != "onnx":
        raise UsageError(f"{out}: the bundle has no IR model to compare layers with")
    artifact = out / manifest["artifact"]
    # the parity inputs are the artifact's (NHWC, int8 with --io-layout/--int8-io): the IR
    # takes PyTorch's
    results, _ = layers.compare(eir.load(ir_path), artifact,
                                runtimes.runtimes_for(runtimes.artifact_format(artifact)),
                                pytorch_inputs(manifest, feeds), feeds, manifest["tolerances"])
    return results


def bench(out: Path, runs: int = 20, *, native: bool = False) -> list[dict[str, Any]]:
    """Latency rows of a bundle's artifact on every runtime of its target (2 warm-up runs,
    then `runs` timed), and the C++ runner's with `native`."""
    from edgeexport import delegates, runtimes
    from edgeexport.validate.bundle import load_parity_tensors, read_manifest

    out = Path(out)
    manifest = read_manifest(out)
    if runs < 1:
        raise UsageError("--runs must be at least 1", api="runs must be at least 1")
    feeds = load_parity_tensors(out, manifest)[0][0]
    names = delegates.load_target(manifest["target"]).runtimes
    probe(out / manifest["artifact"], names, [feeds])
    rows = []
    for name in names:
        rt = runtimes.get(name)
        reason = rt.unavailable_reason()
        if reason:
            rows.append({"runtime": name, "executed": False, "reason": reason})
            continue
        session = rt.load(out / manifest["artifact"])
        times = time_runs(session, feeds, runs)
        details = dict(getattr(session, "details", {}))
        rows.append({"runtime": name, "executed": True, "device": session.device,
                     "median_ms": round(statistics.median(times), 3),
                     "p90_ms": round(sorted(times)[int(0.9 * (len(times) - 1))], 3),
                     "min_ms": round(min(times), 3), "runs": runs,
                     "emulated": bool(details.get("emulated", False))})
    if native:
        rows += native_bench_rows(out, manifest, runs)
    return rows


def time_runs(session: Any, feeds: dict[str, np.ndarray], runs: int, warmup: int = 2
              ) -> list[float]:
    """Milliseconds of each of `runs` timed runs of a loaded session, after `warmup` runs."""
    for _ in range(warmup):
        session.run(feeds)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        session.run(feeds)
        times.append((time.perf_counter() - t) * 1000)
    return times


def native_bench_rows(out: Path, manifest: dict[str, Any], runs: int) -> list[dict[str, Any]]:
    """Latency rows of the C++ runner (`--bench`: first run timed apart, then `runs` runs)."""
    from edgeexport.runtimes import native

    rows = []
    for rt in native.NATIVE_RUNTIMES.get(manifest.get("artifact_format", ""), ()):
        reason = native.unavailable_reason(rt.arch)
        doc = None if reason else native.run(out, rt, manifest, bench=runs)
        row = doc["parity"][0] if doc else None
        if doc is None or "bench" not in doc:
            rows.append({"runtime": rt.name, "executed": False,
                         "reason": reason or (row or {}).get("reason") or "no latency"})
            continue
        b = doc["bench"]
        rows.append({"runtime": rt.name, "executed": True, "device": row["device"],
                     "median_ms": round(b["median_ms"], 3), "p90_ms": round(b["p90_ms"], 3),
                     "min_ms": round(b["min_ms"], 3), "p10_ms": round(b["p10_ms"], 3),
                     "first_ms": round(b["first_ms"], 3), "runs": b["runs"],
                     "emulated": rt.arch == "aarch64"})
    return rows
