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
        force=getattr(args, "force", False), emulation=emulation_cap(args))


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
        result, report = export_and_optimize(args.model, _options(args, "onnx"), timer, progress)
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
    from edgeexport import profile
    from edgeexport.pipeline import convert

    targets = list(profile.TARGET_MODULES) if args.target == "all" else [args.target]
    if args.target == "all":
        _check_all_root(Path(args.output), targets, args.force)
    results, worst = [], EXIT_OK
    for target in targets:
        out = Path(args.output) / target if args.target == "all" else Path(args.output)
        progress = StageProgress(not args.json)
        try:
            outcome = convert(args.model, out, _options(args, target), progress)
        finally:
            progress.close()
        if args.native:
            _add_native_rows(outcome.out, outcome.report)
            outcome.passed = outcome.report["passed"]
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


def _add_native_rows(out: Path, report: dict[str, Any]) -> None:
    """The C++ runner's rows join the report printed and returned (report.json on disk is left
    as convert wrote it: the manifest holds its sha256)."""
    from edgeexport.runtimes import native
    from edgeexport.validate.bundle import read_manifest

    rows = native.parity_rows(out, read_manifest(out))
    report["parity"] = list(report["parity"]) + rows
    executed = [p for p in report["parity"] if p["executed"]]
    report["passed"] = bool(executed) and all(p["passed"] for p in executed)


def _check_all_root(root: Path, targets: list[str], force: bool) -> None:
    """--target all writes OUT/<target>/: OUT may hold those bundles (replaced with --force) and
    nothing else; every target's folder is checked before the first conversion starts."""
    from edgeexport.validate.bundle import check_output_dir

    root = root.resolve() if root.is_symlink() else root
    if root.is_dir():
        ours = tuple(f".{t}.{kind}-" for t in targets for kind in ("staging", "old"))
        other = sorted(p.name for p in root.iterdir()
                       if p.name not in targets and not p.name.startswith(ours))
        if other:
            raise UsageError(f"{root}: --target all writes one bundle per target in "
                             f"{root}/<target>/, and the folder holds other files ({other[0]}); "
                             "choose a new or empty folder")
    for target in targets:
        check_output_dir(root / target, force)


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
    _probe(artifact, target.runtimes, samples)
    progress = StageProgress(not args.json, stages=("validate",))
    try:
        parity = [check_runtime(name, artifact, samples, expected, tolerance,
                                emulation=emulation_cap(args),
                                progress=runtime_step(progress, name)).to_json()
                  for name in target.runtimes]
    finally:
        progress.close()
    if args.native:
        from edgeexport.runtimes import native

        parity += native.parity_rows(out, manifest)
    warnings = [w for p in parity for w in (p.get("details") or {}).get("warnings", [])]
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
        print_layers(layers, args.top)
    print_warnings(warnings)
    print(verdict_line(verdict, reason))
    return code


def print_warnings(warnings: list[Any], file: Any = None) -> None:
    """report.json's findings ({level, topic, text}, worst first; notes and the UNVERIFIED
    verdict, which the summary line states, left out) or plain warning strings."""
    for w in warnings:
        if isinstance(w, dict):
            if w["level"] != "note" and not w["text"].startswith("UNVERIFIED"):
                print(f"{w['level'].upper()}: {w['text']}", file=file or sys.stdout)
        else:
            print(f"WARNING: {w}", file=file or sys.stdout)


#: runtimes that already run out of process or in pure Python: a crash cannot take us down
_SAFE_RUNTIMES = ("reference", "litert-aarch64-qemu", "mil-interpreter")


def _probe(artifact: Path, names: Any, samples: list[dict[str, np.ndarray]]) -> None:
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


def per_layer(out: Path, manifest: dict[str, Any], feeds: dict[str, np.ndarray]) -> dict:
    """Compare every intermediate tensor a runtime exposes with the reference runtime's."""
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
    from edgeexport.runtimes.isolate import check_feeds, declared_inputs, run_isolated

    path = Path(args.artifact)
    if not path.exists():
        raise UsageError(f"{path}: no such artifact")
    try:
        fmt = runtimes.artifact_format(path)
    except ValueError as exc:
        raise UsageError(f"{exc}; pass an .onnx, .tflite, .param or .mlpackage") from None
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
    feeds, files = _read_inputs(args.input)
    check_feeds(feeds, files, declared_inputs(path, fmt), path)
    outputs, facts = run_isolated(runtime.name, path, feeds)
    if args.output:
        np.savez(args.output, **outputs)
    if args.json:
        emit_json("run", {"ok": True, "runtime": runtime.name, "device": facts["device"],
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


def _native_bench_rows(out: Path, manifest: dict[str, Any], runs: int) -> list[dict[str, Any]]:
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
    _probe(out / manifest["artifact"], delegates.load_target(manifest["target"]).runtimes,
           [feeds])
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
    if args.native:
        rows += _native_bench_rows(out, manifest, args.runs)
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
