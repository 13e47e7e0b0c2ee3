"""Checks on what the user asks the exporter to build, before any memory is allocated for it:
input sizes (a bound before allocation) and the opsets, domains and input dims of ONNX files.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import numpy as np

from edgeexport.errors import UsageError

#: one input may hold at most this many elements (8 GiB of float32): far above any edge model,
#: far below what would take the machine down while sample inputs are drawn
MAX_ELEMENTS = 2**31
#: default-domain opsets an ONNX file may use (onnx's version converter goes up from 7)
MIN_OPSET = 7


def check_input_sizes(specs: list[Any], source: str) -> None:
    """Every input's element count (symbolic dims counted as 1) is below MAX_ELEMENTS."""
    for spec in specs:
        elements = 1
        for d in spec.shape:
            elements *= 1 if d is None else int(d)
        if elements > MAX_ELEMENTS:
            gib = elements * np.dtype(spec.dtype).itemsize / 2**30
            raise UsageError(f"{source}: input '{spec.name}' {spec.describe()} has {elements:,} "
                             f"elements ({gib:,.0f} GiB), more than the {MAX_ELEMENTS:,} "
                             "edgeexport allocates; check --input-shape")


def check_onnx(model: Any, source: str) -> None:
    """An ONNX ModelProto that the exporter can read: default-domain opset in range, every node
    in a domain and op onnx knows, input dims positive or symbolic and of sane size."""
    import onnx

    newest = onnx.defs.onnx_opset_version()
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    version = opsets.get("ai.onnx")
    if version is None or not MIN_OPSET <= version <= newest:
        raise UsageError(f"{source}: opset {version} of the default ONNX domain is outside what "
                         f"edgeexport reads ({MIN_OPSET} to {newest}); export the model again "
                         "with opset 20 (torch.onnx.export(..., opset_version=20))")
    for node in model.graph.node:
        domain = node.domain or "ai.onnx"
        if domain not in ("ai.onnx", "ai.onnx.ml"):
            raise UsageError(f"{source}: node '{node.name}' ({node.op_type}) is in the op domain "
                             f"'{node.domain}', which edgeexport does not read (only standard "
                             "ONNX ops); export the model without custom ops")
        if not onnx.defs.has(node.op_type, node.domain):
            raise UsageError(f"{source}: node '{node.name}' uses op {node.op_type}, which is not "
                             "a standard ONNX op; export the model without custom ops")
    bad = _invalid_text(model, "model")
    if bad:
        raise UsageError(f"{source}: the text field {bad} is not valid UTF-8, so the file is "
                         "corrupt; export the model again")
    try:  # a graph whose declared shapes or types contradict its ops fails deep in a lowering
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as exc:
        why = " ".join(str(exc).split())[:200]
        raise UsageError(f"{source}: the graph's shapes or types are inconsistent ({why}); "
                         "export the model again") from None
    try:  # what the exporter does next; its errors name a proto field, not a Python bug
        import onnx_ir

        onnx_ir.from_proto(model)
    except Exception as exc:
        root: BaseException = exc
        while root.__cause__ is not None:
            root = root.__cause__
        why = (str(root).strip().splitlines() or [type(root).__name__])[0][:160]
        raise UsageError(f"{source}: the ONNX graph is inconsistent ({why}); export the model "
                         "again") from None
    tensors = list(model.graph.initializer) + [a.t for n in model.graph.node
                                               for a in n.attribute if a.HasField("t")]
    for t in tensors:
        why = _tensor_problem(t)
        if why:
            raise UsageError(f"{source}: the constant '{t.name}' is corrupt ({why}); export the "
                             "model again")
    inits = {i.name for i in model.graph.initializer}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        if vi.type.tensor_type.elem_type not in _NP_TYPES:
            raise UsageError(f"{source}: input '{vi.name}' has element type "
                             f"{vi.type.tensor_type.elem_type}, not a numeric ONNX tensor type; "
                             "export the model again")
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and not 0 < d.dim_value <= MAX_ELEMENTS:
                raise UsageError(
                    f"{source}: input '{vi.name}' declares dimension {d.dim_value}; dimensions "
                    "must be positive (or symbolic) and sane: fix the model's input shape or "
                    "pass --input-shape")


def _np_types() -> dict[int, np.dtype]:
    import onnx

    out = {}
    for code in onnx.TensorProto.DataType.values():
        try:
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(code))
        except (KeyError, TypeError, ValueError):
            continue
        if dtype.kind in "biufc":
            out[code] = dtype
    return out


_NP_TYPES = _np_types()
#: TensorProto's typed value fields (raw_data aside)
_TYPED_FIELDS = ("float_data", "int32_data", "int64_data", "double_data", "uint64_data")


