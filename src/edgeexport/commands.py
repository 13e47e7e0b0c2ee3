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


def _model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The model flags (--input-shape, ...) as the API's keyword arguments."""
    return {"input_shapes": _input_specs(args), "dynamic_batch": args.dynamic_batch,
            "trust_pickle": args.trust_pickle, "allow_cwd_import": args.allow_cwd_import,
            "optimize": not args.no_optimize, "output_names": _output_names(args)}


def _export_options(args: argparse.Namespace) -> Any:
    """The model flags as the pipeline's options for `export` (no target work)."""
    from edgeexport.pipeline import ConvertOptions

    kw = _model_kwargs(args)
    return ConvertOptions(target="onnx", input_specs=kw.pop("input_shapes"), **kw)


def cmd_export(args: argparse.Namespace) -> int:
    from edgeexport.pipeline import Timer, export_and_optimize
    from edgeexport.validate.bundle import check_writable

    out = Path(args.output)
    if out.is_dir():
        raise UsageError(f"{out}: is a directory; -o names the .onnx file to write")
    check_writable(out)
    progress = StageProgress(not args.json, total=2)
    timer = Timer()
    try:
        result, report = export_and_optimize(args.model, _export_options(args), timer, progress)
    finally:
        progress.close()
    out.parent.mkdir(parents=True, exist_ok=True)
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
    from edgeexport import api, profile, target_options
    from edgeexport.pipeline import NotConverted

    targets = list(profile.TARGET_MODULES) if args.target == "all" else [args.target]
    target_options.check_cli_targets(args, targets)
    progress = StageProgress(not args.json)  # several targets: emit, validate repeat
    try:
        got = api.convert.cli(args.model, target=args.target if len(targets) == 1 else None,
                              targets=targets if len(targets) > 1 else None,
                              quantize=args.quantize, calibration=args.calibration_data,
                              samples=args.samples, max_error=args.max_error, options=args,
                              out=args.output, progress=progress, **_model_kwargs(args),
                              calibration_method=args.calibration_method,
                              preprocess=args.preprocess, labels=args.labels, force=args.force,
                              max_emulated_seconds=args.max_emulated_seconds,
                              emulated_samples=args.emulated_samples)
    finally:
        progress.close()
    bundles = got if isinstance(got, dict) else {args.target: got}
    converted = {n: b for n, b in bundles.items() if not isinstance(b, NotConverted)}
    if args.native:
        for b in converted.values():
            _add_native_rows(b.path, b.report)
    refused = [b for b in bundles.values() if isinstance(b, NotConverted)]
    worst = (refused[0].error.exit_code if refused
             else EXIT_OK if all(b.passed for b in converted.values()) else EXIT_PARITY)
    if args.json:
        docs = [{"ok": False, "verdict": "not converted", "target": b.target, "out": None,
                 "error": str(b.error), "report": None} if isinstance(b, NotConverted) else
                {"ok": b.passed, "verdict": b.verdict, "target": n, "out": str(b.path),
                 "report": b.report} for n, b in bundles.items()]
        return emit_json("convert", docs if len(docs) > 1 else docs[0], worst,
                         [w for b in converted.values() for w in b.report.get("warnings", [])])
    if len(bundles) == 1:
        b = next(iter(bundles.values()))
        print_report(b.path, b.report)
    else:
        print_combined(Path(args.output), bundles)
    return worst


def _add_native_rows(out: Path, report: dict[str, Any]) -> None:
    """The C++ runner's rows join the report printed and returned, and its verdict (report.json
    on disk is left as convert wrote it: the manifest holds its sha256)."""
    from edgeexport.runtimes import native
    from edgeexport.validate import decide_verdict
    from edgeexport.validate.bundle import read_manifest

    report["parity"] = list(report["parity"]) + native.parity_rows(out, read_manifest(out))
    verdict, reason = decide_verdict(report["parity"], report.get("parity_inputs_unverified"))
    report.update(verdict=verdict, verdict_reason=reason, passed=verdict == "passed")


