"""The IR: ONNX at one fixed opset, held as onnx_ir objects, with load/save helpers.

Every stage takes and returns an `onnx_ir.Model` in the default domain at OPSET.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import onnx_ir as ir

#: The one opset of the IR. 20 is the first with Gelu as a single op; LayerNormalization (17) and
#: the input-form axes of the Reduce* ops (18) are in; onnxruntime supports it fully.
OPSET = 20
#: ONNX's protobuf limit: above it tensors go to external data.
EXTERNAL_DATA_THRESHOLD = 2 * 1024**3 - 1024**2

NP_FROM_IR = {
    ir.DataType.FLOAT: np.float32, ir.DataType.FLOAT16: np.float16, ir.DataType.DOUBLE: np.float64,
    ir.DataType.INT8: np.int8, ir.DataType.UINT8: np.uint8, ir.DataType.INT16: np.int16,
    ir.DataType.UINT16: np.uint16, ir.DataType.INT32: np.int32, ir.DataType.UINT32: np.uint32,
    ir.DataType.INT64: np.int64, ir.DataType.UINT64: np.uint64, ir.DataType.BOOL: np.bool_,
}


def np_dtype(dtype: ir.DataType) -> np.dtype:
    """numpy dtype of an IR element type (bfloat16 and float8 via ml_dtypes)."""
    if dtype in NP_FROM_IR:
        return np.dtype(NP_FROM_IR[dtype])
    return dtype.numpy()


def load(path: str | os.PathLike) -> ir.Model:
    """Load an .onnx file (and its external data, from inside its folder only) as an IR model."""
    check_external_data(path)
    return ir.load(os.fspath(path))


def check_external_data(path: str | os.PathLike) -> None:
    """Refuse (UsageError) an .onnx file whose external data lies outside its folder: an
    initializer's `location` may be absolute or climb out with `..`, and onnx, onnx_ir and
    onnxruntime would read whatever file it names. Run this before any of them loads the file."""
    import onnx

    from edgeexport.paths import resolve_inside

    try:
        model = onnx.load_model(os.fspath(path), load_external_data=False)
    except Exception:
        return  # not parseable: the loader that comes next says so in its own words
    folder = os.path.dirname(os.fspath(path))
    for tensor in _proto_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            location = next((e.value for e in tensor.external_data if e.key == "location"), "")
            resolve_inside(folder, location, path, f"external data of tensor '{tensor.name}'")


def _proto_tensors(model: Any) -> Iterator[Any]:
    """Every TensorProto of a ModelProto: initializers, sparse ones, node attributes, subgraphs
    and functions."""
    def graph(g: Any) -> Iterator[Any]:
        yield from g.initializer
        for sparse in g.sparse_initializer:
            yield from (sparse.values, sparse.indices)
        yield from nodes(g.node)

    def nodes(node_list: Iterable[Any]) -> Iterator[Any]:
        for n in node_list:
            for a in n.attribute:
                if a.HasField("t"):
                    yield a.t
                yield from a.tensors
                sparse = list(a.sparse_tensors)
                if a.HasField("sparse_tensor"):
                    sparse.append(a.sparse_tensor)
                for sp in sparse:
                    yield from (sp.values, sp.indices)
                if a.HasField("g"):
                    yield from graph(a.g)
                for sub in a.graphs:
                    yield from graph(sub)

    yield from graph(model.graph)
    for f in model.functions:
        yield from nodes(f.node)


def to_bytes(model: ir.Model) -> bytes:
    """Serialize deterministically (no external data); used for hashing and small models."""
    return ir.to_proto(model).SerializeToString(deterministic=True)


def save(model: ir.Model, path: str | os.PathLike) -> None:
    """Save atomically; weights go to `<name>.data` only above the 2 GB protobuf limit."""
    path = Path(path)
    size = sum(v.const_value.nbytes for v in model.graph.initializers.values()
               if v.const_value is not None)
    if size > EXTERNAL_DATA_THRESHOLD:
        ir.save(model, os.fspath(path), external_data=path.name + ".data")
        return
    write_atomic(path, to_bytes(model))


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary name in the same folder, then rename over the target."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; artifacts are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def initializer_array(value: ir.Value) -> np.ndarray | None:
    """The constant behind a value (initializer or Constant node output), else None."""
    if value.const_value is not None:
        return value.const_value.numpy()
    producer = value.producer()
    if producer is not None and producer.op_type == "Constant" and producer.domain == "":
        attr = producer.attributes.get("value")
        if attr is not None:
            return attr.as_tensor().numpy()
    return None


def op_types(model: ir.Model) -> list[str]:
    """Op types of the main graph, in order (handy in tests and reports)."""
    return [n.op_type for n in model.graph]


def iter_nodes(graph: ir.Graph) -> Iterable[ir.Node]:
    """Every node of a graph including those of subgraphs (If/Loop bodies)."""
    for node in graph:
        yield node
        for attr in node.attributes.values():
            if attr.type == ir.AttributeType.GRAPH:
                yield from iter_nodes(attr.as_graph())
            elif attr.type == ir.AttributeType.GRAPHS:
                for g in attr.as_graphs():
                    yield from iter_nodes(g)


#: ops whose first input (and output) is an image batch in ONNX's NCHW layout
_SPATIAL = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool",
            "GlobalMaxPool", "BatchNormalization", "InstanceNormalization", "Resize",
            "DepthToSpace", "SpaceToDepth"}
#: ops that pass a tensor on without changing what its axes mean
_PASS = {"QuantizeLinear", "DequantizeLinear", "Cast", "Identity"}


def is_image(value: ir.Value) -> bool:
    """A rank-4 float graph input read, or output made, by a spatial op (Conv, pooling, ...):
    an NCHW image batch. Other rank-4 tensors (attention masks) are not."""
    if value.shape is None or len(value.shape) != 4 or value.dtype is None \
            or not value.dtype.is_floating_point():
        return False
    seen, todo = set(), [value]
    while todo:
        v = todo.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        for node, index in v.uses():
            if node.op_type in _SPATIAL and index == 0:
                return True
            if node.op_type in _PASS and index == 0:
                todo.extend(o for o in node.outputs if o is not None)
        p = v.producer()
        if p is not None and p.op_type in _SPATIAL:
            return True
        if p is not None and p.op_type in _PASS and p.inputs[0] is not None:
            todo.append(p.inputs[0])
    return False
