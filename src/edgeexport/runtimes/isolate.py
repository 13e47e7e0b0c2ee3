"""Artifacts the user hands us (`run`, `validate`, `bench`): checked structurally, then loaded and
run once in a child process, so a native crash (a segfault in LiteRT or ncnn) is exit 2 naming
the file, never a silent death of the command. The child's stderr is kept for the message.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgeexport.errors import UsageError
from edgeexport.children import python_child

#: a load + one run of a small model takes seconds; a hang past this is the file's fault
TIMEOUT_S = float(os.environ.get("EDGEEXPORT_ISOLATE_TIMEOUT", "300"))


def declared_inputs(path: Path, fmt: str) -> dict[str, tuple[tuple[int | None, ...] | None,
                                                             str | None]]:
    """Check the artifact's structure (UsageError naming the file when it is corrupt) and return
    its inputs as name -> (shape with None for symbolic dims, numpy dtype name or None);
    empty when the format does not say (ncnn without its .io.json)."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise UsageError(f"{path}: the file is empty; pass an artifact written by edgeexport "
                         "convert")
    if fmt == "tflite":
        from edgeexport.delegates.tflite.verify import verify

        return {i.name: (i.shape, i.dtype) for i in verify(path)}
    if fmt == "ncnn":
        from edgeexport.delegates.vulkan.verify import verify as verify_ncnn
        from edgeexport.runtimes.ncnn import read_io

        param = path.with_suffix(".param")
        blobs = verify_ncnn(param)
        try:
            io = read_io(param)
            if io is None:  # a model from another tool: its Input blobs, shapes unknown
                return {b: (None, None) for b in blobs}
            return {i["name"]: (tuple(i["shape"]), None) for i in io["inputs"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{param.with_name(param.stem + '.io.json')}: unreadable "
                             f"({type(exc).__name__}); export the model again") from None
    if fmt == "onnx":
        return _onnx_inputs(path)
    return {}


def _onnx_inputs(path: Path) -> dict[str, tuple[tuple[int | None, ...], str | None]]:
    import onnx

    from edgeexport.ir import check_external_data

    check_external_data(path)  # first: onnx's checker would name the file it reaches for
    try:
        model = onnx.load_model(os.fspath(path), load_external_data=False)
        onnx.checker.check_model(model, full_check=False)
    except Exception as exc:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UsageError(f"{path}: not a valid ONNX model ({text}); pass an .onnx, .tflite, "
                         ".param or .mlpackage written by edgeexport") from None
    inits = {i.name for i in model.graph.initializer}
    out = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        t = vi.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                     for d in t.shape.dim)
        try:
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)).name
        except Exception:
            dtype = None
        out[vi.name] = (dims, dtype)
    return out


def check_feeds(feeds: dict[str, np.ndarray], files: dict[str, str],
                declared: dict[str, tuple[tuple[int | None, ...] | None, str | None]],
                artifact: Path) -> None:
    """Every declared input is fed, with its rank, dims and kind of dtype; `files` names the
    .npy each feed came from, for the message."""
    if not declared:
        return
    for name in feeds:
        if name not in declared:
            raise UsageError(f"{files.get(name, name)}: input '{name}' is not an input of "
                             f"{artifact.name} (its inputs: {', '.join(declared)}); use --input "
                             "NAME=FILE.npy with one of those names")
    for name, (shape, dtype) in declared.items():
        if name not in feeds:
            raise UsageError(f"{artifact}: input '{name}' is not given; pass --input "
                             f"{name}=FILE.npy" + (f" (shape {list(shape)})" if shape else ""))
        arr, where = feeds[name], files.get(name, name)
        if arr.dtype.kind not in "biuf":
            raise UsageError(f"{where}: dtype {arr.dtype} cannot feed input '{name}' "
                             f"({dtype or 'numeric'}); save a numeric array")
        if dtype is not None and (np.dtype(dtype).kind == "f") != (arr.dtype.kind == "f"):
            raise UsageError(f"{where}: dtype {arr.dtype} does not fit input '{name}' ({dtype}); "
                             f"save the array as {dtype}")
        if shape is None:
            continue
        dims = list(shape)
        if len(arr.shape) != len(dims) or any(d is not None and d != g
                                              for d, g in zip(dims, arr.shape)):
            want = ",".join("?" if d is None else str(d) for d in dims)
            raise UsageError(f"{where}: shape {list(arr.shape)} does not fit input '{name}' "
                             f"[{want}] of {artifact.name}; save an array of that shape")


def run_isolated(runtime: str, path: Path, feeds: dict[str, np.ndarray],
                 options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Load PATH with RUNTIME and run FEEDS once in a child process: (outputs, session facts).
    A crash, a hang or the runtime's refusal there is a UsageError naming the file."""
    with tempfile.TemporaryDirectory(prefix="edgeexport-isolate-") as tmp:
        fin, fout = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        np.savez(fin, **{f"in{i}": v for i, v in enumerate(feeds.values())})
        request = {"runtime": runtime, "path": os.fspath(Path(path).resolve()),
                   "names": list(feeds), "in": fin, "out": fout, "options": options or {}}
        code, out, err = python_child(["-m", "edgeexport.runtimes.isolate", json.dumps(request)],
                                      TIMEOUT_S)
        if code is None:
            raise UsageError(f"{path}: {runtime} did not finish loading and running it in "
                             f"{TIMEOUT_S:.0f} s; the file is corrupt or far too large")
        if code < 0:
            name = signal.Signals(-code).name
            raise UsageError(f"{path}: {runtime} crashed ({name}) loading or running it; the "
                             "file is corrupt or uses something this runtime cannot execute: "
                             "convert the model again")
        if code != 0:
            lines = [ln for ln in err.strip().splitlines() if ln.strip()]
            why = lines[-1] if lines else f"exit {code}"
            raise UsageError(f"{path}: {runtime} cannot load or run it: {why[:300]}")
        facts = json.loads(out.strip().splitlines()[-1])
        with np.load(fout) as data:
            outputs = {n: data[f"out{i}"] for i, n in enumerate(facts["outputs"])}
    return outputs, facts


def _child(request: dict[str, Any]) -> int:
    """In the child: load, run, write the outputs. Errors become one line and exit 2."""
    from edgeexport import runtimes
    from edgeexport.runtimes.base import native_stderr

    log: list[str] = []
    try:
        with np.load(request["in"]) as data:
            feeds = {n: data[f"in{i}"] for i, n in enumerate(request["names"])}
        with native_stderr(log):
            session = runtimes.get(request["runtime"]).load(Path(request["path"]),
                                                            **request["options"])
            outputs = session.run(feeds)
    except Exception as exc:  # the runtime refused the file: say why, in its own words
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        native = " ".join(" ".join(log).split())[:200]
        print(f"{text}" + (f" ({native})" if native and native not in text else ""),
              file=sys.stderr)
        return 2
    names = list(outputs)
    np.savez(request["out"], **{f"out{i}": outputs[n] for i, n in enumerate(names)})
    print(json.dumps({"outputs": names, "device": session.device,
                      "details": getattr(session, "details", {})}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(_child(json.loads(sys.argv[1])))
