"""mil-interpreter: executes the ML Program inside an .mlpackage op by op with numpy, so CoreML
artifacts get real parity numbers on Linux, where CoreML itself cannot run.

The package's spec is read back into a MIL Program with coremltools' own proto loader. Each op
then runs by coremltools' value inference (the numpy definition that ships with the op), or, where
the op has none or it is too slow, by a kernel of the interpreter's own (mil_kernels), written from
the MIL op definition; never by the reference runtime's, which it is compared with. Every result
is rounded to the dtype the program declares for it, so fp16 programs compute in fp16 between ops
the way they state.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgeexport.runtimes.base import Runtime, Session
from edgeexport.runtimes.mil_kernels import KERNELS

logging.getLogger("coremltools").setLevel(logging.ERROR)  # macOS-only proxies it cannot load

WEIGHTS = Path("Data/com.apple.CoreML/weights")


# -- coremltools' value inference, fed with runtime values instead of compile-time ones ----------

class _Value:
    """Stands in for a MIL Var inside value_inference: `.val` is the runtime array."""

    def __init__(self, var: Any, val: Any) -> None:
        if isinstance(val, np.ndarray) and val.ndim == 0:
            val = val[()]  # compile-time scalars are numpy scalars, not 0-d arrays
        self._var, self.val, self.sym_val = var, val, val

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.val))

    @property
    def rank(self) -> int:
        return np.ndim(self.val)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._var, name)


def _bound(op: Any, values: dict[str, Any]) -> Any:
    """A shallow copy of the op whose input vars answer with runtime values (see _Value): an
    instance of the op's own class, so its methods, properties and `super()` calls (iOS 16's
    topk calls iOS 15's) all run as coremltools wrote them."""
    bound = copy.copy(op)
    inputs = {}
    for name, var in op._input_vars.items():
        val = values.get(name)
        if isinstance(var, (tuple, list)):
            inputs[name] = tuple(_Value(v, _compile_time(v, x)) for v, x in zip(var, val))
        else:
            inputs[name] = None if var is None else _Value(var, _compile_time(var, val))
        bound.__dict__[name] = inputs[name]
    bound._input_vars = inputs
    return bound


def _compile_time(var: Any, runtime: Any) -> Any:
    """Parameters known when the program was built keep coremltools' own representation."""
    known = var.val
    return runtime if known is None else known


def _value_inference(op: Any, values: dict[str, Any]) -> Any:
    return type(op).value_inference(_bound(op, values))


# -- the program --------------------------------------------------------------------------------

def check_package_items(package: Path) -> None:
    """Refuse (UsageError) an .mlpackage whose Manifest.json names an item outside the package:
    coremltools follows `itemInfoEntries[].path` (relative to Data/) wherever it leads, `..`
    included. The weight blobs are safe: the MIL loader keeps only their base name."""
    from edgeexport.errors import UsageError
    from edgeexport.paths import resolve_inside

    index = Path(package) / "Manifest.json"
    try:
        entries = json.loads(index.read_text())["itemInfoEntries"].values()
        paths = [e["path"] for e in entries]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return  # not a readable index: coremltools refuses the package in its own words
    resolve_inside(package, "Manifest.json", index, "package index")
    for rel in paths:
        resolve_inside(package, f"Data/{rel}" if isinstance(rel, str) else rel, index,
                       "package item")


