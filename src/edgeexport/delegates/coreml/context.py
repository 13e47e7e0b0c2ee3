"""The coreml op registry and the emission context that op emitters share: IR values -> MIL vars,
constants in the program's float precision, names that MIL accepts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport import ir as eir
from edgeexport.delegates.registry import OpRegistry, all_checks  # noqa: F401 (ops use it)
from edgeexport.errors import ConversionError



class CoreMLRegistry(OpRegistry):
    """The op registry, plus why each edge-profile op left unmapped cannot be expressed in MIL
    (the reason users see in `inspect` and report.json instead of a bare "no mapping")."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.unmapped: dict[str, str] = {}

    def not_mapped(self, op_type: str, reason: str) -> None:
        from edgeexport import profile

        if profile.spec(op_type) is None or op_type in self or op_type in self.unmapped:
            raise ValueError(f"{self.target}: {op_type} is not an unmapped edge-profile op")
        self.unmapped[op_type] = reason

    def why_not(self, node: ir.Node, ctx: Any = None) -> str | None:
        if node.domain in ("", "ai.onnx") and node.op_type not in self \
                and node.op_type in self.unmapped:
            return f"{node.op_type} has no {self.target} mapping: {self.unmapped[node.op_type]}"
        return super().why_not(node, ctx)


#: The one op table of CoreML ML Programs; the metal target shares it (same artifact format).
REGISTRY = CoreMLRegistry("coreml")

_NAME_OK = re.compile(r"[^A-Za-z0-9_]")


def mil_name(name: str) -> str:
    """A name MIL keeps as it is (identifier characters, not starting with a digit)."""
    out = _NAME_OK.sub("_", name) or "v"
    return "v_" + out if out[0].isdigit() else out


@dataclass
class Options:
    """What an emission depends on (read from the CLI namespace by the target)."""

    ios: int = 16
    precision: str = "fp16"
    compute_units: str = "ALL"
    image_input: str | None = None
    image_scale: float = 1.0
    image_bias: tuple[float, ...] = ()
    color_layout: str = "RGB"


@dataclass
class EmitContext:
    """State of one IR -> MIL translation. `mb` is coremltools' MIL Builder."""

    mb: Any
    options: Options
    vars: dict[str, Any] = field(default_factory=dict)
    outputs: set[str] = field(default_factory=set)
    #: QuantizeLinear outputs emitted as their float input (activation QDQ before iOS 17)
    elided: set[str] = field(default_factory=set)

    @property
    def fp16(self) -> bool:
        return self.options.precision == "fp16"

    @property
    def ios(self) -> int:
        return self.options.ios

    @property
    def float_dtype(self) -> str:
        return "fp16" if self.fp16 else "fp32"

    def np_float(self) -> type:
        return np.float16 if self.fp16 else np.float32

    def scalar(self, value: float) -> np.floating:
        """A float parameter typed like the program's tensors (MIL rejects fp32 beside fp16)."""
        return self.np_float()(value)

    # -- constants ------------------------------------------------------------------------------
    def const_array(self, value: ir.Value | None) -> np.ndarray | None:
        """The constant behind an IR value (initializer / Constant), or None."""
        if value is None:
            return None
        return eir.initializer_array(value)

    def to_mil_array(self, arr: np.ndarray) -> np.ndarray:
        """A constant as the program stores it: floats in the program precision, int64 as int32
        (ML Programs have no int64 tensors), everything else unchanged."""
        arr = np.asarray(arr)
        if arr.dtype.kind == "f":
            if self.fp16 and arr.size:
                # finite values past fp16's range saturate, as they do in fp32 arithmetic on
                # them: HF's masked_fill(mask, finfo(float32).min) must stay "very negative",
                # not become -inf (a fully masked softmax row would then be NaN)
                big = float(np.finfo(np.float16).max)
                arr = np.where(np.isfinite(arr), np.clip(arr, -big, big), arr)
            return arr.astype(self.np_float())
        if arr.dtype == np.int64 or arr.dtype == np.uint64:
            lo, hi = np.iinfo(np.int32).min, np.iinfo(np.int32).max
            # INT64_MAX as "to the end" (Slice) and friends: saturate rather than wrap
            arr = np.clip(arr, lo, hi) if arr.size else arr
            return arr.astype(np.int32)
        return arr

    def get(self, value: ir.Value | None) -> Any:
        """The MIL var of an IR value; a constant becomes a named `const` op on first use."""
        if value is None:
            return None
        name = value.name or ""
        if name in self.vars:
            return self.vars[name]
        arr = self.const_array(value)
        if arr is None:
            raise ConversionError(f"coreml: value '{name}' is used before it is produced")
        var = self.mb.const(val=self.to_mil_array(arr), name=mil_name(name))
        self.vars[name] = var
        return var

    def set(self, value: ir.Value, var: Any) -> None:
        self.vars[value.name or ""] = var

    def name(self, value: ir.Value) -> str:
        """The MIL name of the op producing `value`. Graph outputs get a suffix: the final
        cast/identity that the program returns carries the output's own name."""
        base = mil_name(value.name or "")
        return base + "__pre" if value.name in self.outputs else base

    def ints(self, value: ir.Value | None) -> list[int] | None:
        arr = self.const_array(value)
        return None if arr is None else [int(v) for v in np.asarray(arr).ravel()]

    def rank(self, value: ir.Value) -> int:
        if value.shape is None:
            raise ConversionError(f"coreml: rank of '{value.name}' is unknown")
        return len(value.shape)


def attr(node: ir.Node, name: str, default: Any = None) -> Any:
    """An attribute's Python value, or `default` when it is absent."""
    a = node.attributes.get(name)
    return default if a is None else a.value


def static_shape(value: ir.Value) -> list[int] | None:
    """The value's shape when every dimension is a known integer."""
    if value.shape is None or not all(isinstance(d, int) for d in value.shape):
        return None
    return [int(d) for d in value.shape]


def need_static_input_shape(node: ir.Node, ctx: Any) -> str | None:
    """A check for emitters that compute parameters from the input's shape."""
    x = node.inputs[0]
    if x is None or static_shape(x) is None:
        return f"{node.op_type} needs a static input shape for CoreML"
    return None


def float_input(node: ir.Node, ctx: Any) -> str | None:
    x = node.inputs[0]
    if x is not None and x.dtype is not None and x.dtype not in (
            ir.DataType.FLOAT, ir.DataType.FLOAT16):
        return f"{node.op_type} on {x.dtype.name} tensors has no CoreML mapping (float only)"
    return None




def const_inputs(*indices: int) -> Any:
    """A check that the inputs at `indices` (when present) are constants."""
    def check(node: ir.Node, ctx: Any) -> str | None:
        for i in indices:
            if i < len(node.inputs) and node.inputs[i] is not None \
                    and eir.initializer_array(node.inputs[i]) is None:
                return f"{node.op_type} input {i} must be a constant for CoreML"
        return None
    return check


def options_of(ctx: Any) -> Options:
    """Checks receive the target options (coverage) or an EmitContext (emission)."""
    if isinstance(ctx, EmitContext):
        return ctx.options
    from edgeexport.delegates.coreml.options import from_options

    return from_options(ctx)