def print_combined(out: Path, bundles: dict[str, Any]) -> None:
    """One table for a multi-target convert: targets x runtimes (OUT/report.json)."""
    import json

    from edgeexport.pipeline import NotConverted

    combined = json.loads((out / "report.json").read_text())
    shared = combined["shared"]
    print(f"exported, optimized and quantized once ({shared['quantize_runs']} quantization "
          "run(s)): " + ", ".join(f"{k} {v:.2f}s" for k, v in shared["timings_s"].items()))
    rows = [("target", "runtime", "executed", "max_abs_err", "cosine", "latency_ms", "result")]
    f = (lambda v, fmt=".2e": "-" if v is None else format(v, fmt))  # noqa: E731
    for name, b in bundles.items():
        if isinstance(b, NotConverted):
            rows.append((name, "-", "no", "-", "-", "-", f"not converted: {b.error}"))
            continue
        for p in b.report["parity"]:
            rows.append((name, p["runtime"], "yes" if p["executed"] else "no",
                         f(p["max_abs_err"]), f(p["cosine"], ".6f"),
                         f(p.get("latency_ms"), ".2f"),
                         (p.get("verdict") or ("passed" if p["passed"] else "failed"))
                         if p["executed"] else f"not executed: {p['reason']}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    for name, b in bundles.items():
        if isinstance(b, NotConverted):
            print(f"{name}: not converted ({b.error})")
            continue
        print_warnings(b.report.get("warnings", []), prefix=f"({name}) ")
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
    print_warnings(report.get("warnings", []), file)
    print(verdict_line(report["verdict"], report.get("verdict_reason"))
          + f" (report: {out / 'report.html'})", file=file)


def verdict_line(verdict: str, reason: str | None) -> str:
    """`parity: PASSED`, `parity: FAILED`, or `parity: UNVERIFIED: why` (a verdict that cannot
    be trusted says so where people look, not only in the JSON)."""
    return f"parity: {verdict.upper()}" + (f": {reason}" if verdict == "unverified" else "")


def print_parity_table(parity: list[dict[str, Any]], file: Any = None) -> None:
    rows = [("runtime", "device", "executed", "max_abs_err", "max_rel_err", "cosine", "top1",
             "bound", "latency_ms", "result")]
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
                     f(p.get("top1_agreement"), ".2f"), f(p.get("bound")),
                     f(p.get("latency_ms"), ".2f"), result))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1], file=file)


def cmd_validate(args: argparse.Namespace) -> int:
    from edgeexport.bundle import validate

    progress = StageProgress(not args.json, stages=("validate",))
    try:
        got = validate(Path(args.bundle), args.per_layer, native=args.native,
                       emulation=emulation_cap(args), progress=progress)
    finally:
        progress.close()
    code = EXIT_OK if got["ok"] else EXIT_PARITY
    if args.json:
        warnings = got.pop("warnings")
        return emit_json("validate", got, code, warnings)
    print_parity_table(got["parity"])
    if got["per_layer"] is not None:
        print_layers(got["per_layer"], args.top)
    print_warnings(got["warnings"])
    print(verdict_line(got["verdict"], got["verdict_reason"]))
    return code


def print_warnings(warnings: list[Any], file: Any = None, prefix: str = "") -> None:
    """report.json's findings ({level, topic, text}, worst first; notes and the UNVERIFIED
    verdict, which the summary line states, left out) or plain warning strings."""
    for w in warnings:
        if isinstance(w, dict):
            if w["level"] != "note" and not w["text"].startswith("UNVERIFIED"):
                print(f"{w['level'].upper()}: {prefix}{w['text']}", file=file or sys.stdout)
        else:
            print(f"WARNING: {prefix}{w}", file=file or sys.stdout)


