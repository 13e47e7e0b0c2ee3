"""The emission context of the Vulkan target: IR values -> ncnn blobs, with ncnn's layout made
explicit (no batch axis, at most 4 dims), layer naming, constants and Split insertion.

An ncnn blob holds the IR tensor's elements in the same order with some unit axes left out:
`Blob.kept` lists the IR axes the blob has, outermost first (for NCHW: (1, 2, 3) = ncnn CHW).
Changing which unit axes are kept is therefore always a plain ncnn Reshape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.vulkan.ncnn_format import Layer, ncnn_shape_params, sanitize
from edgeexport.delegates.vulkan.quant import folded
from edgeexport.errors import ConversionError, UsageError

MAX_DIMS = 4


#: ops whose output may have more axes than ncnn holds: the elements stay in some ncnn blob
#: in IR order (a "virtual" blob) until a later reshape or transpose makes them expressible
VIRTUAL_OK = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose"})


@dataclass(frozen=True)
class Blob:
    name: str
    #: IR axes present in the ncnn blob, outermost first; every left-out axis has size 1.
    #: None for a virtual blob: ncnn holds the elements in IR order with shape `raw`
    kept: tuple[int, ...] | None
    shape: tuple[int, ...]
    raw: tuple[int, ...] | None = None

    @property
    def ncnn_shape(self) -> tuple[int, ...]:
        if self.kept is None:
            return self.raw
        return tuple(self.shape[a] for a in self.kept)

    def axis(self, ir_axis: int) -> int:
        """The ncnn axis (outermost = 0) of an IR axis; the IR axis must be kept."""
        ir_axis = ir_axis % len(self.shape) if self.shape else 0
        if self.kept is None:
            raise ConversionError(f"blob {self.name} {list(self.shape)}: {expressible(self.shape)}")
        if ir_axis not in self.kept:
            raise ConversionError(f"axis {ir_axis} of blob {self.name} is not stored by ncnn")
        return self.kept.index(ir_axis)


def static_shape(value: ir.Value) -> tuple[int, ...]:
    """The value's shape as ints; ncnn models here are built for static shapes."""
    if value.shape is None:
        raise ConversionError(f"value '{value.name}' has no known shape; the vulkan target "
                              "needs static shapes (export with a fixed --input-shape)")
    dims = []
    for d in value.shape:
        if not isinstance(d, int):
            raise UsageError(f"value '{value.name}' has a dynamic dimension '{d}'; ncnn models "
                             "are emitted for static shapes: drop --dynamic-batch")
        dims.append(d)
    return tuple(dims)


