"""The reference kernels: one numpy function per edge-profile op, registered with its claims.

A kernel is `fn(*inputs, **attributes)`; its keyword-only parameters *are* the attributes it
understands (defaults = ONNX defaults at the IR opset) and `dtypes=` / `unsupported=` say what it
does not take, so a test runner can tell which ONNX conformance cases it claims.

    @kernel("LeakyRelu", dtypes={"T": FLOATS})
    def leaky_relu(x, *, alpha=0.01): ...

Fusion: an elementwise op with an `inplace` form (Relu, Clip) can run inside a kernel
registered with `fuses=True` (Conv): as its epilogue, applied to its fresh output before it
returns it, or as its prologue, applied to its first input while the kernel copies that input
anyway (where `takes_prologue` says so). The interpreter decides when either is safe.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import ml_dtypes
import numpy as np
import onnx_ir as ir

from edgeexport import profile
from edgeexport.errors import ConversionError, UnsupportedOpError

# Dtype sets that claims are written in. STANDARD is what a kernel claims for a type variable it
# does not mention: numpy's own types. Narrow types (bfloat16, float8, int4) are claimed explicitly.
BOOL = frozenset({np.dtype(np.bool_)})
SIGNED = frozenset(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64))
UNSIGNED = frozenset(np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64))
INTS = SIGNED | UNSIGNED
FLOATS = frozenset(np.dtype(t) for t in (np.float16, np.float32, np.float64))
NUMERIC = INTS | FLOATS
STANDARD = NUMERIC | BOOL
BFLOAT16 = frozenset({np.dtype(ml_dtypes.bfloat16)})
FLOAT8 = frozenset(np.dtype(t) for t in (ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e4m3fnuz,
                                         ml_dtypes.float8_e5m2, ml_dtypes.float8_e5m2fnuz))
INT4 = frozenset(np.dtype(t) for t in (ml_dtypes.int4, ml_dtypes.uint4))
#: Everything a kernel may claim; the runtime refuses dtypes outside it.
ALL = STANDARD | BFLOAT16 | FLOAT8 | INT4

#: Parameter through which a kernel asks for the number of outputs the node declares.
N_OUTPUTS = "n_outputs"

#: `unsupported(attributes, inputs)` -> reason or None; inputs are arrays, or None when unknown.
Check = Callable[[Mapping[str, Any], Sequence["np.ndarray | None"]], "str | None"]
#: `prepare(attributes, constant_inputs)` -> a faster `run(*inputs)`, or None to use the plain fn.
#: A kernel registered with fuses=True also gets an epilogue and a prologue (see Kernel.bind).
Prepare = Callable[..., "Callable[..., Any] | None"]
#: `epilogue(y)` overwrites y with an elementwise op's result on it (e.g. Relu in place).
Epilogue = Callable[[np.ndarray], object]
#: `prologue(x, out)` writes an elementwise op's result on x into out (of x's shape and dtype).
Prologue = Callable[[np.ndarray, np.ndarray], object]
#: `inplace(attributes, constant_inputs)` -> the op on its first input as a Prologue (which
#: may write into its own input), or None. Only called when every other input is constant.
Inplace = Callable[[Mapping[str, Any], Sequence["np.ndarray | None"]], "Prologue | None"]
#: `takes_prologue(attributes, constant_inputs)`: whether the kernel applies a prologue for free.
TakesPrologue = Callable[[Mapping[str, Any], Sequence["np.ndarray | None"]], bool]


def node_attributes(node: ir.Node) -> dict[str, Any]:
    """A node's attributes as the plain Python / numpy values kernels take (by name)."""
    return {name: _attribute(attr, node) for name, attr in node.attributes.items()}


def _attribute(attr: ir.Attr, node: ir.Node) -> Any:
    kind = attr.type
    if attr.is_ref():
        raise ConversionError(f"node '{node.name}' ({node.op_type}): attribute {attr.name} refers "
                              "to a function attribute; the reference runs only plain graphs")
    if kind == ir.AttributeType.INT:
        return int(attr.as_int())
    if kind == ir.AttributeType.FLOAT:
        return float(attr.as_float())
    if kind == ir.AttributeType.STRING:
        return attr.as_string()
    if kind == ir.AttributeType.INTS:
        return [int(v) for v in attr.as_ints()]
    if kind == ir.AttributeType.FLOATS:
        return [float(v) for v in attr.as_floats()]
    if kind == ir.AttributeType.STRINGS:
        return list(attr.as_strings())
    if kind == ir.AttributeType.TENSOR:
        return attr.as_tensor().numpy()
    raise UnsupportedOpError(node.op_type, node.name,
                             reason=f"attribute {attr.name} of type {kind.name} is not understood "
                                    "by the reference runtime")


class Unsupported(Exception):
    """Raised by a kernel for an input it does not claim (the runtime names the node)."""


