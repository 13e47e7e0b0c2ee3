"""What each `edgeexport` subcommand does; cli.py parses, this module acts and prints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgeexport import ir as eir
from edgeexport.cli import EXIT_OK, EXIT_PARITY, emit_json
from edgeexport.errors import UsageError
from edgeexport.exporter import parse_input_spec
from edgeexport.progress import StageProgress
from edgeexport.quantize.cli import cmd_quantize
from edgeexport.validate.parity import emulation_cap

__all__ = ["cmd_app", "cmd_bench", "cmd_convert", "cmd_export", "cmd_inspect", "cmd_quantize",
           "cmd_run", "cmd_targets", "cmd_validate"]


def _input_specs(args: argparse.Namespace) -> list:
    return [parse_input_spec(s) for s in args.input_shape]


def _output_names(args: argparse.Namespace) -> list[str] | None:
    return [n.strip() for n in args.output_names.split(",")] if args.output_names else None


def _options(args: argparse.Namespace, target: str) -> Any:
    from edgeexport.pipeline import ConvertOptions

    return ConvertOptions(
        target=target, input_specs=_input_specs(args), dynamic_batch=args.dynamic_batch,
        trust_pickle=args.trust_pickle, allow_cwd_import=args.allow_cwd_import,
        optimize=not args.no_optimize,
        quantize=getattr(args, "quantize", None),
        calibration_data=getattr(args, "calibration_data", None),
        calibration_method=getattr(args, "calibration_method", None),
        max_error=getattr(args, "max_error", None),
        calibration_preprocess=getattr(args, "preprocess", None),
        output_names=_output_names(args), target_options=args,
        samples=getattr(args, "samples", None), labels=getattr(args, "labels", None),
        emulation=emulation_cap(args))


def cmd_export(args: argparse.Namespace) -> int:
    from edgeexport.pipeline import Timer, export_and_optimize
    from edgeexport.validate.bundle import check_output_dir

    out = Path(args.output)
    if out.is_dir():
        raise UsageError(f"{out}: is a directory; -o names the .onnx file to write")
    check_output_dir(out.resolve().parent)
    progress = StageProgress(not args.json, total=2)
    timer = Timer()
    try:
        result, report = export_and_optimize(args.model, _options(args, "onnx"), timer, progress)
    finally:
        progress.close()
    eir.save(result.model, out)
    info = {"ok": True, "output": str(out), "inputs": [s.describe() for s in result.inputs],
            "outputs": [v.name for v in result.model.graph.outputs],
            "nodes": len(result.model.graph), "timings_s": timer.seconds,
            "passes_modified": report.modified}
    if args.json:
        emit_json("export", info)
    else:
        print(f"wrote {out}: {info['nodes']} nodes, inputs {' '.join(info['inputs'])}, "
              f"outputs {', '.join(info['outputs'])} ({sum(timer.seconds.values()):.1f} s)")
    return EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    from edgeexport import profile
    from edgeexport.pipeline import convert

    targets = list(profile.TARGET_MODULES) if args.target == "all" else [args.target]
    results, worst = [], EXIT_OK
    for target in targets:
        out = Path(args.output) / target if args.target == "all" else Path(args.output)
        if args.target == "all":
            out.parent.mkdir(parents=True, exist_ok=True)
        progress = StageProgress(not args.json)
        try:
            outcome = convert(args.model, out, _options(args, target), progress)
        finally:
            progress.close()
        results.append(outcome)
        if not outcome.passed:
            worst = EXIT_PARITY
    if args.json:
        docs = [{"ok": o.passed, "verdict": o.report["verdict"], "out": str(o.out),
                 "report": o.report} for o in results]
        emit_json("convert", docs if len(docs) > 1 else docs[0], worst,
                  [w for o in results for w in o.report.get("warnings", [])])
    else:
        for o in results:
            print_report(o.out, o.report)
    return worst


def print_report(out: Path, report: dict[str, Any], file: Any = None) -> None:
    file = file or sys.stdout
    cov = report["coverage"]
    print(f"{report['target']}: {out / report['artifact']} ({report['artifact_bytes']:,} bytes), "
          f"{cov['delegated_ops']}/{cov['total_ops']} ops delegated in "
          f"{cov['partitions']} partition(s)", file=file)
    print_parity_table(report["parity"], file)
    t = report["timings_s"]
    print("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in t.items()), file=file)
    print_warnings(report.get("warnings", []), file)
    print(verdict_line(report["verdict"], report.get("verdict_reason"))
          + f" (report: {out / 'report.html'})", file=file)


def verdict_line(verdict: str, reason: str | None) -> str:
    """`parity: PASSED`, `parity: FAILED`, or `parity: UNVERIFIED: why` (a verdict that cannot
    be trusted says so where people look, not only in the JSON)."""
    return f"parity: {verdict.upper()}" + (f": {reason}" if verdict == "unverified" else "")


def print_parity_table(parity: list[dict[str, Any]], file: Any = None) -> None:
    rows = [("runtime", "device", "executed", "max_abs_err", "max_rel_err", "cosine", "top1",
             "latency_ms", "result")]
    for p in parity:
        def f(v: Any, fmt: str = ".2e") -> str:
            return "-" if v is None else (format(v, fmt) if isinstance(v, float) else str(v))
        result = ("passed" if p["passed"] else
                  f"UNVERIFIED: {p['reason']}" if p.get("verdict") == "unverified" else
                  "FAILED: " + "; ".join(p["violations"])) \
            if p["executed"] else f"not executed: {p['reason']}"
        cap = (p.get("details") or {}).get("emulation_cap")
        if cap:  # what emulation cost, and what a cap left out
            result += (f" (emulated: {cap['samples_checked']}/{cap['samples_total']} samples, "
                       f"{cap['first_sample_s']:.1f} s each"
                       + (f", capped at {cap['max_seconds']:g} s" if cap["max_seconds"] else "")
                       + (f", at most {cap['max_samples']}" if cap["max_samples"] else "") + ")")
        rows.append((p["runtime"], f(p.get("device")), "yes" if p["executed"] else "no",
                     f(p["max_abs_err"]), f(p["max_rel_err"]), f(p["cosine"], ".6f"),
                     f(p.get("top1_agreement"), ".2f"), f(p.get("latency_ms"), ".2f"), result))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1], file=file)


def cmd_validate(args: argparse.Namespace) -> int:
    from edgeexport import delegates
    from edgeexport.pipeline import runtime_step
    from edgeexport.validate import Tolerance, check_runtime, decide_verdict
    from edgeexport.validate.bundle import load_parity_tensors, read_manifest, read_report
    from edgeexport.validate.manifest import errors as manifest_errors

    out = Path(args.bundle)
    manifest = read_manifest(out)
    problems = manifest_errors(manifest) if "schema_version" in manifest else []
    if problems:  # (bundles from before schema_version are read as they are)
        raise UsageError(f"{out / 'manifest.json'}: does not follow manifest.schema.json "
                         f"({problems[0]}); convert the model again")
    target = delegates.load_target(manifest["target"])
    samples, expected = load_parity_tensors(out, manifest)
    tol = manifest["tolerances"]
    tolerance = Tolerance(**tol)
    artifact = out / manifest["artifact"]
    progress = StageProgress(not args.json, stages=("validate",))
    try:
        parity = [check_runtime(name, artifact, samples, expected, tolerance,
                                emulation=emulation_cap(args),
                                progress=runtime_step(progress, name)).to_json()
                  for name in target.runtimes]
    finally:
        progress.close()
    warnings = [w for p in parity for w in p["details"].get("warnings", [])]
    # the inputs are the bundle's: what convert said of them holds for this run too
    verdict, reason = decide_verdict(parity, read_report(out).get("parity_inputs_unverified"))
    layers = per_layer(out, manifest, samples[0]) if args.per_layer else None
    code = EXIT_OK if verdict == "passed" else EXIT_PARITY
    if args.json:
        return emit_json("validate", {"ok": verdict == "passed", "verdict": verdict,
                                      "verdict_reason": reason, "parity": parity,
                                      "per_layer": layers}, code, warnings)
    print_parity_table(parity)
    if layers is not None:
        print_layers(layers)
    print_warnings(warnings)
    print(verdict_line(verdict, reason))
    return code


def print_warnings(warnings: list[str], file: Any = None) -> None:
    for warning in warnings:
        print(f"WARNING: {warning}", file=file or sys.stdout)


def per_layer(out: Path, manifest: dict[str, Any], feeds: dict[str, np.ndarray]) -> dict:
    """Compare every intermediate tensor a runtime exposes with the reference runtime's."""
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