class MilProgram:
    """The main function of an .mlpackage's ML Program, ready to execute."""

    def __init__(self, path: Path) -> None:
        import coremltools as ct
        from coremltools.converters.mil.frontend.milproto.load import load

        check_package_items(path)
        self.path = Path(path)
        self.spec = ct.utils.load_spec(str(self.path))
        if self.spec.WhichOneof("Type") != "mlProgram":
            raise ValueError(f"{path}: not an ML Program (model type "
                             f"{self.spec.WhichOneof('Type')})")
        self.program = load(self.spec, self.spec.specificationVersion,
                            str(self.path / WEIGHTS))
        self.function = self.program.functions["main"]
        meta = dict(self.spec.description.metadata.userDefined)
        #: MIL name -> IR name for inputs and outputs (identity when absent)
        self.io_names: dict[str, str] = json.loads(meta.get("com.edgeexport.io_names", "{}"))
        self.metadata = meta
        self.opset = self.function.opset_version
        self.ops = list(self.function.operations)

    def ir_name(self, mil: str) -> str:
        return self.io_names.get(mil, mil)

    def execute(self, feeds: dict[str, np.ndarray], keep_all: bool = False
                ) -> dict[str, np.ndarray]:
        from coremltools.converters.mil.mil import types

        env: dict[str, Any] = {}
        by_ir = {self.ir_name(n): n for n in self.function.inputs}
        for ir_name, mil in by_ir.items():
            if ir_name not in feeds and mil not in feeds:
                raise ValueError(f"missing input '{ir_name}'")
            var = self.function.inputs[mil]
            want = types.nptype_from_builtin(var.dtype)
            env[mil] = np.asarray(feeds.get(ir_name, feeds.get(mil))).astype(want)
        # one BLAS thread: a GEMM's float sums depend on OpenBLAS's thread count (in a W8A8
        # program one differing last bit moves a value across a rounding step that later layers
        # amplify), and on a loaded machine extra threads cost more than they save
        with _one_blas_thread():
            for op in self.ops:
                outs = self._run_op(op, env)
                for var, val in zip(op.outputs, outs):
                    env[var.name] = _as_declared(var, val)
        if keep_all:
            return {self.ir_name(k.removesuffix("__pre")): v for k, v in env.items()}
        return {self.ir_name(v.name): env[v.name] for v in self.function.outputs}

    def _run_op(self, op: Any, env: dict[str, Any]) -> list[Any]:
        if op.op_type == "const" or (op.op_type.startswith("constexpr_")
                                    and op.op_type not in KERNELS):
            return [op.outputs[0].val]
        values = {}
        for name, var in op._input_vars.items():
            if var is None:
                values[name] = None
            elif isinstance(var, (tuple, list)):
                values[name] = tuple(_lookup(v, env) for v in var)
            else:
                values[name] = _lookup(var, env)
        kernel = KERNELS.get(op.op_type)
        if kernel is not None:
            return kernel(op, values)
        from coremltools.converters.mil.mil.operation import Operation

        if type(op).value_inference is Operation.value_inference:
            raise NotImplementedError(f"mil-interpreter: op '{op.op_type}' ({op.name}) has no "
                                      "value inference in coremltools and no kernel here")
        out = _value_inference(op, values)
        return list(out) if isinstance(out, (tuple, list)) else [out]


_blas: Any = None


def _one_blas_thread() -> Any:
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController().select(user_api="blas")
    return _blas.limit(limits=1)


def _lookup(var: Any, env: dict[str, Any]) -> Any:
    if var.name in env:
        return env[var.name]
    if var.val is None:
        raise KeyError(f"mil-interpreter: value '{var.name}' is used before it is produced")
    return var.val  # an op attribute or a const outside the op list


def _as_declared(var: Any, val: Any) -> Any:
    """Round a result to the dtype the program declares for it (fp16 stays fp16)."""
    from coremltools.converters.mil.mil import types

    if not types.is_tensor(var.sym_type) and not types.is_scalar(var.sym_type):
        return val
    want = np.dtype(types.nptype_from_builtin(var.dtype))
    arr = np.asarray(val)
    if arr.dtype != want:
        arr = arr.astype(want)
    if types.is_tensor(var.sym_type) and arr.ndim != len(var.shape):
        arr = arr.reshape(var.shape)  # value inference can return a scalar for a rank-1 shape
    return arr


class MilSession(Session):
    def __init__(self, path: Path) -> None:
        import coremltools as ct

        self.program = MilProgram(path)
        self.device = "cpu"
        opset = getattr(self.program.opset, "name", str(self.program.opset))
        self.details = {"coremltools": ct.__version__, "opset": opset,
                        "ops": len(self.program.ops), "executes": "MIL program (numpy)",
                        "compute_units": self.program.metadata.get(
                            "com.edgeexport.compute_units")}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.program.execute(feeds)

    def run_all(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.program.execute(feeds, keep_all=True).items()
                if isinstance(v, np.ndarray)}


class MilInterpreterRuntime(Runtime):
    name = "mil-interpreter"
    formats = ("mlpackage",)

    def unavailable_reason(self) -> str | None:
        try:
            import coremltools  # noqa: F401
            from coremltools.converters.mil.frontend.milproto import load  # noqa: F401
        except ImportError as exc:
            return f"coremltools is not installed ({exc}); pip install coremltools"
        return None

    def load(self, path: Path, **options: Any) -> Session:
        return MilSession(Path(path))


__all__ = ["KERNELS", "MilInterpreterRuntime", "MilProgram", "MilSession",
           "check_package_items"]
