"""The state of one lowering: FX nodes already lowered, the IR nodes and initializers made so far,
and small builders (constants, typed scalars, ops named after the FX node they come from).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx_ir as ir


class NotLowerable(Exception):
    """The direct lowering cannot take this program (the exporter then uses torch.onnx)."""


_NP_FROM_TORCH = {
    "torch.float32": np.float32, "torch.float16": np.float16, "torch.float64": np.float64,
    "torch.int64": np.int64, "torch.int32": np.int32, "torch.int16": np.int16,
    "torch.int8": np.int8, "torch.uint8": np.uint8, "torch.bool": np.bool_,
}


def np_dtype(torch_dtype: Any) -> np.dtype:
    try:
        return np.dtype(_NP_FROM_TORCH[str(torch_dtype)])
    except KeyError:
        raise NotLowerable(f"dtype {torch_dtype}") from None


def per_dim(v: Any, n: int) -> list[int]:
    """An int or a per-dimension list (kernel size, stride, padding...) as n ints."""
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return [int(x) for x in (v * n if len(v) == 1 else v)]


def axis(dim: int, rank: int) -> int:
    """A PyTorch dimension index (possibly negative) as a non-negative axis."""
    return dim + rank if dim < 0 else dim


def ir_dtype(torch_dtype: Any) -> ir.DataType:
    return ir.DataType.from_numpy(np_dtype(torch_dtype))


class Context:
    """Builds the IR graph while the FX graph is walked in order."""

    def __init__(self) -> None:
        self.nodes: list[ir.Node] = []
        self.initializers: dict[str, ir.Value] = {}
        #: FX node -> its IR value (a tuple for multi-output ops, a numpy array for constants
        #: that have not been needed as IR values yet)
        self.env: dict[Any, Any] = {}
        self.fx_node: Any = None  # the FX node being lowered
        #: placeholder -> state_dict key, the name its initializer takes
        self.const_names: dict[Any, str] = {}
        self._names: set[str] = set()
        self._namespace = ""
        self._count = 0

    # -- names and metadata -------------------------------------------------------------------

    def unique(self, base: str) -> str:
        name, k = base, 0
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def begin(self, fx_node: Any) -> None:
        self.fx_node = fx_node
        stack = fx_node.meta.get("nn_module_stack") or {}
        scopes = [f"{path}: {cls if isinstance(cls, str) else cls.__qualname__}"
                  for path, cls in stack.values()]
        self._namespace = "/".join(scopes + [f"{fx_node.name}: {fx_node.target}"])

    # -- reading FX arguments -----------------------------------------------------------------

    def value(self, arg: Any) -> ir.Value:
        """The IR value of an FX node argument (constants become initializers on first use)."""
        if arg not in self.env:
            raise NotLowerable(f"{arg} has no lowered value")
        got = self.env[arg]
        if isinstance(got, np.ndarray):
            got = self.const(got, self.const_names.get(arg, arg.name))
            self.env[arg] = got
        if not isinstance(got, ir.Value):
            raise NotLowerable(f"{arg} is not a single tensor")
        return got

    def constant(self, arg: Any) -> np.ndarray | None:
        """The array of an argument known at export time (parameters, folded constants)."""
        got = self.env.get(arg)
        if isinstance(got, np.ndarray):
            return got
        if isinstance(got, ir.Value) and got.const_value is not None:
            return got.const_value.numpy()
        return None

    @staticmethod
    def meta(arg: Any) -> Any:
        val = arg.meta.get("val")
        if val is None or not hasattr(val, "shape"):
            raise NotLowerable(f"{arg} has no tensor metadata")
        return val

    def shape(self, arg: Any) -> tuple[int, ...]:
        dims = self.meta(arg).shape
        if not all(isinstance(d, int) for d in dims):
            raise NotLowerable("symbolic shapes")
        return tuple(int(d) for d in dims)

    def rank(self, arg: Any) -> int:
        return len(self.meta(arg).shape)

    def dtype(self, arg: Any) -> np.dtype:
        return np_dtype(self.meta(arg).dtype)

    # -- making values ------------------------------------------------------------------------

    def const(self, array: Any, name: str | None = None) -> ir.Value:
        array = np.array(array, order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
        value = ir.Value(name=self.unique(name or "const"), shape=ir.Shape(array.shape),
                         type=ir.TensorType(ir.DataType.from_numpy(array.dtype)),
                         const_value=ir.tensor(array))
        self.initializers[value.name] = value
        return value

    def scalar(self, x: Any, dtype: np.dtype | type) -> ir.Value:
        return self.const(np.array(x, dtype=dtype), f"{self.fx_node.name}_scalar")

    def ints(self, values: Sequence[int]) -> ir.Value:
        return self.const(np.array(list(values), dtype=np.int64), f"{self.fx_node.name}_shape")

    def op(self, op_type: str, inputs: Sequence[ir.Value | None],
           attributes: dict[str, Any] | None = None, *, shape: Sequence[int] | None = None,
           dtype: np.dtype | type | None = None, final: bool = False,
           num_outputs: int = 1) -> ir.Value:
        """Append an IR node. `final` names the output after the FX node and takes its
        metadata; otherwise give `shape` and `dtype` (every IR value carries both)."""
        attrs = ir.convenience.convert_attributes(attributes or {})
        node = ir.Node("", op_type, list(inputs), attrs, num_outputs=num_outputs,
                       name=self.unique(f"node_{op_type}_{self._count}"),
                       metadata_props={"namespace": self._namespace})
        self._count += 1
        fx = self.fx_node
        for i, out in enumerate(node.outputs):
            if final and num_outputs == 1:
                out.name = self.unique(fx.name)
                out.shape = ir.Shape(self.shape(fx))
                out.type = ir.TensorType(ir.DataType.from_numpy(self.dtype(fx)))
            else:
                out.name = self.unique(f"{fx.name}_{op_type.lower()}")
                if shape is not None:
                    out.shape = ir.Shape(list(shape) if num_outputs == 1 else list(shape[i]))
                if dtype is not None:
                    out.type = ir.TensorType(ir.DataType.from_numpy(np.dtype(dtype)))
        self.nodes.append(node)
        return node.outputs[0] if num_outputs == 1 else node.outputs

    def cast(self, value: ir.Value, dtype: np.dtype | type) -> ir.Value:
        dtype = np.dtype(dtype)
        if value.dtype == ir.DataType.from_numpy(dtype):
            return value
        if value.const_value is not None:
            return self.const(value.const_value.numpy().astype(dtype), f"{value.name}_cast")
        return self.op("Cast", [value], {"to": ir.DataType.from_numpy(dtype)},
                       shape=value.shape, dtype=dtype)
