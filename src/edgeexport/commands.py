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

__all__ = ["cmd_app", "cmd_bench", "cmd_convert", "cmd_export", "cmd_inspect", "cmd_quantize",
           "cmd_run", "cmd_targets", "cmd_validate"]


def _input_specs(args: argparse.Namespace) -> list:
    return [parse_input_spec(s) for s in args.input_shape]


def _output_names(args: argparse.Namespace) -> list[str] | None:
    return [n.strip() for n in args.output_names.split(",")] if args.output_names else None


def _model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The model flags (--input-shape, ...) as the API's keyword arguments."""
    return {"input_shapes": _input_specs(args), "dynamic_batch": args.dynamic_batch,
            "trust_pickle": args.trust_pickle, "allow_cwd_import": args.allow_cwd_import,
            "optimize": not args.no_optimize, "output_names": _output_names(args)}


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
        samples=getattr(args, "samples", None), labels=getattr(args, "labels", None))


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
        emit_json(info)
    else:
        print(f"wrote {out}: {info['nodes']} nodes, inputs {' '.join(info['inputs'])}, "
              f"outputs {', '.join(info['outputs'])} ({sum(timer.seconds.values()):.1f} s)")
    return EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    from edgeexport import api, profile, target_options

    targets = list(profile.TARGET_MODULES) if args.target == "all" else [args.target]
    target_options.check_cli_targets(args, targets)
    progress = StageProgress(not args.json, total=3 + 2 * len(targets))
    try:
        got = api.convert.cli(args.model, target=args.target if len(targets) == 1 else None,
                              targets=targets if len(targets) > 1 else None,
                              quantize=args.quantize, calibration=args.calibration_data,
                              samples=args.samples, max_error=args.max_error, options=args,
                              out=args.output, progress=progress, **_model_kwargs(args),
                              calibration_method=args.calibration_method,
                              preprocess=args.preprocess, labels=args.labels)
    finally:
        progress.close()
    bundles = got if isinstance(got, dict) else {args.target: got}
    worst = EXIT_OK if all(b.passed for b in bundles.values()) else EXIT_PARITY
    if args.json:
        docs = [{"ok": b.passed, "verdict": b.verdict, "out": str(b.path), "report": b.report}
                for b in bundles.values()]
        emit_json(docs if len(docs) > 1 else docs[0])
    elif len(bundles) == 1:
        b = next(iter(bundles.values()))
        print_report(b.path, b.report)
    else:
        print_combined(Path(args.output), bundles)
    return worst


