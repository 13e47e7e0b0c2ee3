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
    inits = {i.name for i in model.graph.initializer}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and not 0 < d.dim_value <= MAX_ELEMENTS:
                raise UsageError(
                    f"{source}: input '{vi.name}' declares dimension {d.dim_value}; dimensions "
                    "must be positive (or symbolic) and sane: fix the model's input shape or "
                    "pass --input-shape")


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


#: set in the probe's child so that it does not probe again
_PROBE_ENV = "EDGEEXPORT_CAPTURE_PROBE"
PROBE_TIMEOUT_S = float(os.environ.get("EDGEEXPORT_PROBE_TIMEOUT", "900"))


def probe_capture(source: str, specs: list[Any]) -> None:
    """Capture a TorchScript archive once in a child process before doing it here: PyTorch's
    TorchScript-to-ExportedProgram converter segfaults on some corrupt archives that load fine
    (found by fuzzing), and a crash must be exit 2 naming the file, not the end of the CLI."""
    from edgeexport.children import python_child

    if os.environ.get(_PROBE_ENV):
        return
    shapes = [f"{s.name}={','.join('?' if d is None else str(d) for d in s.shape)}:"
              f"{np.dtype(s.dtype).name}" for s in specs]
    os.environ[_PROBE_ENV] = "1"
    try:
        code, _, _ = python_child(["-m", "edgeexport.exporter.checks", source, *shapes],
                                  PROBE_TIMEOUT_S)
    finally:
        del os.environ[_PROBE_ENV]
    if code is not None and code < 0:
        raise UsageError(f"{source}: PyTorch crashed ({signal.Signals(-code).name}) capturing "
                         "this TorchScript archive: it is corrupt, or uses TorchScript the "
                         "converter cannot take; save the model again, preferably with "
                         "torch.export.save (.pt2)")


def _probe_main(argv: list[str]) -> int:
    """The probe's child: the same export, in-process; its errors are reported by the parent."""
    from edgeexport.exporter import export, parse_input_spec

    try:
        export(argv[0], input_specs=[parse_input_spec(s) for s in argv[1:]])
    except Exception:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_probe_main(sys.argv[1:]))
