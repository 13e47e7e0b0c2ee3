"""The `edgeexport` command line. Errors become one line on stderr and an exit code:
0 done (parity passed), 1 conversion failed, 2 bad usage or input, 3 converted but parity failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
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


def _native_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--native", action="store_true",
                   help="also run the C++ runner (native/) on the bundle: *-native runtimes")


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
    from edgeexport.validate.parity import add_emulation_arguments

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
    p.add_argument("-o", "--output", required=True,
                   help="bundle folder to write: new or empty (--target all: one subfolder per "
                        "target); a folder of other files is refused, never replaced")
    p.add_argument("--force", action="store_true",
                   help="replace a previous bundle at -o (only a folder edgeexport wrote)")
    _native_arg(p)
    add_emulation_arguments(p)
    _common(p)
    add_cli_options(p, list(profile.TARGET_MODULES))

    p = sub.add_parser("validate", help="re-run parity for a bundle on every available runtime")
    p.add_argument("bundle")
    p.add_argument("--per-layer", action="store_true",
                   help="compare every intermediate tensor with the reference runtime: the worst "
                        "layers per runtime and the first out of tolerance")
    p.add_argument("--top", type=int, default=10, metavar="N",
                   help="with --per-layer: how many of the worst layers to print (default 10)")
    _native_arg(p)
    add_emulation_arguments(p)
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
    _native_arg(p)
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


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGINT, SIGHUP) arrived: unwinds like Ctrl-C, so staging folders are removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _on_signal(signum: int, frame: Any) -> None:
    from edgeexport.children import end_children

    for s in _SIGNALS:  # a second signal must not cut the cleanup short
        signal.signal(s, signal.SIG_IGN)
    end_children()  # qemu and isolated loads first: they hold files in the staging folder
    raise Terminated(signum)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    saved = {}
    with contextlib.suppress(ValueError):  # signal handlers only from the main thread
        saved = {s: signal.signal(s, _on_signal) for s in _SIGNALS}
    try:
        return _main(argv)
    finally:
        from edgeexport.children import end_children

        end_children()
        for s, handler in saved.items():
            signal.signal(s, handler)


_CRASH_LOG: Any = None


def _report_native_crashes() -> None:
    """A segfault in a native library prints Python's fault report on the real stderr, even
    while a runtime's own chatter is redirected (runtimes.base.native_stderr): a crash is never
    silent. Left alone when something (pytest) already enabled it."""
    global _CRASH_LOG
    import faulthandler

    if faulthandler.is_enabled():
        return
    with contextlib.suppress(OSError, ValueError):
        _CRASH_LOG = os.fdopen(os.dup(2), "w")
        faulthandler.enable(file=_CRASH_LOG)


def _main(argv: list[str]) -> int:
    prefer_avx512_kernels()  # before anything imports numpy
    _report_native_crashes()
    debug = "--debug" in argv
    as_json = _json_command(argv)
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
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        code = 128 + int(signum)
        _fail(f"interrupted ({signal.Signals(signum).name})", code, as_json)
        return code
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


#: version of the one JSON document every `--json` run prints (README "JSON output")
SCHEMA_VERSION = 1
#: result keys repeated at the top level, where documents before schema_version had them
_COMPAT_KEYS = ("out", "output", "bundle", "verdict")


def _json_command(argv: list[str]) -> str | None:
    """The subcommand of a `--json` run (None without --json): failures name it too."""
    if "--json" not in argv:
        return None
    return next((a for a in argv if not a.startswith("-")), "")


def _fail(message: str, code: int, json_command: str | None) -> None:
    """The one error line on stderr; with --json also the common document on stdout, with
    `ok` false, no `result` and the message under `error`."""
    print(f"edgeexport: error: {message}", file=sys.stderr)
    if json_command is not None:
        doc = json_document(json_command or None, None, code)
        doc["error"] = message
        print(json.dumps(doc, indent=2))


def json_document(command: str | None, result: Any, exit_code: int = EXIT_OK,
                  warnings: list[str] | None = None) -> dict[str, Any]:
    """The shape of every --json document: {schema_version, ok, command, exit_code, result,
    warnings} (+ the _COMPAT_KEYS of a dict result)."""
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "ok": exit_code == EXIT_OK,
                           "command": command, "exit_code": exit_code, "result": result,
                           "warnings": list(warnings or [])}
    if isinstance(result, dict):
        doc.update({k: result[k] for k in _COMPAT_KEYS if k in result})
    return doc


def emit_json(command: str, result: Any, exit_code: int = EXIT_OK,
              warnings: list[str] | None = None) -> int:
    """Print the command's one JSON document on stdout; returns `exit_code`."""
    print(json.dumps(json_document(command, result, exit_code, warnings), indent=2, default=str))
    return exit_code


if __name__ == "__main__":
    _drop_cwd_from_path()
    sys.exit(main())