def default_kept(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """Which IR axes an ncnn blob keeps by default: the batch axis goes, then other unit axes
    (outermost first) while more than 4 remain. None when the tensor cannot be expressed."""
    kept = list(range(len(shape)))
    if len(shape) > 1 and shape[0] == 1:
        kept.remove(0)
    for axis in list(kept):
        if len(kept) <= MAX_DIMS:
            break
        if shape[axis] == 1:
            kept.remove(axis)
    if len(kept) > MAX_DIMS:
        return None
    if not kept:  # a scalar or all-ones tensor: one element, as a 1-D blob
        kept = [len(shape) - 1] if shape else []
    return tuple(kept)


def expressible(shape: tuple[int, ...]) -> str | None:
    """None when ncnn can hold a tensor of this shape, else the reason."""
    if default_kept(shape) is None:
        return (f"shape {list(shape)} has more than {MAX_DIMS} non-unit axes besides the batch; "
                "ncnn blobs have at most 4 dimensions")
    return None


def const_array(value: ir.Value | None) -> np.ndarray | None:
    """The value's data when it is a constant (initializer or folded; also a Cast to float or a
    DequantizeLinear of one: quantized weights reach the emitters as float), else None."""
    return None if value is None else folded(value)


class EmitContext:
    """Collects ncnn layers while the op emitters walk the IR graph in order."""

    def __init__(self, model: ir.Model, fp16: bool) -> None:
        self.model, self.graph, self.fp16 = model, model.graph, fp16
        self.layers: list[Layer] = []
        self.blobs: dict[str, Blob] = {}
        self.absorbed: set[int] = set()
        self._names: set[str] = set()
        self._layer_names: set[str] = set()
        self.outputs = {v.name for v in self.graph.outputs}
        #: graph inputs that ncnn reads as int32 bits (Embed's ids) instead of float values
        self.int_inputs: set[str] = set()

    # ---- names -------------------------------------------------------------------------------
    def unique(self, base: str, layer: bool = False) -> str:
        pool = self._layer_names if layer else self._names
        name = sanitize(base)
        candidate, i = name, 1
        while candidate in pool:
            candidate = f"{name}_{i}"
            i += 1
        pool.add(candidate)
        return candidate

    # ---- values ------------------------------------------------------------------------------
    def blob(self, value: ir.Value) -> Blob:
        """The blob of a value; a constant is materialized once as a MemoryData layer."""
        if value.name in self.blobs:
            return self.blobs[value.name]
        data = const_array(value)
        if data is None:
            raise ConversionError(f"value '{value.name}' is used before it is produced")
        shape = tuple(int(d) for d in data.shape)
        kept = default_kept(shape)
        if kept is None:
            raise ConversionError(f"constant '{value.name}': {expressible(shape)}")
        blob = Blob(self.unique(value.name), kept, shape)
        self.memory_data(blob.name, data, blob.ncnn_shape)
        self.blobs[value.name] = blob
        return blob

    def memory_data(self, name: str, data: np.ndarray, ncnn_shape: tuple[int, ...],
                    featmask: int | None = None) -> str:
        """A MemoryData layer; `featmask` (ncnn param 31) keeps it off fp16 storage / Vulkan."""
        params = ncnn_shape_params(ncnn_shape or (1,))
        if featmask is not None:
            params[31] = featmask
        self.add("MemoryData", name, [], [name], params, [(data.astype(np.float32), False)])
        return name

    def constant_blob(self, hint: str, data: np.ndarray, ncnn_shape: tuple[int, ...],
                      featmask: int | None = None) -> str:
        """A MemoryData blob with the data viewed in a given ncnn shape (same element order)."""
        return self.memory_data(self.unique(hint), data.reshape(ncnn_shape), ncnn_shape,
                                featmask)

    def define(self, value: ir.Value, name: str, kept: tuple[int, ...]) -> Blob:
        blob = Blob(name, tuple(kept), static_shape(value))
        self.blobs[value.name] = blob
        return blob

    def alias(self, value: ir.Value, blob: Blob) -> Blob:
        """The value holds the same elements as `blob` (a Cast to float, Identity, ...)."""
        shape = static_shape(value)
        if shape == blob.shape:
            self.blobs[value.name] = Blob(blob.name, blob.kept, shape)
            return self.blobs[value.name]
        return self.reshaped_as(value, blob)

    def reshaped_as(self, value: ir.Value, source: Blob, hint: str | None = None) -> Blob:
        """Define `value` (same elements as `source`, another shape) in its default layout."""
        shape = static_shape(value)
        kept = default_kept(shape)
        if kept is None:  # more axes than ncnn holds: keep the elements where they are
            self.blobs[value.name] = Blob(source.name, None, shape, source.ncnn_shape)
            return self.blobs[value.name]
        target = tuple(shape[a] for a in kept)
        if target == source.ncnn_shape:
            blob = Blob(source.name, kept, shape)
        else:
            name = self.unique(value.name if hint is None else hint)
            self.add("Reshape", name, [source.name], [name], ncnn_shape_params(target))
            blob = Blob(name, kept, shape)
        self.blobs[value.name] = blob
        return blob

    def as_ncnn_shape(self, blob: Blob, ncnn_shape: tuple[int, ...], hint: str) -> str:
        """The blob's name, reshaped first when ncnn sees it with another shape."""
        if blob.ncnn_shape == tuple(ncnn_shape):
            return blob.name
        if int(np.prod(blob.ncnn_shape)) != int(np.prod(ncnn_shape)):
            raise ConversionError(f"cannot view blob {blob.name} {blob.ncnn_shape} as {ncnn_shape}")
        name = self.unique(hint)
        self.add("Reshape", name, [blob.name], [name], ncnn_shape_params(tuple(ncnn_shape)))
        return name

    # ---- layers ------------------------------------------------------------------------------
    def add(self, type_: str, name: str, inputs: list[str], outputs: list[str],
            params: dict[int, object] | None = None,
            weights: list[tuple[np.ndarray, bool]] | None = None) -> Layer:
        layer = Layer(type_, self.unique(name, layer=True), list(inputs), list(outputs),
                      dict(params or {}), list(weights or []))
        self.layers.append(layer)
        return layer

    def emit(self, node: ir.Node, type_: str, inputs: list[str], params: dict[int, object],
             weights: list[tuple[np.ndarray, bool]] | None = None,
             kept: tuple[int, ...] | None = None, output: ir.Value | None = None) -> Blob:
        """One ncnn layer for a single-output node; the output keeps `kept` (default layout)."""
        out = output if output is not None else node.outputs[0]
        shape = static_shape(out)
        if kept is None:
            kept = default_kept(shape)
            if kept is None:
                raise ConversionError(f"{node.op_type} '{node.name}': {expressible(shape)}")
        name = self.unique(out.name)
        self.add(type_, node.name or type_, inputs, [name], params, weights)
        return self.define(out, name, kept)

    # ---- graph structure ---------------------------------------------------------------------
    def consumers(self, value: ir.Value) -> list[ir.Node]:
        return [use.node for use in value.uses()]

    def sole_consumer(self, value: ir.Value) -> ir.Node | None:
        """The one node reading a value that is not a graph output (fusion is safe then)."""
        users = self.consumers(value)
        if len(users) != 1 or value.name in self.outputs:
            return None
        return users[0]

    def absorb(self, node: ir.Node) -> None:
        self.absorbed.add(id(node))

    def is_absorbed(self, node: ir.Node) -> bool:
        return id(node) in self.absorbed


def insert_splits(layers: list[Layer]) -> list[Layer]:
    """ncnn lets each blob feed one layer: a blob read by k layers goes through a Split first."""
    readers: dict[str, list[tuple[int, int]]] = {}
    for li, layer in enumerate(layers):
        for ii, name in enumerate(layer.inputs):
            readers.setdefault(name, []).append((li, ii))
    producer_of = {name: li for li, layer in enumerate(layers) for name in layer.outputs}
    after: dict[int, list[Layer]] = {}
    for name, uses in readers.items():
        if len(uses) < 2:
            continue
        outs = [f"{name}_splitncnn_{i}" for i in range(len(uses))]
        for (li, ii), new in zip(uses, outs):
            layers[li].inputs[ii] = new
        after.setdefault(producer_of[name], []).append(
            Layer("Split", f"splitncnn_{name}", [name], outs))
    result: list[Layer] = []
    for li, layer in enumerate(layers):
        result.append(layer)
        result.extend(after.get(li, []))
    return result


def input_layers(inputs: Iterable[tuple[ir.Value, Blob]]) -> list[Layer]:
    """One ncnn Input layer per graph input, shaped like its blob."""
    return [Layer("Input", blob.name, [], [blob.name], ncnn_shape_params(blob.ncnn_shape))
            for _, blob in inputs]
