"""The TFLite flatbuffer writer: tensors, buffers, operators and metadata, packed with the schema
classes that ship in ai-edge-litert (`schema_py_generated`). Same calls in, same bytes out.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as fb

#: numpy dtype -> TFLite TensorType
TENSOR_TYPES: dict[np.dtype, int] = {
    np.dtype(np.float32): fb.TensorType.FLOAT32, np.dtype(np.float16): fb.TensorType.FLOAT16,
    np.dtype(np.int32): fb.TensorType.INT32, np.dtype(np.uint8): fb.TensorType.UINT8,
    np.dtype(np.int64): fb.TensorType.INT64, np.dtype(np.bool_): fb.TensorType.BOOL,
    np.dtype(np.int16): fb.TensorType.INT16, np.dtype(np.int8): fb.TensorType.INT8,
    np.dtype(np.float64): fb.TensorType.FLOAT64, np.dtype(np.uint32): fb.TensorType.UINT32,
}
#: metadata entry that maps TFLite tensors back to IR values (read by runtimes/litert.py)
TENSOR_MAP_KEY = "edgeexport.tensor_map"
#: ops whose kernels are registered from a version above 1
_MIN_VERSION = {"BROADCAST_TO": 2}
#: buffers are aligned like the reference converter does, so kernels may read them in place
_ALIGN = 16


class _AlignedBufferT(fb.BufferT):
    """A buffer whose bytes start on a 16-byte boundary (the generated Pack aligns to 1)."""

    def Pack(self, builder: flatbuffers.Builder) -> int:  # noqa: N802 (generated API)
        data = None
        if self.data is not None:
            raw = self.data
            builder.StartVector(1, len(raw), _ALIGN)
            builder.head = builder.head - len(raw)
            builder.Bytes[builder.head:builder.head + len(raw)] = raw
            data = builder.EndVector(len(raw))
        fb.BufferStart(builder)
        if data is not None:
            fb.BufferAddData(builder, data)
        return fb.BufferEnd(builder)


class FlatModel:
    """Accumulates one subgraph; `finish()` returns the .tflite bytes."""

    def __init__(self, description: str = "edgeexport") -> None:
        self.description = description
        self.tensors: list[fb.TensorT] = []
        self.operators: list[fb.OperatorT] = []
        self.buffers: list[_AlignedBufferT] = [_AlignedBufferT()]  # buffer 0 is the empty one
        self._buffer_by_hash: dict[bytes, int] = {}
        self.opcodes: list[fb.OperatorCodeT] = []
        self._opcode_index: dict[int, int] = {}
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.metadata: dict[str, bytes] = {}
        self._names: set[str] = set()
        self._producer: dict[int, int] = {}

    # tensors -------------------------------------------------------------------------------
    def unique_name(self, name: str) -> str:
        base, i = name, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    def tensor(self, name: str, shape: tuple[int, ...] | list[int], dtype: Any,
               data: np.ndarray | None = None, quant: dict[str, Any] | None = None) -> int:
        """Add a tensor (a constant when `data` is given) and return its index."""
        dt = np.dtype(dtype)
        t = fb.TensorT()
        t.name = self.unique_name(name)
        t.shape = [int(d) for d in shape]
        t.type = TENSOR_TYPES[dt]
        t.hasRank = True
        t.buffer = 0
        if data is not None:
            arr = np.ascontiguousarray(np.asarray(data, dtype=dt).reshape(t.shape))
            t.buffer = self._buffer(arr.tobytes())
        if quant is not None:
            q = fb.QuantizationParametersT()
            q.scale = [float(s) for s in np.atleast_1d(quant["scale"])]
            q.zeroPoint = [int(z) for z in np.atleast_1d(quant["zero_point"])]
            q.quantizedDimension = int(quant.get("axis", 0))
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def _buffer(self, raw: bytes) -> int:
        # identical constants share one buffer; the hash keeps the choice deterministic
        key = hashlib.sha256(raw).digest() + len(raw).to_bytes(8, "little")
        if key not in self._buffer_by_hash:
            buf = _AlignedBufferT()
            buf.data = raw
            self.buffers.append(buf)
            self._buffer_by_hash[key] = len(self.buffers) - 1
        return self._buffer_by_hash[key]

    def shape(self, index: int) -> list[int]:
        return list(self.tensors[index].shape)

    def dtype(self, index: int) -> np.dtype:
        t = self.tensors[index].type
        return next(d for d, v in TENSOR_TYPES.items() if v == t)

    def name(self, index: int) -> str:
        return self.tensors[index].name

    # operators -----------------------------------------------------------------------------
    def op(self, opname: str, inputs: list[int], outputs: list[int],
           options: Any = None) -> int:
        """Append an operator (`opname` is a BuiltinOperator member, e.g. 'CONV_2D')."""
        code = getattr(fb.BuiltinOperator, opname)
        if code not in self._opcode_index:
            oc = fb.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)  # 127 = PLACEHOLDER_FOR_GREATER_OP_CODES
            oc.version = _MIN_VERSION.get(opname, 1)
            self.opcodes.append(oc)
            self._opcode_index[code] = len(self.opcodes) - 1
        o = fb.OperatorT()
        o.opcodeIndex = self._opcode_index[code]
        o.inputs = list(inputs)
        o.outputs = list(outputs)
        if options is not None:
            o.builtinOptionsType = getattr(fb.BuiltinOptions, type(options).__name__[:-1])
            o.builtinOptions = options
        self.operators.append(o)
        for t in o.outputs:
            self._producer[t] = len(self.operators) - 1
        return len(self.operators) - 1

    def reshape_source(self, index: int) -> int:
        """The tensor a RESHAPE output was reshaped from (same bytes), else `index` itself."""
        k = self._producer.get(index)
        if k is None or self.operators[k].opcodeIndex != self._opcode_index.get(
                fb.BuiltinOperator.RESHAPE):
            return index
        return self.operators[k].inputs[0]

    def set_version(self, opname: str, version: int) -> None:
        """Raise the declared version of an op code (int8 kernels need version >= 2)."""
        code = getattr(fb.BuiltinOperator, opname)
        idx = self._opcode_index.get(code)
        if idx is not None:
            self.opcodes[idx].version = max(self.opcodes[idx].version, version)

    def drop_dead_ops(self) -> set[str]:
        """Remove operators whose outputs nothing reads (a QUANTIZE that only float readers
        turned out to need), with the tensors only they wrote; returns those tensors' names."""
        live = set(self.outputs)
        keep = [False] * len(self.operators)
        for i in reversed(range(len(self.operators))):
            op = self.operators[i]
            if any(o in live for o in op.outputs):
                keep[i] = True
                live.update(t for t in op.inputs if t >= 0)
        if all(keep):
            return set()
        dropped = {t for op, k in zip(self.operators, keep) if not k
                   for t in list(op.inputs) + list(op.outputs) if t >= 0}
        # a kept operator's every output stays (TopK's unread indices that only a dropped CAST
        # read), even though nothing live reads it
        kept = {t for op, k in zip(self.operators, keep) if k for t in op.outputs}
        dead = dropped - live - kept - set(self.inputs)
        names = {self.tensors[t].name for t in dead}
        new_index, tensors = {}, []
        for i, t in enumerate(self.tensors):
            if i not in dead:
                new_index[i] = len(tensors)
                tensors.append(t)
        self.tensors = tensors
        self.operators = [op for op, k in zip(self.operators, keep) if k]
        for op in self.operators:
            op.inputs = [new_index[t] if t >= 0 else t for t in op.inputs]
            op.outputs = [new_index[t] for t in op.outputs]
        self.inputs = [new_index[t] for t in self.inputs]
        self.outputs = [new_index[t] for t in self.outputs]
        self._producer = {t: i for i, op in enumerate(self.operators) for t in op.outputs}
        self._drop_unused_buffers()
        return names

    def _drop_unused_buffers(self) -> None:
        used = sorted({t.buffer for t in self.tensors} | {0})
        if len(used) == len(self.buffers):
            return
        new_index = {b: i for i, b in enumerate(used)}
        self.buffers = [self.buffers[b] for b in used]
        for t in self.tensors:
            t.buffer = new_index[t.buffer]
        self._buffer_by_hash = {k: new_index[b] for k, b in self._buffer_by_hash.items()
                                if b in new_index}

    def op_names(self) -> list[str]:
        names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
        return [names[self.opcodes[o.opcodeIndex].builtinCode] for o in self.operators]

    # whole model ---------------------------------------------------------------------------
    def finish(self, tensor_map: dict[str, Any] | None = None) -> bytes:
        if tensor_map is not None:
            self.metadata[TENSOR_MAP_KEY] = json.dumps(tensor_map, sort_keys=True,
                                                       separators=(",", ":")).encode()
        sub = fb.SubGraphT()
        sub.tensors, sub.operators = self.tensors, self.operators
        sub.inputs, sub.outputs = self.inputs, self.outputs
        sub.name = "main"
        sig = fb.SignatureDefT()
        sig.signatureKey = "serving_default"
        sig.subgraphIndex = 0
        sig.inputs = [self._tensor_map(i) for i in self.inputs]
        sig.outputs = [self._tensor_map(i) for i in self.outputs]
        model = fb.ModelT()
        model.version = 3
        model.description = self.description
        model.subgraphs = [sub]
        model.operatorCodes = self.opcodes
        model.signatureDefs = [sig]
        buffers = list(self.buffers)
        model.metadata = []
        for key in sorted(self.metadata):
            buf = _AlignedBufferT()
            buf.data = self.metadata[key]
            buffers.append(buf)
            md = fb.MetadataT()
            md.name, md.buffer = key, len(buffers) - 1
            model.metadata.append(md)
        model.buffers = buffers
        size = sum(len(b.data or b"") for b in buffers)
        builder = flatbuffers.Builder(size + 1024 * 1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())

    def _tensor_map(self, index: int) -> fb.TensorMapT:
        tm = fb.TensorMapT()
        tm.name, tm.tensorIndex = self.tensors[index].name, index
        return tm


def read_metadata(data: bytes) -> dict[str, bytes]:
    """The metadata entries of a .tflite file, by name."""
    model = fb.Model.GetRootAs(data, 0)
    out = {}
    for i in range(model.MetadataLength()):
        md = model.Metadata(i)
        if md.Name() is not None:
            buf = model.Buffers(md.Buffer())
            out[md.Name().decode()] = buf.DataAsNumpy().tobytes() if buf.DataLength() else b""
    return out


def read_tensor_map(data: bytes) -> dict[str, Any]:
    """The tensor map stored by `finish` (empty when the model has none)."""
    raw = read_metadata(data).get(TENSOR_MAP_KEY)
    return json.loads(raw.decode()) if raw else {}


def operator_names(data: bytes) -> list[str]:
    """The builtin op names of a .tflite file's main subgraph, in order (tests, reports)."""
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    model = fb.Model.GetRootAs(data, 0)
    sub = model.Subgraphs(0)
    out = []
    for i in range(sub.OperatorsLength()):
        oc = model.OperatorCodes(sub.Operators(i).OpcodeIndex())
        out.append(names[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())])
    return out
