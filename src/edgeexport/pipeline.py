"""The whole job of `convert`: export -> passes -> quantize -> emit -> validate -> bundle.

Each stage hands the next the IR (or the artifact); timings are kept per stage for the report.
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import onnx_ir as ir

from edgeexport import delegates, passes
from edgeexport import ir as eir
from edgeexport.delegates.base import Artifact, Coverage, ImageInput, Target
from edgeexport.errors import ConversionError, EdgeExportError, UsageError
from edgeexport.exporter import ExportResult, InputSpec, export
from edgeexport.progress import runtime_step
from edgeexport.validate import TOLERANCES, ParityResult, Tolerance, check_runtime, decide_verdict
from edgeexport.validate import noise as noise_mod
from edgeexport.validate.parity import EmulationCap
from edgeexport.validate import bundle as bundle_mod
from edgeexport.validate import manifest as manifest_mod
from edgeexport.validate.report_html import render

#: progress callback: (stage name, detail) -> None
Progress = Callable[[str, str], None]


@dataclass
class ConvertOptions:
    target: str
    input_specs: list[InputSpec] = field(default_factory=list)
    dynamic_batch: bool = False
    trust_pickle: bool = False
    allow_cwd_import: bool = False
    optimize: bool = True
    quantize: str | None = None
    calibration_data: str | None = None
    calibration_method: str | None = None
    #: accuracy budget, e.g. "cosine=0.995": the most sensitive layers stay float until it holds
    max_error: str | None = None
    #: --preprocess: how a picture becomes the image input (manifest `preprocessing`, image
    #: folders of calibration data and samples); see quantize.calibration.parse_preprocess
    calibration_preprocess: str | None = None
    output_names: list[str] | None = None
    #: extra inputs to check parity on (e.g. real photos): an .npy/.npz/image folder in the
    #: same forms as calibration data (see quantize.calibration.load)
    samples: str | None = None
    #: class names, one per line: copied into the bundle as labels.txt (manifest `labels`)
    labels: str | None = None
    #: the target's typed options (edgeexport.target_options), a dict of them, or the CLI's
    #: namespace; read once per target by target_options.coerce
    target_options: Any = None
    timing_runs: int = 3
    #: replace a previous bundle at OUT (never a folder of other files: see bundle.staging)
    force: bool = False
    #: caps on parity runs under emulation (qemu): wall seconds, or sample count
    emulation: EmulationCap = field(default_factory=EmulationCap)
    #: tensors/arrays from the Python API: they fix the input shapes and dtypes
    example_inputs: tuple | None = None


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


def export_and_optimize(model: Any, opts: ConvertOptions, timer: Timer,
                        progress: Progress = _noop) -> tuple[ExportResult, passes.PassReport]:
    progress("export", model if isinstance(model, str) else type(model).__name__)
    with timer.stage("export"):
        result = export(model, input_specs=opts.input_specs, example_inputs=opts.example_inputs,
                        dynamic_batch=opts.dynamic_batch,
                        trust_pickle=opts.trust_pickle, output_names=opts.output_names,
                        allow_cwd_import=opts.allow_cwd_import)
    progress("passes", "optimize")
    with timer.stage("passes"):
        report = passes.optimize(result.model) if opts.optimize else passes.PassReport()
    return result, report


#: how many calibration samples an int8 artifact's parity is checked on
INT8_PARITY_SAMPLES = 4
#: why a verdict on random inputs says nothing about an int8 artifact calibrated on random data
RANDOM_INT8 = ("int8 calibrated on random data and checked on a random input only: its ranges "
               "were fitted to such inputs, so agreement there says nothing about real ones; "
               "pass --calibration-data or --samples with real inputs")


@dataclass
class ParitySet:
    """What parity is measured on: the artifact's inputs and PyTorch's outputs for them."""

    samples: list[dict[str, np.ndarray]]
    expected: list[dict[str, np.ndarray]]
    source: str
    #: why a verdict on these inputs cannot be trusted (None when it can)
    unverified: str | None = None
    #: what PyTorch was given for each sample (differs from `samples` for image inputs)
    feeds: list[dict[str, np.ndarray]] = field(default_factory=list)


def parity_sets(result: ExportResult, opts: ConvertOptions, eager_outputs: Callable,
                image_inputs: list[ImageInput] | None = None) -> ParitySet:
    """Sample inputs, the expected outputs for them, and where the inputs came from.

    The exporter's random sample, plus --samples. An int8 artifact is judged on real data only
    (the first calibration samples and --samples): its ranges were fitted to the calibration
    data, and random-normal inputs outside them measure clipping, not the conversion. With
    neither (random calibration, no --samples) the verdict is unverified.
    An image input (CoreML) is fed 8-bit pixels; PyTorch gets the tensor they imply.
    """
    from edgeexport.quantize import calibration

    in_names = [s.name for s in result.inputs]
    random = dict(zip(in_names, result.sample))
    real: list[dict[str, np.ndarray]] = []
    parts = []
    if opts.quantize == "int8" and opts.calibration_data not in (None, "random"):
        real = calibration.load(opts.calibration_data, result.inputs,
                                preprocess=opts.calibration_preprocess,
                                max_samples=INT8_PARITY_SAMPLES).samples
        parts.append(f"first {len(real)} samples of the calibration data "
                     f"{opts.calibration_data}")
    if opts.samples:
        extra = calibration.load(opts.samples, result.inputs,
                                 preprocess=opts.calibration_preprocess).samples
        real += extra
        parts.append(f"{len(extra)} samples of {opts.samples}")
    unverified = None
    if opts.quantize == "int8" and real:
        samples = real
    else:
        samples = [random, *real]
        parts.insert(0, "random normal sample from the input specs")
        unverified = RANDOM_INT8 if opts.quantize == "int8" else None
    fed, model_feeds = _image_feeds(samples, random, image_inputs or [], parts)
    out_names = [v.name for v in result.model.graph.outputs]
    expected = [dict(zip(out_names, eager_outputs(s))) for s in model_feeds]
    return ParitySet(fed, expected, ", and ".join(parts), unverified, model_feeds)


def _image_feeds(samples: list[dict[str, np.ndarray]], random: dict[str, np.ndarray],
                 images: list[ImageInput], parts: list[str]
                 ) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
    """(what the artifact is fed, what PyTorch is fed): the same unless an input is an image,
    which gets 8-bit pixels (uniform random ones for the random sample, else the pixels nearest
    the sample) while PyTorch gets pixels * scale + bias."""
    if not images:
        return samples, samples
    fed, model_feeds = [], []
    for i, s in enumerate(samples):
        pixels = {im.name: (im.random_pixels(s[im.name].shape, seed=i) if s is random
                            else im.pixels_for(s[im.name])) for im in images}
        fed.append({**s, **pixels})
        model_feeds.append({**s, **{im.name: im.preprocess(pixels[im.name]) for im in images}})
    names = ", ".join(im.name for im in images)
    parts.append(f"image input {names} as 8-bit pixels (uniform random ones in place of the "
                 "random normal sample, else the pixels nearest each sample), PyTorch given "
                 "pixels * scale + bias")
    return fed, model_feeds


@dataclass
class Prepared:
    """The IR after export, passes and quantization: shared by every target of one convert."""

    result: ExportResult
    pass_report: passes.PassReport
    quant_info: dict[str, Any]
    timer: Timer
    eager_outputs: Callable[[dict[str, np.ndarray]], list[np.ndarray]]
    expected_source: str
    #: how many times the model was quantized (calibrated, for int8): once per convert
    quantize_runs: int = 0


def prepare(model: Any, opts: ConvertOptions, targets: list[Target],
            progress: Progress = _noop,
            exported: tuple[tuple[ExportResult, passes.PassReport], Timer] | None = None
            ) -> Prepared:
    """Export, optimize and quantize once (the part every target shares); each of `targets`
    has its op check before quantization and calibration (fail fast). `exported`: the export
    and passes already done (export_and_optimize's result, with the timer that measured it)."""
    if exported is None:
        timer = Timer()
        result, pass_report = export_and_optimize(model, opts, timer, progress)
    else:
        (result, pass_report), timer = exported[0], exported[1]
    source_model = result.source_model
    for target in targets:  # fail fast, before quantization and calibration
        target.check_lowerable(result.model)
    if opts.quantize:
        progress("quantize", opts.quantize)
    with timer.stage("quantize"):
        quant_info = _quantize(result, opts, lambda detail: progress("quantize", detail))
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
    return Prepared(result, pass_report, quant_info, timer, eager_outputs, expected_source,
                    quantize_runs=1 if opts.quantize else 0)


def convert(model: Any, out: Path, opts: ConvertOptions,
            progress: Progress = _noop) -> ConvertOutcome:
    out = Path(out)
    bundle_mod.check_output_dir(out, opts.force)
    target = delegates.load_target(opts.target)  # an unknown target: exit 2 before exporting
    return emit_target(prepare(model, opts, [target], progress), out, opts, progress)


@dataclass
class NotConverted:
    """A target of a multi-target convert that no bundle was written for, and why."""

    target: str
    error: EdgeExportError


def convert_all(model: Any, out: Path, targets: list[str], opts: ConvertOptions,
                progress: Progress = _noop
                ) -> tuple[dict[str, ConvertOutcome | NotConverted], dict[str, Any]]:
    """Every target in `targets` from one export/optimize/quantize: OUT/<target>/ bundles and
    OUT/report.json, the combined report (targets x runtimes). A target that cannot take the
    model (an op it has no lowering for, an emitter that refuses it) is reported in the combined
    report and the others are still written; when no target can, its error is raised."""
    out = Path(out)
    check_all_root(out, targets, opts.force)
    loaded = [delegates.load_target(name) for name in targets]
    refused: dict[str, NotConverted] = {}
    timer = Timer()
    exported = export_and_optimize(model, opts, timer, progress)
    result = exported[0]
    for target in loaded:
        try:
            target.check_lowerable(result.model)
        except EdgeExportError as exc:
            refused[target.name] = NotConverted(target.name, exc)
    if len(refused) == len(targets):
        raise refused[targets[0]].error
    # (every target was checked above: one that refuses is reported, not raised)
    prep = prepare(model, opts, [], progress, exported=(exported, timer))
    outcomes: dict[str, ConvertOutcome | NotConverted] = {}
    for name in targets:
        if name in refused:
            outcomes[name] = refused[name]
            continue
        target_opts = opts.target_options
        if isinstance(target_opts, dict) and set(target_opts) <= set(targets):
            target_opts = target_opts.get(name)  # per-target options: {"nnapi": {...}, ...}
        try:
            outcomes[name] = emit_target(prep, out / name, dataclasses.replace(
                opts, target=name, target_options=target_opts), progress)
        except ConversionError as exc:  # this target's emitter refused: the others go on
            outcomes[name] = NotConverted(name, exc)
    if all(isinstance(o, NotConverted) for o in outcomes.values()):
        raise outcomes[targets[0]].error  # type: ignore[union-attr]
    combined = combined_report(prep, outcomes)
    bundle_mod.write_json(out / COMBINED_REPORT, combined)
    return outcomes, combined


#: OUT/report.json of a multi-target convert (beside the OUT/<target>/ bundles)
COMBINED_REPORT = "report.json"


def check_all_root(root: Path, targets: list[str], force: bool) -> None:
    """A multi-target convert writes OUT/<target>/ and OUT/report.json: OUT may hold those (a
    previous multi-target convert, replaced with --force) and nothing else; every target's
    folder is checked before the first conversion starts."""
    root = root.resolve() if root.is_symlink() else root
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: exists and is not a directory; choose another output path")
    if root.is_dir():
        ours = tuple(f".{t}.{kind}-" for t in targets for kind in ("staging", "old"))
        other = sorted(p.name for p in root.iterdir()
                       if p.name not in targets and not p.name.startswith(ours)
                       and not (p.name == COMBINED_REPORT and _is_combined_report(p)))
        if other:
            raise UsageError(f"{root}: a multi-target convert writes one bundle per target in "
                             f"{root}/<target>/, and the folder holds other files ({other[0]}); "
                             "choose a new or empty folder")
        if (root / COMBINED_REPORT).exists() and not force:
            raise UsageError(f"{root}: holds a previous multi-target convert; pass --force to "
                             "replace it, or choose a new folder")
    for target in targets:
        bundle_mod.check_output_dir(root / target, force)


def _is_combined_report(path: Path) -> bool:
    """OUT/report.json is edgeexport's own combined report (so --force may replace it)."""
    import json

    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and {"targets", "shared"} <= set(doc)


def combined_report(prep: Prepared,
                    outcomes: dict[str, ConvertOutcome | NotConverted]) -> dict[str, Any]:
    """OUT/report.json of a multi-target convert: what was shared once, and targets x runtimes
    (a target that could not take the model: verdict "not converted" and its error)."""
    shared = ("export", "passes", "quantize")
    targets: dict[str, Any] = {}
    for name, o in outcomes.items():
        if isinstance(o, NotConverted):
            targets[name] = {"bundle": None, "verdict": "not converted", "passed": False,
                             "error": str(o.error), "parity": []}
            continue
        targets[name] = {
            "bundle": name, "verdict": o.report["verdict"], "passed": o.report["passed"],
            "artifact": o.report["artifact"], "artifact_bytes": o.report["artifact_bytes"],
            "timings_s": {k: o.report["timings_s"][k] for k in ("emit", "validate")},
            "parity": [{k: p.get(k) for k in ("runtime", "executed", "passed", "verdict",
                                              "max_abs_err", "cosine", "top1_agreement",
                                              "latency_ms", "reason")}
                       for p in o.report["parity"]]}
    return {
        "schema_version": 1,
        "targets": targets,
        "passed": all(t["passed"] for t in targets.values()),
        # exported, optimized and quantized (calibrated) once for all targets
        "shared": {"timings_s": {k: prep.timer.seconds.get(k, 0.0) for k in shared},
                   "quantize_runs": prep.quantize_runs,
                   "quantization": {k: v for k, v in prep.quant_info.items()
                                    if isinstance(v, (str, int, float, bool))}},
    }


def emit_target(prep: Prepared, out: Path, opts: ConvertOptions,
                progress: Progress = _noop) -> ConvertOutcome:
    """One target's bundle from the shared IR. The target gets its own copy of the IR (an
    emitter or a layout pass may change the graph it is given) and its own typed options."""
    out = Path(out)  # (checked by convert / convert_all before the export, and by staging)
    target = delegates.load_target(opts.target)
    from edgeexport import target_options

    opts = dataclasses.replace(opts, target_options=target_options.coerce(
        target.name, opts.target_options, quantize=opts.quantize))
    result = dataclasses.replace(prep.result, model=_clone(prep.result.model))
    timer = Timer()
    timer.seconds.update(prep.timer.seconds)
    pass_report, quant_info, expected_source = prep.pass_report, prep.quant_info, \
        prep.expected_source
    eager_outputs = prep.eager_outputs
    coverage = target.coverage(result.model, opts.target_options)
    image_inputs = target.image_inputs(result.model, opts.target_options)
    checked = parity_sets(result, opts, eager_outputs, image_inputs)
    fp16_range = guard_fp16(result, opts, target, checked, progress)
    if fp16_range.get("action") == "fp32":  # the notes say which precision is emitted
        coverage = target.coverage(result.model, opts.target_options)
    samples, expected = checked.samples, checked.expected
    labels = manifest_mod.load_labels(opts.labels, list(result.model.graph.outputs))
    declared = manifest_mod.declared_layout(opts.calibration_preprocess)  # bad text: exit 2 now
    precision = opts.quantize or target.precision(opts.target_options)
    tolerance, noise = judge_by_noise_floor(result, checked, TOLERANCES[precision], progress)
    with bundle_mod.staging(out, opts.force) as stage:
        progress("emit", target.name)
        with timer.stage("emit"):
            artifact = target.emit(result.model, stage, opts.target_options)
            if artifact.format != "onnx":  # the IR beside the artifact: Netron, per-layer parity
                eir.save(result.model, stage / "ir.onnx")
        # parity runs on what the artifact takes (its layout, int8 when its I/O is int8)
        ins, outs = manifest_mod.boundary(result.model, target, artifact, declared)
        ir_feeds = samples[0]  # per-layer: the IR takes PyTorch's inputs
        samples = manifest_mod.artifact_inputs(samples, ins)
        expected = manifest_mod.artifact_outputs(expected, outs)
        progress("validate", ", ".join(target.runtimes))
        with timer.stage("validate"):
            parity = [check_runtime(name, artifact.path, samples, expected, tolerance,
                                    timing_runs=opts.timing_runs, emulation=opts.emulation,
                                    progress=runtime_step(progress, name))
                      for name in target.runtimes]
            parity_entries = bundle_mod.write_parity_tensors(stage / "parity", samples, expected)
        report = build_report(target.name, artifact, coverage, parity, timer, result,
                              pass_report, quant_info, expected_source, checked.unverified)
        report["parity_inputs"] = checked.source
        report["noise_floor"] = {**noise.pop("block"), "warnings": noise["warnings"]}
        report["fp16_range"] = fp16_range  # (its warnings are read by findings.collect)
        add_layer_report(report, result.model, artifact, target, ir_feeds, samples[0], tolerance)
        if labels is not None:
            (stage / manifest_mod.LABELS_FILE).write_text("\n".join(labels[0]) + "\n")
        manifest = build_manifest(target, artifact, result, opts, tolerance.to_json(),
                                  parity_entries, stage, precision, quant_info, (ins, outs),
                                  checked.source, labels and labels[1], image_inputs)
        bundle_mod.write_json(stage / "report.json", report)
        (stage / "report.html").write_text(render(report))
        manifest["files"] = bundle_mod.file_hashes(stage)
        manifest_mod.check(manifest)
        bundle_mod.write_json(stage / "manifest.json", manifest)
    return ConvertOutcome(out, report, manifest, report["passed"])


def guard_fp16(result: ExportResult, opts: ConvertOptions, target: Target, checked: ParitySet,
               progress: Progress = _noop) -> dict[str, Any]:
    """Before an fp16 artifact is emitted: the float values that fp16 cannot hold on the parity
    inputs (quantize.fp16_range). When the target picked fp16 by default, the model is emitted
    in fp32 instead: ncnn's fp16 storage is global (no per-layer fp32), and the CoreML emitter
    has no per-op precision yet. An explicit --precision fp16 is kept, with a warning.
    Returns report.json's `fp16_range`."""
    if opts.quantize or target.precision(opts.target_options) != "fp16":
        return {"checked": False}
    from edgeexport.quantize.fp16_range import FP16_SAFE, fp16_hazards

    progress("validate", "fp16 range analysis")
    feeds = [{s.name: f[s.name] for s in result.inputs} for f in checked.feeds]
    hazards = fp16_hazards(result.model, feeds)
    block: dict[str, Any] = {"checked": True, "limit": FP16_SAFE,
                             "hazards": [h.to_json() for h in hazards], "action": None}
    if not hazards:
        return block
    where = ", ".join(f"{h.op} '{h.node}' ({h.why})" for h in hazards[:3]) + (
        f" and {len(hazards) - 3} more" if len(hazards) > 3 else "")
    if getattr(opts.target_options, "precision", None) == "fp16":
        block["action"] = "kept fp16 (--precision fp16 asked for it)"
        block["warnings"] = [f"fp16 overflows in {where}: expect inf/NaN; drop --precision "
                             "fp16 to emit fp32"]
        return block
    opts.target_options = dataclasses.replace(opts.target_options, precision="fp32")
    block["action"] = "fp32"
    why = ("ncnn's fp16 storage is global" if target.name == "vulkan"
           else "its emitter has no per-op precision yet")
    block["warnings"] = [f"fp16 overflows in {where}: {target.name} cannot keep single ops in "
                         f"fp32 ({why}), so this model is emitted in fp32"]
    return block


def judge_by_noise_floor(result: ExportResult, checked: ParitySet, tolerance: Tolerance,
                         progress: Progress = _noop) -> tuple[Tolerance, dict[str, Any]]:
    """The tolerance runtimes are held to: max(fixed bound, k x the model's own float noise
    floor, PyTorch float64 vs float32 on the parity inputs, vs float16 for an fp16 artifact:
    noise.FLOOR_DTYPES); written to the manifest as data,
    so `validate` and the apps apply it with no new logic. Also report.json's `noise_floor`."""
    progress("validate", f"noise floor (PyTorch float64 vs "
                         f"{noise_mod.FLOOR_DTYPES.get(tolerance.name, 'float32')})")
    floor = noise_mod.measure(result.eager,
                              [[f[s.name] for s in result.inputs] for f in checked.feeds],
                              checked.expected, tolerance.name)
    judged, warning = noise_mod.judge_with(tolerance, floor, TOLERANCES["fp32"])
    return judged, {"block": floor.to_json(judged), "warnings": [warning] if warning else []}


def _clone(model: ir.Model) -> ir.Model:
    return ir.serde.deserialize_model(ir.serde.serialize_model(model))


def _quantize(result: ExportResult, opts: ConvertOptions,
              step: Callable[[str], None] = lambda detail: None) -> dict[str, Any]:
    if not opts.quantize:
        return {"scheme": None}
    from edgeexport import quantize

    return quantize.apply(result, opts.quantize, opts.calibration_data,
                          calibration_method=opts.calibration_method, max_error=opts.max_error,
                          preprocess=opts.calibration_preprocess, progress=step)


def build_report(target: str, artifact: Artifact, coverage: Coverage, parity: list[ParityResult],
                 timer: Timer, result: ExportResult, pass_report: passes.PassReport,
                 quant_info: dict[str, Any], expected_source: str,
                 unverified: str | None = None) -> dict[str, Any]:
    rows = [p.to_json() for p in parity]
    verdict, reason = decide_verdict(rows, unverified)
    return {
        "target": target,
        "artifact": artifact.path.name,
        "artifact_bytes": sum(f.stat().st_size for f in _all_files(artifact)),
        "quantization": quant_info,
        "coverage": coverage.to_json(),
        "parity": rows,
        # "passed" | "failed" | "unverified" (checked on inputs that cannot show it works)
        "verdict": verdict,
        "verdict_reason": reason,
        "passed": verdict == "passed",
        "parity_inputs_unverified": unverified,
        # findings.collect fills it from the finished report (add_layer_report): one place
        "warnings": [],
        "expected_from": expected_source,
        # "direct" (edgeexport's own ATen lowering) or "torch.onnx (why)"; absent for ONNX files
        "lowering": result.model.metadata_props.get("edgeexport.lowering"),
        "timings_s": {k: timer.seconds.get(k, 0.0)
                      for k in ("export", "passes", "quantize", "emit", "validate")},
        "passes": {"ran": sorted(set(pass_report.ran)), "modified": pass_report.modified},
        "ops": _op_histogram(result.model),
    }


def add_layer_report(report: dict[str, Any], model: ir.Model, artifact: Artifact, target: Target,
                     ir_feeds: dict[str, np.ndarray], artifact_feeds: dict[str, np.ndarray],
                     tolerance: Any) -> None:
    """report.json `per_layer` (each runtime's intermediates against the reference), `nodes`
    (the partition per IR node) and `warnings` (everything report.html shows first)."""
    from edgeexport.validate import findings, layers

    report["per_layer"] = layers.for_report(model, artifact.path, list(target.runtimes),
                                            ir_feeds, artifact_feeds, tolerance)
    report["nodes"] = layers.node_strip(model, report["coverage"])
    report["warnings"] = findings.collect(report)


def coverage_warnings(coverage: Coverage) -> list[str]:
    """The coverage notes that are warnings (NNAPI partition splits and the like)."""
    return [n.removeprefix("WARNING: ") for n in coverage.notes if n.startswith("WARNING: ")]


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


def build_manifest(target: Target, artifact: Artifact, result: ExportResult,
                   opts: ConvertOptions, tolerance: dict[str, Any],
                   parity_entries: list[dict[str, Any]], stage: Path, precision: str,
                   quant_info: dict[str, Any], io: tuple[list, list], parity_source: str,
                   labels: dict[str, Any] | None,
                   image_inputs: list[ImageInput] | None = None) -> dict[str, Any]:
    """manifest.json (see validate/manifest.py and its schema)."""
    quantization = {"scheme": quant_info.get("scheme") or "none"}
    quantization.update({k: v for k, v in quant_info.items() if k not in ("scheme", "seconds")
                         and isinstance(v, (str, int, float, bool))})
    source = {"model": result.loaded.source, "kind": result.loaded.kind,
              "sha256": result.loaded.sha256}
    manifest = manifest_mod.build(
        target, artifact, result.model, source, precision, quantization, tolerance, io[0], io[1],
        parity_entries, parity_source, opts.target_options, opts.calibration_preprocess, labels,
        stage, bundle_mod.tool_versions())
    images = {im.name: im for im in image_inputs or []}
    for entry in manifest["inputs"]:  # an 8-bit image input: what the program does to it first
        if entry["name"] in images and "coreml" in entry:
            entry["coreml"].update(images[entry["name"]].describe())
    return manifest
