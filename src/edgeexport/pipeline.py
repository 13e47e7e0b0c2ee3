"""The whole job of `convert`: export -> passes -> quantize -> emit -> validate -> bundle.

Each stage hands the next the IR (or the artifact); timings are kept per stage for the report.
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import onnx_ir as ir

from edgeexport import delegates, passes
from edgeexport import ir as eir
from edgeexport.delegates.base import Artifact, Coverage
from edgeexport.exporter import ExportResult, InputSpec, export
from edgeexport.validate import TOLERANCES, ParityResult, check_runtime
from edgeexport.validate import bundle as bundle_mod
from edgeexport.validate.report_html import render

#: progress callback: (stage name, detail) -> None
Progress = Callable[[str, str], None]


@dataclass
class ConvertOptions:
    target: str
    input_specs: list[InputSpec] = field(default_factory=list)
    dynamic_batch: bool = False
    trust_pickle: bool = False
    optimize: bool = True
    quantize: str | None = None
    calibration_data: str | None = None
    calibration_method: str | None = None
    #: accuracy budget, e.g. "cosine=0.995": the most sensitive layers stay float until it holds
    max_error: str | None = None
    calibration_preprocess: str | None = None
    output_names: list[str] | None = None
    #: extra inputs to check parity on (e.g. real photos): an .npy/.npz/image folder in the
    #: same forms as calibration data (see quantize.calibration.load)
    samples: str | None = None
    preprocessing: dict[str, Any] | None = None
    target_options: argparse.Namespace | None = None
    timing_runs: int = 3
    #: replace a previous bundle at OUT (never a folder of other files: see bundle.staging)
    force: bool = False


@dataclass
class ConvertOutcome:
    out: Path
    report: dict[str, Any]
    manifest: dict[str, Any]
    passed: bool


class Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - t, 3)


def _noop(stage: str, detail: str) -> None:
    pass


def export_and_optimize(model: str, opts: ConvertOptions, timer: Timer,
                        progress: Progress = _noop) -> tuple[ExportResult, passes.PassReport]:
    progress("export", model)
    with timer.stage("export"):
        result = export(model, input_specs=opts.input_specs, dynamic_batch=opts.dynamic_batch,
                        trust_pickle=opts.trust_pickle, output_names=opts.output_names)
    progress("passes", "optimize")
    with timer.stage("passes"):
        report = passes.optimize(result.model) if opts.optimize else passes.PassReport()
    return result, report


#: how many calibration samples an int8 artifact's parity is checked on
INT8_PARITY_SAMPLES = 4


def parity_sets(result: ExportResult, opts: ConvertOptions, eager_outputs: Callable
                ) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]], str]:
    """Sample inputs, the expected outputs for them, and where the inputs came from.

    The exporter's random sample, plus --samples. An int8 artifact calibrated on real data is
    checked on calibration samples instead of random ones: its ranges were fitted to that data,
    and random-normal inputs outside them measure clipping, not the conversion.
    """
    from edgeexport.quantize import calibration

    in_names = [s.name for s in result.inputs]
    samples = [dict(zip(in_names, result.sample))]
    source = "random normal sample from the input specs"
    if opts.quantize == "int8" and opts.calibration_data:
        samples = calibration.load(opts.calibration_data, result.inputs,
                                   preprocess=opts.calibration_preprocess,
                                   max_samples=INT8_PARITY_SAMPLES).samples
        source = f"first {len(samples)} samples of the calibration data {opts.calibration_data}"
    if opts.samples:
        samples += calibration.load(opts.samples, result.inputs,
                                    preprocess=opts.calibration_preprocess).samples
        source += f", and {opts.samples}"
    out_names = [v.name for v in result.model.graph.outputs]
    expected = [dict(zip(out_names, eager_outputs(s))) for s in samples]
    return samples, expected, source


def convert(model: str, out: Path, opts: ConvertOptions,
            progress: Progress = _noop) -> ConvertOutcome:
    out = Path(out)
    bundle_mod.check_output_dir(out, opts.force)
    target = delegates.load_target(opts.target)
    timer = Timer()
    result, pass_report = export_and_optimize(model, opts, timer, progress)
    source_model = result.source_model
    with timer.stage("quantize"):
        quant_info = _quantize(result, opts)
    coverage = target.coverage(result.model, opts.target_options)
    expected_source = "pytorch"

    source_bytes = eir.to_bytes(source_model) if result.eager is None else b""

    def eager_outputs(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        from edgeexport.exporter.capture import run_eager

        if result.eager is not None:
            return run_eager(result.eager, result.inputs, [feeds[s.name] for s in result.inputs],
                             result.loaded.source)
        # no PyTorch model: onnxruntime on the source file is the independent reference
        import onnxruntime as ort

        sess = ort.InferenceSession(source_bytes, providers=["CPUExecutionProvider"])
        return sess.run([v.name for v in source_model.graph.outputs], feeds)

    if result.eager is None:
        expected_source = "onnxruntime on the source ONNX model, before passes"
    samples, expected, samples_source = parity_sets(result, opts, eager_outputs)
    precision = opts.quantize or target.precision(opts.target_options)
    tolerance = TOLERANCES[precision]
    with bundle_mod.staging(out, opts.force) as stage:
        progress("emit", target.name)
        with timer.stage("emit"):
            artifact = target.emit(result.model, stage, opts.target_options)
            if artifact.format != "onnx":  # the IR beside the artifact: Netron, per-layer parity
                eir.save(result.model, stage / "ir.onnx")
        progress("validate", ", ".join(target.runtimes))
        with timer.stage("validate"):
            parity = [check_runtime(name, artifact.path, samples, expected, tolerance,
                                    timing_runs=opts.timing_runs)
                      for name in target.runtimes]
            parity_entries = bundle_mod.write_parity_tensors(stage / "parity", samples, expected)
        report = build_report(target.name, artifact, coverage, parity, timer, result,
                              pass_report, quant_info, expected_source)
        report["parity_inputs"] = samples_source
        manifest = build_manifest(target.name, artifact, result, opts, tolerance.to_json(),
                                  parity_entries, stage, precision)
        bundle_mod.write_json(stage / "report.json", report)
        (stage / "report.html").write_text(render(report))
        manifest["files"] = bundle_mod.file_hashes(stage)
        bundle_mod.write_json(stage / "manifest.json", manifest)
    return ConvertOutcome(out, report, manifest, report["passed"])


def _quantize(result: ExportResult, opts: ConvertOptions) -> dict[str, Any]:
    if not opts.quantize:
        return {"scheme": None}
    from edgeexport import quantize

    return quantize.apply(result, opts.quantize, opts.calibration_data,
                          calibration_method=opts.calibration_method, max_error=opts.max_error,
                          preprocess=opts.calibration_preprocess)


def build_report(target: str, artifact: Artifact, coverage: Coverage, parity: list[ParityResult],
                 timer: Timer, result: ExportResult, pass_report: passes.PassReport,
                 quant_info: dict[str, Any], expected_source: str) -> dict[str, Any]:
    executed = [p for p in parity if p.executed]
    passed = bool(executed) and all(p.passed for p in executed)
    return {
        "target": target,
        "artifact": artifact.path.name,
        "artifact_bytes": sum(f.stat().st_size for f in _all_files(artifact)),
        "quantization": quant_info,
        "coverage": coverage.to_json(),
        "parity": [p.to_json() for p in parity],
        "passed": passed,
        "expected_from": expected_source,
        # "direct" (edgeexport's own ATen lowering) or "torch.onnx (why)"; absent for ONNX files
        "lowering": result.model.metadata_props.get("edgeexport.lowering"),
        "timings_s": {k: timer.seconds.get(k, 0.0)
                      for k in ("export", "passes", "quantize", "emit", "validate")},
        "passes": {"ran": sorted(set(pass_report.ran)), "modified": pass_report.modified},
        "ops": _op_histogram(result.model),
    }


def _all_files(artifact: Artifact) -> list[Path]:
    files = []
    for f in artifact.files:
        files += [p for p in f.rglob("*") if p.is_file()] if f.is_dir() else [f]
    return files


def _op_histogram(model: ir.Model) -> dict[str, int]:
    hist: dict[str, int] = {}
    for node in model.graph:
        hist[node.op_type] = hist.get(node.op_type, 0) + 1
    return dict(sorted(hist.items()))


def build_manifest(target: str, artifact: Artifact, result: ExportResult, opts: ConvertOptions,
                   tolerance: dict[str, Any], parity_entries: list[dict[str, Any]],
                   stage: Path, precision: str) -> dict[str, Any]:
    graph = result.model.graph

    def describe(v: ir.Value) -> dict[str, Any]:
        dims = [d if isinstance(d, int) else str(d) for d in (v.shape or ())]
        layout = "NCHW" if len(dims) == 4 else None
        dtype = eir.np_dtype(v.dtype).name if v.dtype is not None else None
        return {"name": v.name, "shape": dims, "dtype": dtype,
                "layout": layout, "quantization": None}

    return {
        "format_version": 1,
        "target": target,
        "artifact": artifact.path.relative_to(stage).as_posix(),
        "artifact_format": artifact.format,
        "ir": "ir.onnx" if artifact.format != "onnx" else artifact.path.name,
        "precision": precision,
        "compute_units": artifact.extra.get("compute_units"),  # CoreML: how apps load it
        "inputs": [describe(v) for v in graph.inputs if v.name not in graph.initializers],
        "outputs": [describe(v) for v in graph.outputs],
        "preprocessing": opts.preprocessing,
        "tolerances": tolerance,
        "source": {"model": result.loaded.source, "kind": result.loaded.kind,
                   "sha256": result.loaded.sha256},
        "tool_versions": bundle_mod.tool_versions(),
        "parity": parity_entries,
        "files": {},
    }
