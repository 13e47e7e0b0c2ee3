"""The `edgeexport` command line. Errors become one line on stderr and an exit code:
0 done (parity passed), 1 conversion failed, 2 bad usage or input, 3 converted but parity failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
import warnings
from typing import Any, Sequence

import edgeexport
from edgeexport._blas import prefer_avx512_kernels
from edgeexport.errors import EdgeExportError, UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARITY = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code is 2 as well; one line
        raise UsageError(f"{self.prog}: {message}")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON document for machines")
    p.add_argument("--debug", action="store_true", help="show tracebacks and library warnings")


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="TorchScript archive, pickled module, .pt2, .onnx or "
                                 "package.module:factory")
    p.add_argument("--input-shape", action="append", default=[], metavar="[NAME=]DIMS[:DTYPE]",
                   help="one per input, e.g. 1,3,224,224 or input_ids=1,128:int64")
    p.add_argument("--dynamic-batch", action="store_true", help="keep the batch axis symbolic")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow loading pickled nn.Module files and pickles inside a .pt2 "
                        "(unpickling runs code)")
    p.add_argument("--allow-cwd-import", action="store_true",
                   help="let package.module:factory import modules from the current directory")
    p.add_argument("--output-names", help="comma-separated names for the outputs")
    p.add_argument("--no-optimize", action="store_true", help="skip the optimization passes")


def build_parser() -> argparse.ArgumentParser:
    from edgeexport import profile
    from edgeexport.target_options import add_cli_options

    parser = _Parser(prog="edgeexport", description="PyTorch to edge artifacts, with parity.")
    parser.add_argument("--version", action="version", version=f"edgeexport {edgeexport.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("export", help="export a model to the ONNX edge IR")
    _model_args(p)
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    _common(p)

    p = sub.add_parser("quantize", help="quantize an .onnx model: int8 (QDQ), fp16 or dynamic-int8")
    from edgeexport.quantize.cli import add_arguments as quantize_arguments

    quantize_arguments(p)
    _common(p)

    p = sub.add_parser("convert", help="export, optimize, emit a target artifact, check parity")
    _model_args(p)
    p.add_argument("--target", required=True, choices=list(profile.TARGET_MODULES) + ["all"])
    p.add_argument("--quantize", choices=["int8", "fp16", "dynamic-int8"])
    p.add_argument("--calibration-data", help=".npy/.npz file or a folder of images")
    p.add_argument("--calibration-method", choices=["minmax", "percentile", "entropy", "mse"],
                   help="int8 range estimation (default mse)")
    p.add_argument("--max-error", help="accuracy budget vs float: cosine=0.995, top1=1 or "
                                       "rel=0.02; the most sensitive layers stay float")
    p.add_argument("--preprocess", help="how a picture becomes the model's image input: "
                                        "'imagenet' or 'resize=256,crop=224,mean=a/b/c,std=a/b/c,"
                                        "layout=nchw'; written to manifest.json for apps (also "
                                        "without calibration data) and used to read image folders "
                                        "given to --calibration-data and --samples")
    p.add_argument("--labels", metavar="FILE",
                   help="class names, one per line in class index order: copied into the bundle "
                        "as labels.txt (their count must equal the classifier output's size)")
    p.add_argument("--precision", choices=["fp32", "fp16"],
                   help="float precision of the artifact (default: the target's own)")
    p.add_argument("--samples", help="extra inputs to check parity on: .npy (one input), .npz "
                                      "(one array per input name) or an image folder; samples "
                                      "stacked on a new leading axis or along a batch axis of 1")
    p.add_argument("-o", "--output", required=True, help="bundle folder to write")
    _common(p)
    add_cli_options(p, list(profile.TARGET_MODULES))

    p = sub.add_parser("validate", help="re-run parity for a bundle on every available runtime")
    p.add_argument("bundle")
    p.add_argument("--per-layer", action="store_true", help="name the first layer out of tolerance")
    _common(p)

    p = sub.add_parser("inspect", help="coverage of a model on a target, before converting")
    _model_args(p)
    p.add_argument("--target", required=True, choices=list(profile.TARGET_MODULES))
    p.add_argument("--precision", choices=["fp32", "fp16"])
    _common(p)
    add_cli_options(p, list(profile.TARGET_MODULES))

    p = sub.add_parser("run", help="run an artifact on inputs")
    p.add_argument("artifact")
    p.add_argument("--input", action="append", default=[], metavar="[NAME=]FILE.npy",
                   help=".npy per input (or one .npz with arrays by input name)")
    p.add_argument("--runtime", help="runtime name (default: the first that can run it)")
    p.add_argument("-o", "--output", help=".npz to write the outputs to")
    _common(p)

    p = sub.add_parser("bench", help="latency of a bundle's artifact on every available runtime")
    p.add_argument("bundle")
    p.add_argument("--runs", type=int, default=20, help="timed runs per runtime (after 2 warm-up)")
    _common(p)

    p = sub.add_parser("app", help="write an Android or iOS sample app project that embeds a "
                                   "bundle and re-checks its parity on the phone")
    p.add_argument("platform", choices=["android", "ios"])
    p.add_argument("bundle", help="bundle folder written by edgeexport convert")
    p.add_argument("-o", "--output", required=True, help="new (or empty) folder for the project")
    p.add_argument("--name", help="app name (default: from the manifest's source model)")
    p.add_argument("--preprocess", help="image preprocessing when the manifest has none: "
                                        "'imagenet' or 'resize=256,crop=224,mean=a/b/c,std=a/b/c,"
                                        "layout=nchw'")
    p.add_argument("--labels", help="class names, one a line (default: the manifest's labels)")
    _common(p)

    p = sub.add_parser("targets", help="the targets and the op support matrix")
    p.add_argument("--ops", action="store_true", help="print the full op support matrix")
    _common(p)
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Every target's options are flags of convert and inspect (from the dataclasses in
    edgeexport.target_options, no delegate imported); a flag that the chosen target does not
    take is refused by the command (target_options.check_cli_targets)."""
    return build_parser().parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    prefer_avx512_kernels()  # before anything imports numpy
    debug = "--debug" in argv
    as_json = "--json" in argv
    if not debug:
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        args = parse_args(argv)
        from edgeexport import commands

        return getattr(commands, "cmd_" + args.command)(args)
    except EdgeExportError as exc:
        if debug:
            traceback.print_exc()
        _fail(str(exc), exc.exit_code, as_json)
        return exc.exit_code
    except BrokenPipeError:  # `edgeexport ... | head`: the reader left, nothing is wrong here
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except KeyboardInterrupt:
        _fail("interrupted", 130, as_json)
        return 130
    except Exception as exc:  # a bug of ours: say so in one line, traceback with --debug
        if debug:
            traceback.print_exc()
        msg = str(exc).strip().splitlines()
        _fail(f"internal error: {type(exc).__name__}: {msg[0] if msg else ''} "
              "(rerun with --debug for the traceback)", EXIT_FAILED, as_json)
        return EXIT_FAILED


def _drop_cwd_from_path() -> None:
    """`python -m edgeexport.cli` puts the current directory first on sys.path (the console
    script does not); a stray onnxruntime.py or torch.py there would then be imported instead
    of the real package. Only --allow-cwd-import puts it back, for package.module:factory."""
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]


def _fail(message: str, code: int, as_json: bool) -> None:
    print(f"edgeexport: error: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"ok": False, "exit_code": code, "error": message}))


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


if __name__ == "__main__":
    _drop_cwd_from_path()
    sys.exit(main())