def print_combined(out: Path, bundles: dict[str, Any]) -> None:
    """One table for a multi-target convert: targets x runtimes (OUT/report.json)."""
    import json

    combined = json.loads((out / "report.json").read_text())
    shared = combined["shared"]
    print(f"exported, optimized and quantized once ({shared['quantize_runs']} quantization "
          "run(s)): " + ", ".join(f"{k} {v:.2f}s" for k, v in shared["timings_s"].items()))
    rows = [("target", "runtime", "executed", "max_abs_err", "cosine", "latency_ms", "result")]
    for name, b in bundles.items():
        for p in b.report["parity"]:
            f = (lambda v, fmt=".2e": "-" if v is None else format(v, fmt))  # noqa: E731
            rows.append((name, p["runtime"], "yes" if p["executed"] else "no",
                         f(p["max_abs_err"]), f(p["cosine"], ".6f"),
                         f(p.get("latency_ms"), ".2f"),
                         p.get("verdict") or ("passed" if p["passed"] else "failed")
                         if p["executed"] else f"not executed: {p['reason']}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    for name, b in bundles.items():
        for warning in b.report.get("warnings", []):
            print(f"WARNING ({name}): {warning}")
        print(f"{name}: " + verdict_line(b.verdict, b.report.get("verdict_reason"))
              + f" ({b.path / 'report.html'})")
    print(f"combined report: {out / 'report.json'}")


def print_report(out: Path, report: dict[str, Any], file: Any = None) -> None:
    file = file or sys.stdout
    cov = report["coverage"]
    print(f"{report['target']}: {out / report['artifact']} ({report['artifact_bytes']:,} bytes), "
          f"{cov['delegated_ops']}/{cov['total_ops']} ops delegated in "
          f"{cov['partitions']} partition(s)", file=file)
    print_parity_table(report["parity"], file)
    t = report["timings_s"]
    print("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in t.items()), file=file)
    for warning in report.get("warnings", []):
        print(f"WARNING: {warning}", file=file)
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
        rows.append((p["runtime"], f(p.get("device")), "yes" if p["executed"] else "no",
                     f(p["max_abs_err"]), f(p["max_rel_err"]), f(p["cosine"], ".6f"),
                     f(p.get("top1_agreement"), ".2f"), f(p.get("latency_ms"), ".2f"), result))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1], file=file)


def cmd_validate(args: argparse.Namespace) -> int:
    from edgeexport.bundle import validate

    result = validate(Path(args.bundle), args.per_layer)
    if args.json:
        emit_json(result)
    else:
        print_parity_table(result["parity"])
        if result["per_layer"] is not None:
            print_layers(result["per_layer"])
        print(verdict_line(result["verdict"], result["verdict_reason"]))
    return EXIT_OK if result["ok"] else EXIT_PARITY


def print_layers(layers: dict[str, Any]) -> None:
    for name, r in layers.items():
        bad = r["first_over_tolerance"]
        print(f"{name}: {len(r['layers'])} tensors compared; first over tolerance: "
              + (f"{bad['node']} ({bad['op']}) max_rel_err {bad['max_rel_err']:.2e}"
                 if bad else "none"))


def cmd_inspect(args: argparse.Namespace) -> int:
    from edgeexport import api, target_options

    target_options.check_cli_targets(args, [args.target])
    cov = api.inspect.cli(args.model, target=args.target, options=args, **_model_kwargs(args))
    if args.json:
        emit_json({"ok": True, "target": args.target, "coverage": cov})
        return EXIT_OK
    print(f"{args.target}: {cov['delegated_ops']}/{cov['total_ops']} ops delegated in "
          f"{cov['partitions']} partition(s)")
    for fb in cov["fallback"]:
        print(f"  fallback  {fb['node']:<32} {fb['op']:<20} {fb['reason']}")
    for note in cov.get("notes", []):
        print(f"  note: {note}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from edgeexport.bundle import run_artifact

    path = Path(args.artifact)
    if not path.exists():
        raise UsageError(f"{path}: no such artifact")
    runtime, device, outputs = run_artifact(path, _read_inputs(args.input), args.runtime)
    if args.output:
        np.savez(args.output, **outputs)
    if args.json:
        emit_json({"ok": True, "runtime": runtime, "device": device,
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
    from edgeexport.bundle import bench

    out = Path(args.bundle)
    rows = bench(out, args.runs)
    if args.json:
        emit_json({"ok": True, "bundle": str(out), "latency": rows})
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
    from edgeexport import delegates, profile, target_options

    names = delegates.target_names()
    matrix = profile.support_matrix()
    info = [{"target": n, "description": delegates.load_target(n).description,
             "runtimes": list(delegates.load_target(n).runtimes),
             "ops_supported": sum(1 for op in matrix if matrix[op].get(n, "no") != "no"),
             "options": target_options.describe(n)}
            for n in names]
    if args.json:
        emit_json({"targets": info, "ops": matrix, "edge_profile_ops": len(profile.EDGE_PROFILE)})
        return EXIT_OK
    print(f"edge profile: {len(profile.EDGE_PROFILE)} ONNX ops at opset {eir.OPSET}")
    for t in info:
        print(f"  {t['target']:<8} {t['ops_supported']:>3} ops  runtimes: "
              f"{', '.join(t['runtimes'])}  — {t['description']}")
        for o in t["options"]:
            choices = f" ({'|'.join(map(str, o['choices']))})" if o["choices"] else ""
            print(f"      {o['flag']:<24} default {o['default']!s:<11}{choices} {o['help']}")
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
        emit_json({"ok": True, **project.to_json()})
        return EXIT_OK
    print(f"wrote {project.out}: {args.platform} app '{project.name}' ({project.app_id}), "
          f"{project.files} files, bundle in {project.bundle_dir.relative_to(project.out)}")
    for note in project.notes:
        print(f"  note: {note}")
    guide = "android/README.md" if args.platform == "android" else "ios/README.md"
    print(f"  next: open it in {'Android Studio' if args.platform == 'android' else 'Xcode'} "
          f"({guide} has the steps)")
    return EXIT_OK