@dataclass(frozen=True)
class Kernel:
    """An op's numpy definition plus what it claims to support."""

    op: str
    fn: Callable[..., Any]
    #: attribute name -> default, read from fn's keyword-only parameters
    attributes: Mapping[str, Any]
    #: ONNX type variable (as in the op schema, e.g. "T", "T1") -> dtypes claimed
    dtypes: Mapping[str, frozenset[np.dtype]]
    unsupported: Check | None
    prepare: Prepare | None
    wants_n_outputs: bool
    #: returns a fresh array that an epilogue may overwrite; bind takes an epilogue and a prologue
    fuses: bool = False
    inplace: Inplace | None = None
    takes_prologue: TakesPrologue | None = None

    def __call__(self, *inputs: Any, **attributes: Any) -> Any:
        return self.fn(*inputs, **attributes)

    def claims_dtype(self, type_var: str, dtype: np.dtype) -> bool:
        return np.dtype(dtype) in self.dtypes.get(type_var, STANDARD)

    def why_not(self, attributes: Mapping[str, Any],
                inputs: Sequence[np.ndarray | None] = ()) -> str | None:
        """None when the kernel claims these attributes (and known inputs), else why not."""
        unknown = sorted(set(attributes) - set(self.attributes))
        if unknown:
            return f"attribute(s) {', '.join(unknown)} not understood"
        return self.unsupported(attributes, inputs) if self.unsupported is not None else None

    def bind(self, attributes: Mapping[str, Any], constants: Sequence[np.ndarray | None],
             n_outputs: int, epilogue: Epilogue | None = None,
             prologue: Prologue | None = None) -> Callable[..., Any]:
        """A `run(*inputs)` with attributes applied (and constants pre-processed if it can).
        With a prologue (fuses=True only), run computes on prologue(first input); with an
        epilogue, it applies it to the output before returning."""
        if (epilogue is not None or prologue is not None) and not self.fuses:
            raise ValueError(f"{self.op} does not fuse elementwise ops")
        kwargs = dict(attributes)
        if self.wants_n_outputs:
            kwargs[N_OUTPUTS] = n_outputs
        if self.prepare is not None:
            fast = self.prepare(kwargs, constants, epilogue, prologue) if self.fuses \
                else self.prepare(kwargs, constants)
            if fast is not None:
                return fast
        fn = self.fn
        if epilogue is not None or prologue is not None:
            def fused(x: np.ndarray, *inputs: Any) -> Any:
                if prologue is not None:
                    x, given = np.empty_like(x), x
                    prologue(given, x)
                y = fn(x, *inputs, **kwargs)
                if epilogue is not None:
                    epilogue(y)
                return y
            return fused
        return lambda *inputs: fn(*inputs, **kwargs)


#: op name -> kernel. The reference semantics of every op in the edge profile.
KERNELS: dict[str, Kernel] = {}


def kernel(*ops: str, dtypes: Mapping[str, frozenset[np.dtype]] | None = None,
           unsupported: Check | None = None,
           prepare: Prepare | None = None, fuses: bool = False, inplace: Inplace | None = None,
           takes_prologue: TakesPrologue | None = None,
           ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `fn` as the reference kernel of `ops` (each must be in the edge profile, once)."""
    if not ops:
        raise ValueError("register at least one op")

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        params = inspect.signature(fn).parameters.values()
        attrs = {p.name: p.default for p in params
                 if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != N_OUTPUTS}
        wants_n = any(p.name == N_OUTPUTS for p in params)
        for op in ops:
            spec = profile.spec(op)
            if spec is None:
                raise ValueError(f"reference kernel for {op}: not in the edge profile")
            if op in KERNELS:
                prev = KERNELS[op].fn
                raise ValueError(f"reference kernel for {op} registered twice "
                                 f"({prev.__module__}.{prev.__qualname__} and "
                                 f"{fn.__module__}.{fn.__qualname__})")
            extra = sorted(set(attrs) - spec.attributes)
            if extra:
                raise ValueError(f"reference kernel for {op} takes attribute(s) {extra} that the "
                                 "edge profile does not list")
            for var, claimed in (dtypes or {}).items():
                if not claimed <= ALL:
                    raise ValueError(f"reference kernel for {op} claims unknown dtypes for {var}")
            KERNELS[op] = Kernel(op, fn, attrs, dict(dtypes or {}), unsupported, prepare, wants_n,
                                 fuses, inplace, takes_prologue)
        return fn

    return register


def normalize_axis(axis: int, rank: int) -> int:
    """ONNX axes may be negative (counted from the end)."""
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"axis {axis} out of range for rank {rank}")
    return axis % rank if rank else 0


# The family modules register themselves on import; order does not matter.
from edgeexport.runtimes.reference.kernels import (  # noqa: E402,F401
    activation,
    conv,
    elementwise,
    linear,
    logic,
    misc,
    norm,
    pool,
    quant,
    reduce,
    resize,
    shape,
)

__all__ = ["KERNELS", "Epilogue", "Kernel", "Prologue", "Unsupported", "kernel",
           "normalize_axis"]