def _tensor_problem(t: Any) -> str | None:
    """Why an in-file tensor's values cannot have the shape it declares (None when they can)."""
    import onnx

    if t.data_location == onnx.TensorProto.EXTERNAL or t.data_type == onnx.TensorProto.STRING:
        return None
    if any(d < 0 for d in t.dims):
        return f"dims {list(t.dims)}"
    dtype = _NP_TYPES.get(t.data_type)
    if dtype is None:
        return f"element type {t.data_type}"
    count = int(np.prod(list(t.dims), dtype=object)) if t.dims else 1
    if t.HasField("raw_data"):
        if len(t.raw_data) != count * dtype.itemsize:
            return f"{len(t.raw_data)} bytes for {list(t.dims)} {dtype}"
        return None
    have = sum(len(getattr(t, f)) for f in _TYPED_FIELDS)
    want = count * (2 if dtype.kind == "c" else 1)
    if have != want and not (have == 0 and count == 0):
        return f"{have} values for {list(t.dims)} {dtype}"
    return None


def _invalid_text(msg: Any, where: str) -> str | None:
    """The first protobuf `string` field holding bytes that are not UTF-8 (python protobuf hands
    them over as bytes, and onnx_ir fails on them much later)."""
    from google.protobuf.descriptor import FieldDescriptor

    for field, value in msg.ListFields():
        repeated = getattr(field, "is_repeated", None)  # protobuf >= 5.28; `label` before
        if repeated is None:
            repeated = field.label == FieldDescriptor.LABEL_REPEATED
        values = value if repeated else [value]
        if field.type == FieldDescriptor.TYPE_STRING:
            if any(isinstance(v, bytes) for v in values):
                return f"{where}.{field.name}"
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            for i, v in enumerate(values):
                bad = _invalid_text(v, f"{where}.{field.name}" + (f"[{i}]" if repeated else ""))
                if bad:
                    return bad
    return None


PROBE_TIMEOUT_S = float(os.environ.get("EDGEEXPORT_PROBE_TIMEOUT", "600"))


def probe_capture(module: Any, args: tuple, source: str) -> None:
    """Run PyTorch's TorchScript-to-ExportedProgram converter once in a child process before
    doing it here: it segfaults on some corrupt archives that load fine (found by fuzzing), and a
    crash must be exit 2 naming the file, not the silent end of the CLI. A forked child shares
    the loaded module (no second import of torch), but fork is only safe while this process has
    one thread; otherwise a fresh interpreter loads the archive again. A child that raises or
    runs too long proves nothing, and the conversion then runs here as usual."""
    code = (_probe_fork(module, args) if hasattr(os, "fork") and _single_threaded()
            else _probe_exec(source, args))
    if code is not None and code < 0:
        raise UsageError(f"{source}: PyTorch crashed ({signal.Signals(-code).name}) capturing "
                         "this TorchScript archive: it is corrupt, or uses TorchScript the "
                         "converter cannot take; save the model again, preferably with "
                         "torch.export.save (.pt2)")


def _single_threaded() -> bool:
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _convert(module: Any, args: tuple) -> None:
    from torch._export.converter import TS2EPConverter

    TS2EPConverter(module, args).convert()


def _probe_fork(module: Any, args: tuple) -> int | None:
    import time

    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: quiet, default signals, dies with us; never returns
        try:
            import faulthandler

            faulthandler.disable()  # the parent reports the crash, in one line
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(s, signal.SIG_DFL)
            from edgeexport.children import _die_with_parent

            _die_with_parent()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            _convert(module, args)
        finally:
            os._exit(0)
    try:
        deadline = time.monotonic() + PROBE_TIMEOUT_S
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None
            time.sleep(0.01)
    except BaseException:  # Ctrl-C, SIGTERM: the child goes too
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise


def _probe_exec(source: str, args: tuple) -> int | None:
    import tempfile

    from edgeexport.children import python_child

    with tempfile.TemporaryDirectory(prefix="edgeexport-probe-") as tmp:
        inputs = os.path.join(tmp, "inputs.npz")
        np.savez(inputs, *[a.numpy() for a in args])
        code, _, _ = python_child(["-m", "edgeexport.exporter.checks", source, inputs],
                                  PROBE_TIMEOUT_S)
    return code


def _probe_main(argv: list[str]) -> int:
    """The exec'd probe: load the archive and convert it; only a crash matters to the parent."""
    import torch

    try:
        with np.load(argv[1]) as data:
            args = tuple(torch.from_numpy(data[k]) for k in data.files)
        _convert(torch.jit.load(argv[0], map_location="cpu"), args)
    except Exception:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_probe_main(sys.argv[1:]))
