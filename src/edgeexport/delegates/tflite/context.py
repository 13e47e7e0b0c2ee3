"""The emission context: IR values -> TFLite tensors (with their layout), constants, fp16 weights,
fused activations and the layout changes that an op asks for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import onnx_ir as ir
from ai_edge_litert import schema_py_generated as fb

from edgeexport import ir as eir
from edgeexport.delegates.tflite import layout as L
from edgeexport.delegates.tflite.writer import FlatModel

#: activations that TFLite fuses into the producing op, by their TFLite enum name
_ACT = fb.ActivationFunctionType


@dataclass
class Stored:
    """Where an IR value lives: the tensor index and the layout it is stored in."""

    index: int
    layout: L.Perm


class EmitContext:
    def __init__(self, model: ir.Model, precision: str = "fp32", options: Any = None,
                 target: str = "tflite") -> None:
        self.model, self.graph, self.target = model, model.graph, target
        self.precision, self.options = precision, options
        self.fb = FlatModel()
        self.values: dict[str, Stored] = {}
        self._cache: dict[tuple[str, L.Perm], int] = {}
        self._const_cache: dict[tuple[str, L.Perm, str], int] = {}
        self.skip: set[int] = set()
        self.graph_outputs = {v.name for v in self.graph.outputs}
        self.tensor_map: dict[str, list[Any]] = {}
        #: quantization parameters of IR values (filled by the QDQ emitters), name -> dict
        self.quant: dict[str, dict[str, Any]] = {}
        #: True while an int8 node is emitted (its inputs and outputs stay quantized)
        self.int8_node = False
        self.int8_nodes: set[int] = set()
        self._float_cache: dict[str, int] = {}
        #: int8 IR values that are QUANTIZE of a float tensor -> that tensor (float readers)
        self.float_source: dict[str, int] = {}

    # facts about IR values --------------------------------------------------------------
    @staticmethod
    def shape(value: ir.Value) -> tuple[int, ...]:
        if value.shape is None:
            raise ValueError(f"value '{value.name}' has no static shape")
        return tuple(int(d) for d in value.shape)

    @staticmethod
    def rank(value: ir.Value) -> int:
        return len(value.shape) if value.shape is not None else -1

    @staticmethod
    def dtype(value: ir.Value) -> np.dtype:
        return eir.np_dtype(value.dtype)

    @staticmethod
    def array(value: ir.Value | None) -> np.ndarray | None:
        """The initializer (or Constant, or Cast of one) behind a value, else None."""
        return None if value is None else folded(value)

    def const(self, value: ir.Value | None) -> np.ndarray | None:
        """The float constant a node sees: an initializer, or for a float node a quantized
        weight (DequantizeLinear of a constant) already dequantized. None for activations and,
        in an int8 node, for quantized weights (read `quant[name]["int_value"]` there)."""
        arr = self.array(value)
        if arr is not None or value is None:
            return arr
        q = self.quant.get(value.name)
        if q is not None and "int_value" in q and not self.int8_node:
            return dequantize(q)
        return None

    def layout(self, value: ir.Value) -> L.Perm:
        if self.array(value) is not None or "int_value" in self.quant.get(value.name, {}):
            return L.identity(self.rank(value))
        return self.values[value.name].layout

    def consumers(self, value: ir.Value) -> list[ir.Node]:
        return [u[0] for u in value.uses()]

    # tensors ----------------------------------------------------------------------------
    def const_tensor(self, array: np.ndarray, name: str, layout: Sequence[int] | None = None,
                     dtype: Any = None, weight: bool = True, quant: dict | None = None) -> int:
        """A constant tensor, stored in `layout`; fp16 models keep float weights as fp16 and
        dequantize them once at load (TFLite's DEQUANTIZE of a constant is folded by XNNPACK)."""
        arr = np.asarray(array)
        if dtype is not None:
            arr = arr.astype(dtype)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        perm = tuple(layout) if layout is not None else L.identity(arr.ndim)
        # the content is part of the key: two constants may share a name (e.g. perms)
        key = (name, perm, arr.dtype.str + str(arr.shape),
               hashlib.sha1(np.ascontiguousarray(arr).tobytes()).hexdigest(), str(quant))
        if key in self._const_cache:
            return self._const_cache[key]
        data = np.transpose(arr, perm) if arr.ndim else arr
        if (self.precision == "fp16" and weight and quant is None
                and data.dtype == np.float32 and data.size >= 16):
            half = self.fb.tensor(name + "/fp16", data.shape, np.float16, data.astype(np.float16))
            idx = self.fb.tensor(name, data.shape, np.float32)
            self.fb.op("DEQUANTIZE", [half], [idx])
        else:
            idx = self.fb.tensor(name, data.shape, data.dtype, data, quant=quant)
        self._const_cache[key] = idx
        return idx

    def int32(self, values: Sequence[int], name: str) -> int:
        return self.const_tensor(np.asarray(values, dtype=np.int32), name, weight=False)

    def input(self, value: ir.Value, layout: Sequence[int] | None = None,
              name: str | None = None) -> int:
        """The tensor of an IR value, in `layout` (None: as stored). Converts when needed."""
        arr = self.const(value)
        if arr is not None:
            return self.const_tensor(arr, value.name, layout)
        q = self.quant.get(value.name)
        if q is not None and "int_value" in q:  # a quantized weight read by an int8 node
            return self._quant_const(value.name, q, layout)
        stored = self.values[value.name]
        float_view = not self.int8_node and q is not None
        if (float_view and layout is not None and tuple(layout) != stored.layout
                and value.name not in self.float_source):
            return self._dequantized_moved(value, tuple(layout))
        if float_view:  # a float node reading an int8 value: DEQUANTIZE it once
            stored = Stored(self._dequantized(value, stored), stored.layout)
        if layout is None or tuple(layout) == stored.layout:
            return stored.index
        perm = tuple(layout)
        if not float_view and q is not None and value.name in self.float_source and \
                self._short_inner_transpose(value, stored.layout, perm):
            return self._moved_then_quantized(value, perm, q)
        key = (value.name + ("/float" if float_view else ""), perm)
        if key not in self._cache:
            shape = self.shape(value)
            out = self.fb.tensor(name or f"{value.name}/{''.join(map(str, perm))}",
                                 L.physical_shape(shape, perm), self.fb.dtype(stored.index),
                                 quant=None if float_view else q)
            if L.same_memory_order(shape, stored.layout) and L.same_memory_order(shape, perm):
                self.reshape(stored.index, out)
            else:
                rel = L.relative(stored.layout, perm)
                self.fb.op("TRANSPOSE", [stored.index,
                                         self.int32(rel, f"perm{''.join(map(str, rel))}")],
                          [out])
            self._cache[key] = out
        return self._cache[key]

    def _short_inner_transpose(self, value: ir.Value, src: L.Perm, dst: L.Perm) -> bool:
        """A real TRANSPOSE (not a RESHAPE) whose result's last axis is under 8 elements."""
        shape = self.shape(value)
        if L.same_memory_order(shape, src) and L.same_memory_order(shape, dst):
            return False
        return L.physical_shape(shape, dst)[-1] < 8

    def _moved_then_quantized(self, value: ir.Value, perm: L.Perm, q: dict[str, Any]) -> int:
        """An int8 reader of QUANTIZE(float x) in another layout, when the move ends in a short
        axis (an image's 3 channels going last): XNNPACK's int8 TRANSPOSE is ~1.8x slower there
        than its float one, so x moves and is quantized after."""
        key = (value.name, perm)
        if key not in self._cache:
            was, self.int8_node = self.int8_node, False
            moved = self.input(value, perm)
            self.int8_node = was
            t = self.fb.tensor(f"{self.fb.name(moved)}/q", self.fb.shape(moved),
                               np.dtype(q["dtype"]), quant=q)
            self.fb.op("QUANTIZE", [moved], [t])
            self._cache[key] = t
        return self._cache[key]

    def _dequantized_moved(self, value: ir.Value, perm: L.Perm) -> int:
        """A float node reading an int8 value in another layout: the int8 bytes move (a
        quarter of the float ones), then one DEQUANTIZE."""
        key = (value.name + "/float", perm)
        if key not in self._cache:
            was, self.int8_node = self.int8_node, True
            moved = self.input(value, perm)
            self.int8_node = was
            t = self.fb.tensor(f"{self.fb.name(moved)}/float", self.fb.shape(moved), np.float32)
            self.fb.op("DEQUANTIZE", [moved], [t])
            self._cache[key] = t
        return self._cache[key]

    def _dequantized(self, value: ir.Value, stored: Stored) -> int:
        src = self.float_source.get(value.name)
        if src is not None and self.fb.shape(src) == self.fb.shape(stored.index):
            return src
        if value.name not in self._float_cache:
            t = self.fb.tensor(f"{value.name}/float", self.fb.shape(stored.index), np.float32)
            self.fb.op("DEQUANTIZE", [stored.index], [t])
            self._float_cache[value.name] = t
        return self._float_cache[value.name]

    def _quant_const(self, name: str, q: dict[str, Any], layout: Sequence[int] | None) -> int:
        arr = q["int_value"]
        perm = tuple(layout) if layout is not None else L.identity(arr.ndim)
        quant = {"scale": q["scale"], "zero_point": q["zero_point"],
                 "axis": L.physical_axis(q.get("axis", 0), perm) if arr.ndim else 0}
        return self.const_tensor(arr, name, perm, quant=quant)

    def output(self, value: ir.Value, layout: Sequence[int] | None = None,
               dtype: Any = None, quant: dict | None = None) -> int:
        """Create the tensor that holds IR value `value` stored in `layout`, and record it."""
        perm = tuple(layout) if layout is not None else L.identity(self.rank(value))
        name = value.name
        if value.name in self.graph_outputs and not L.is_identity(perm):
            name = f"{value.name}/{''.join(map(str, perm))}"  # the plain name is the output's
        q = quant if quant is not None else (self.quant.get(value.name) if self.int8_node
                                             else None)
        if dtype is not None:
            dt = np.dtype(dtype)
        elif q is not None:
            dt = np.dtype(q["dtype"])
        else:
            dt = self.dtype(value)
        idx = self.fb.tensor(name, L.physical_shape(self.shape(value), perm), dt, quant=q)
        self.define(value, idx, perm)
        return idx

    def define(self, value: ir.Value, index: int, layout: Sequence[int]) -> None:
        self.values[value.name] = Stored(index, tuple(layout))
        self.tensor_map[value.name] = [self.fb.name(index), list(layout)]

    def alias(self, value: ir.Value, source: ir.Value, layout: Sequence[int] | None = None) -> None:
        """`value` is the same data as `source` (Identity, Dropout, an absorbed Transpose)."""
        stored = self.values.get(source.name)
        if stored is None:  # a constant
            self.define(value, self.input(source), L.identity(self.rank(source)))
            return
        self.values[value.name] = Stored(stored.index, tuple(layout or stored.layout))

    def temp(self, name: str, shape: Sequence[int], dtype: Any, quant: dict | None = None) -> int:
        return self.fb.tensor(name, shape, dtype, quant=quant)

    def reshape(self, src: int, dst: int) -> None:
        src = self.fb.reshape_source(src)  # RESHAPE of a RESHAPE reads the first one's input
        shape = self.fb.shape(dst)
        opt = fb.ReshapeOptionsT()
        opt.newShape = list(shape)
        self.fb.op("RESHAPE", [src, self.int32(shape, "shape" + "x".join(map(str, shape)))],
                   [dst], opt)

    # fused activations ------------------------------------------------------------------
    def fuse_activation(self, value: ir.Value, allowed: Sequence[str] = ("RELU", "RELU6",
                        "RELU_N1_TO_1")) -> tuple[ir.Value, int]:
        """When `value`'s only consumer is an activation TFLite can fuse, take it: returns the
        value the fused op produces and the activation enum (NONE otherwise). TANH is left out
        by default: CONV_2D / FULLY_CONNECTED / ADD kernels only clamp, they never apply it."""
        users = self.consumers(value)
        if len(users) != 1 or value.name in self.graph_outputs or value.name in self.quant:
            return value, _ACT.NONE
        node = users[0]
        kind = activation_kind(node)
        if kind is None or kind not in allowed:
            return value, _ACT.NONE
        self.skip.add(id(node))
        return node.outputs[0], getattr(_ACT, kind)


def folded(value: ir.Value) -> np.ndarray | None:
    """A constant's array; a Cast of a constant (fp16 weights stored as float16 + Cast, the
    quantizer's fp16 scheme) is folded, the target then picks how to store it."""
    arr = eir.initializer_array(value)
    if arr is not None:
        return arr
    p = value.producer()
    if p is not None and p.op_type == "Cast" and value.dtype is not None:
        src = eir.initializer_array(p.inputs[0])
        if src is not None:
            return src.astype(eir.np_dtype(value.dtype))
    return None


def is_const(value: ir.Value | None) -> bool:
    """A constant, or a quantized constant (DequantizeLinear of one): what checks accept as
    'must be a constant'."""
    if value is None:
        return True
    if folded(value) is not None:
        return True
    p = value.producer()
    return (p is not None and p.op_type == "DequantizeLinear"
            and eir.initializer_array(p.inputs[0]) is not None)


def dequantize(q: dict[str, Any]) -> np.ndarray:
    """The float value of a quantized constant (per-tensor or per-axis)."""
    arr = q["int_value"]
    scale = np.asarray(q["scale"], np.float32)
    zp = np.asarray(q["zero_point"], np.float32)
    if scale.size > 1:
        shape = [1] * arr.ndim
        shape[q.get("axis", 0)] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return ((arr.astype(np.float32) - zp) * scale).astype(np.float32)


def clip_bounds(node: ir.Node) -> tuple[float, float] | None:
    """(min, max) of a Clip whose bounds are constants (missing bound = infinite)."""
    lo, hi = -np.inf, np.inf
    ins = list(node.inputs)
    for i, default in ((1, None), (2, None)):
        if len(ins) > i and ins[i] is not None:
            arr = eir.initializer_array(ins[i])
            if arr is None:
                return None
            if i == 1:
                lo = float(arr)
            else:
                hi = float(arr)
    return lo, hi


def activation_kind(node: ir.Node) -> str | None:
    """The TFLite fused-activation name of an activation node, if it is one."""
    if node.op_type == "Relu":
        return "RELU"
    if node.op_type == "Tanh":
        return "TANH"
    if node.op_type == "Clip":
        b = clip_bounds(node)
        if b == (0.0, 6.0):
            return "RELU6"
        if b == (-1.0, 1.0):
            return "RELU_N1_TO_1"
        if b == (0.0, np.inf):
            return "RELU"
    return None