def print_layers(layers: dict[str, Any]) -> None:
    for name, r in layers.items():
        bad = r["first_over_tolerance"]
        print(f"{name}: {len(r['layers'])} tensors compared; first over tolerance: "
              + (f"{bad['node']} ({bad['op']}) max_rel_err {bad['max_rel_err']:.2e}"
                 if bad else "none"))


def cmd_inspect(args: argparse.Namespace) -> int:
    from edgeexport import delegates
    from edgeexport.pipeline import Timer, coverage_warnings, export_and_optimize

    target = delegates.load_target(args.target)
    result, _ = export_and_optimize(args.model, _options(args, args.target), Timer())
    coverage = target.coverage(result.model, args)
    cov = coverage.to_json()
    if args.json:
        return emit_json("inspect", {"ok": True, "target": args.target, "coverage": cov},
                         EXIT_OK, coverage_warnings(coverage))
    print(f"{args.target}: {cov['delegated_ops']}/{cov['total_ops']} ops delegated in "
          f"{cov['partitions']} partition(s)")
    for fb in cov["fallback"]:
        print(f"  fallback  {fb['node']:<32} {fb['op']:<20} {fb['reason']}")
    for note in cov.get("notes", []):
        print(f"  note: {note}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from edgeexport import runtimes

    path = Path(args.artifact)
    if not path.exists():
        raise UsageError(f"{path}: no such artifact")
    fmt = runtimes.artifact_format(path)
    names = [args.runtime] if args.runtime else runtimes.runtimes_for(fmt)
    runtime = None
    for name in names:
        try:
            candidate = runtimes.get(name)
        except KeyError as exc:
            raise UsageError(str(exc).strip("'\"")) from None
        if fmt not in candidate.formats:
            raise UsageError(f"runtime '{name}' does not execute {fmt} artifacts")
        if candidate.unavailable_reason() is None:
            runtime = candidate
            break
    if runtime is None:
        raise UsageError(f"{path}: no runtime available here for {fmt} artifacts")
    feeds = _read_inputs(args.input)
    session = runtime.load(path)
    outputs = session.run(feeds)
    if args.output:
        np.savez(args.output, **outputs)
    if args.json:
        emit_json("run", {"ok": True, "runtime": runtime.name, "device": session.device,
                   "outputs": {k: {"shape": list(v.shape), "dtype": v.dtype.name,
                                   "values": v.ravel()[:16].tolist()} for k, v in outputs.items()}})
    else:
        for k, v in outputs.items():
            print(f"{k}: shape {list(v.shape)} {v.dtype.name} "
                  f"{np.array2string(v.ravel()[:8], precision=5)}{' ...' if v.size > 8 else ''}")
    return EXIT_OK


def _read_inputs(items: list[str]) -> dict[str, np.ndarray]:
    feeds: dict[str, np.ndarray] = {}
    for item in items:
        name, _, file = item.rpartition("=")
        try:
            data = np.load(file)
        except Exception as exc:
            raise UsageError(f"{file}: cannot read input ({exc})") from None
        if hasattr(data, "files"):
            feeds.update({k: data[k] for k in data.files})
        else:
            if not name:
                raise UsageError(f"--input {item}: name the input as NAME=FILE.npy")
            feeds[name] = data
    return feeds


def cmd_bench(args: argparse.Namespace) -> int:
    import statistics
    import time

    from edgeexport import delegates, runtimes
    from edgeexport.validate.bundle import load_parity_tensors, read_manifest

    out = Path(args.bundle)
    manifest = read_manifest(out)
    if args.runs < 1:
        raise UsageError("--runs must be at least 1")
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
        for _ in range(args.runs):
            t = time.perf_counter()
            session.run(feeds)
            times.append((time.perf_counter() - t) * 1000)
        details = dict(getattr(session, "details", {}))
        rows.append({"runtime": name, "executed": True, "device": session.device,
                     "median_ms": round(statistics.median(times), 3),
                     "p90_ms": round(sorted(times)[int(0.9 * (len(times) - 1))], 3),
                     "min_ms": round(min(times), 3), "runs": args.runs,
                     "emulated": bool(details.get("emulated", False))})
    if args.json:
        emit_json("bench", {"ok": True, "bundle": str(out), "latency": rows})
        return EXIT_OK
    print(f"{'runtime':<22}{'device':<14}{'median ms':>10}{'p90 ms':>10}{'min ms':>10}")
    for r in rows:
        if not r["executed"]:
            print(f"{r['runtime']:<22}not executed: {r['reason']}")
            continue
        note = "  (emulated: not device speed)" if r["emulated"] else ""
        print(f"{r['runtime']:<22}{r['device']:<14}{r['median_ms']:>10.2f}{r['p90_ms']:>10.2f}"
              f"{r['min_ms']:>10.2f}{note}")
    return EXIT_OK


def cmd_targets(args: argparse.Namespace) -> int:
    from edgeexport import delegates, profile

    names = delegates.target_names()
    matrix = profile.support_matrix()
    info = [{"target": n, "description": delegates.load_target(n).description,
             "runtimes": list(delegates.load_target(n).runtimes),
             "ops_supported": sum(1 for op in matrix if matrix[op].get(n, "no") != "no")}
            for n in names]
    if args.json:
        emit_json("targets", {"targets": info, "ops": matrix,
                              "edge_profile_ops": len(profile.EDGE_PROFILE)})
        return EXIT_OK
    print(f"edge profile: {len(profile.EDGE_PROFILE)} ONNX ops at opset {eir.OPSET}")
    for t in info:
        print(f"  {t['target']:<8} {t['ops_supported']:>3} ops  runtimes: "
              f"{', '.join(t['runtimes'])}  — {t['description']}")
    if args.ops:
        print("\n" + "op".ljust(24) + "".join(n.ljust(10) for n in names))
        for op, row in matrix.items():
            cells = {"yes": "yes", "no": "-"}
            print(op.ljust(24) + "".join(cells.get(row.get(n, "no"), "cond").ljust(10)
                                         for n in names))
    return EXIT_OK


def cmd_app(args: argparse.Namespace) -> int:
    from edgeexport.apps import make_app

    project = make_app(args.platform, args.bundle, args.output, name=args.name,
                       preprocess=args.preprocess, labels=args.labels)
    if args.json:
        emit_json("app", {"ok": True, **project.to_json()})
        return EXIT_OK
    print(f"wrote {project.out}: {args.platform} app '{project.name}' ({project.app_id}), "
          f"{project.files} files, bundle in {project.bundle_dir.relative_to(project.out)}")
    for note in project.notes:
        print(f"  note: {note}")
    guide = "android/README.md" if args.platform == "android" else "ios/README.md"
    print(f"  next: open it in {'Android Studio' if args.platform == 'android' else 'Xcode'} "
          f"({guide} has the steps)")
    return EXIT_OK