def print_layers(layers: dict[str, Any], top: int = 10, file: Any = None) -> None:
    """Per runtime: the `top` layers furthest from the reference, then the first over tolerance."""
    from edgeexport.validate.layers import worst

    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else (format(v, fmt) if isinstance(v, (int, float)) else str(v))

    for name, r in layers.items():
        rows = worst(r["layers"], top)
        print(f"{name}: {len(r['layers'])} tensors compared with the reference; the "
              f"{len(rows)} worst:", file=file)
        table = [("node", "module", "op", "max_abs_err", "max_rel_err", "SQNR dB")]
        table += [(x["node"], x.get("module") or "-", x["op"], f(x["max_abs_err"], ".2e"),
                   f(x["max_rel_err"], ".2e"), f(x.get("sqnr_db"), ".1f")) for x in rows]
        widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
        for t in table:
            print("  " + "  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip(), file=file)
        bad = r["first_over_tolerance"]
        print("  first over tolerance: " + (
            f"{bad['node']} ({bad['op']}{', ' + bad['module'] if bad.get('module') else ''}) "
            f"max_rel_err {bad['max_rel_err']:.2e}, SQNR {f(bad.get('sqnr_db'), '.1f')} dB"
            if bad else "none"), file=file)


def cmd_inspect(args: argparse.Namespace) -> int:
    from edgeexport import api, target_options

    target_options.check_cli_targets(args, [args.target])
    cov = api.inspect.cli(args.model, target=args.target, options=args, **_model_kwargs(args))
    if args.json:
        return emit_json("inspect", {"ok": True, "target": args.target, "coverage": cov},
                         EXIT_OK, [n.removeprefix("WARNING: ") for n in cov.get("notes", [])
                                   if n.startswith("WARNING: ")])
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
    feeds, files = _read_inputs(args.input)
    runtime, device, outputs = run_artifact(path, feeds, args.runtime, files=files)
    if args.output:
        np.savez(args.output, **outputs)
    if args.json:
        emit_json("run", {"ok": True, "runtime": runtime, "device": device,
                   "outputs": {k: {"shape": list(v.shape), "dtype": v.dtype.name,
                                   "values": v.ravel()[:16].tolist()} for k, v in outputs.items()}})
    else:
        for k, v in outputs.items():
            print(f"{k}: shape {list(v.shape)} {v.dtype.name} "
                  f"{np.array2string(v.ravel()[:8], precision=5)}{' ...' if v.size > 8 else ''}")
    return EXIT_OK


def _read_inputs(items: list[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The --input arrays by input name, and the file each came from."""
    feeds: dict[str, np.ndarray] = {}
    files: dict[str, str] = {}
    for item in items:
        name, _, file = item.rpartition("=")
        try:
            data = np.load(file, allow_pickle=False)
        except Exception as exc:
            raise UsageError(f"{file}: cannot read input ({exc}); save it with numpy.save or "
                             "numpy.savez") from None
        if hasattr(data, "files"):
            try:
                feeds.update({k: data[k] for k in data.files})
            except Exception as exc:
                raise UsageError(f"{file}: cannot read input ({exc})") from None
            files.update({k: f"{file}[{k}]" for k in data.files})
        else:
            if not name:
                raise UsageError(f"{file}: name the input as --input NAME=FILE.npy")
            feeds[name], files[name] = data, file
    return feeds, files


def cmd_bench(args: argparse.Namespace) -> int:
    from edgeexport.bundle import bench

    out = Path(args.bundle)
    rows = bench(out, args.runs, native=args.native)
    if args.json:
        emit_json("bench", {"ok": True, "bundle": str(out), "latency": rows})
        return EXIT_OK
    w = max([22] + [len(r["runtime"]) + 2 for r in rows])  # the *-native-aarch64-qemu names
    print(f"{'runtime':<{w}}{'device':<14}{'median ms':>10}{'p90 ms':>10}{'min ms':>10}")
    for r in rows:
        if not r["executed"]:
            print(f"{r['runtime']:<{w}}not executed: {r['reason']}")
            continue
        note = "  (emulated: not device speed)" if r["emulated"] else ""
        if "first_ms" in r:  # the native runner times its first run apart
            note += f"  first run {r['first_ms']:.2f} ms"
        print(f"{r['runtime']:<{w}}{r['device']:<14}{r['median_ms']:>10.2f}{r['p90_ms']:>10.2f}"
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
        emit_json("targets", {"targets": info, "ops": matrix,
                              "edge_profile_ops": len(profile.EDGE_PROFILE)})
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
