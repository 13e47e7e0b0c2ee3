"""`edgeexport quantize MODEL.onnx --scheme ... -o out.onnx`: the quantize stage on its own,
on an .onnx file (or anything `export` takes), writing the quantized IR and its report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgeexport.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `quantize` subcommand's arguments (also used by tests without the full CLI)."""
    p.add_argument("model", help=".onnx file (or any MODEL that `export` takes)")
    p.add_argument("--scheme", required=True, choices=["int8", "fp16", "dynamic-int8"])
    p.add_argument("--calibration-data", help=".npy, .npz or a folder of images (int8)")
    p.add_argument("--calibration-method", choices=["minmax", "percentile", "entropy", "mse"])
    p.add_argument("--preprocess", help="image folder preprocessing, e.g. 'imagenet' or "
                                        "'resize=256,crop=224,mean=a/b/c,std=a/b/c,layout=nchw'")
    p.add_argument("--max-error", help="accuracy budget vs float: cosine=0.995, top1=1 or "
                                       "rel=0.02; the most sensitive layers stay float")
    p.add_argument("--input-shape", action="append", default=[], metavar="[NAME=]DIMS[:DTYPE]")
    p.add_argument("--no-optimize", action="store_true", help="skip the optimization passes")
    p.add_argument("--report", help="write the quantization report (JSON) here")
    p.add_argument("-o", "--output", required=True, help="the quantized .onnx to write")


def cmd_quantize(args: argparse.Namespace) -> int:
    from edgeexport import ir as eir
    from edgeexport import passes, quantize
    from edgeexport.cli import emit_json
    from edgeexport.exporter import export, parse_input_spec
    from edgeexport.progress import StageProgress

    out = Path(args.output)
    if out.suffix != ".onnx":
        raise UsageError(f"{out}: the output of quantize is an .onnx file")
    as_json = getattr(args, "json", False)
    progress = StageProgress(not as_json, stages=("export", "passes", "quantize"))
    try:
        progress("export", args.model)
        result = export(args.model, input_specs=[parse_input_spec(s) for s in args.input_shape])
        if not args.no_optimize:
            progress("passes", "optimize")
            passes.optimize(result.model)
        progress("quantize", args.scheme)
        info = quantize.apply(result, args.scheme, args.calibration_data,
                              calibration_method=args.calibration_method,
                              max_error=args.max_error, preprocess=args.preprocess,
                              progress=progress.step("quantize"))
    finally:
        progress.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    eir.save(result.model, out)
    if args.report:
        eir.write_atomic(args.report, json.dumps(info, indent=2, default=str).encode())
    if as_json:
        emit_json("quantize", {"ok": True, "output": str(out), "quantization": info}, 0,
                  info.get("warnings", []))
    else:
        print(summary(out, info))
    return 0


def summary(out: Path, info: dict) -> str:
    size = info["size_bytes"]
    lines = [f"wrote {out}: {info['scheme']}, {size['before']:,} -> {size['after']:,} bytes "
             f"({100 * info['size_ratio']:.1f}%) in {info['seconds']:.1f} s"]
    if "calibration" in info:
        c = info["calibration"]
        lines.append(f"  calibration: {c['samples']} samples from {c['source']} ({c['method']})")
        vs = info.get("vs_float", {})
        lines.append(f"  vs float: cosine {vs.get('cosine')}, top-1 {vs.get('top1')}")
        for layer in info.get("layers_float", []):
            lines.append(f"  kept float: {layer['node']} ({layer['op']}): {layer['reason']}")
    for w in info.get("warnings", []):
        lines.append(f"  WARNING: {w}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m edgeexport.quantize.cli ...`: the subcommand on its own (same exit codes)."""
    from edgeexport.cli import _fail
    from edgeexport.errors import EdgeExportError

    parser = argparse.ArgumentParser(prog="edgeexport quantize")
    add_arguments(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        return cmd_quantize(args)
    except EdgeExportError as exc:
        _fail(str(exc), exc.exit_code, "quantize" if args.json else None)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
