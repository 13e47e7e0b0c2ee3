"""int8 storage for constant embedding tables: a Gather (axis 0) of a constant float table by
integer ids reads an int8 table and dequantizes only the rows it gathered.

The form is Gather(int8 table, ids) -> DequantizeLinear(one scale per column, axis = last),
chosen by measurement on all-MiniLM-L6-v2 (dynamic int8, word embeddings [30522, 384], 8 real
sentences, onnxruntime 1 thread, medians of 30 interleaved runs):

- speed: onnxruntime does not fold a DequantizeLinear of a constant (QDQ graphs keep theirs for
  its fusions), so DequantizeLinear(table) -> Gather dequantizes all 11.7 M entries on every run:
  34.4 ms per-column, 20.5 ms per-row, against 18.1 ms with the float table; dequantizing the 128
  gathered rows after the Gather costs nothing measurable (18.1 ms). On LiteRT the same form is
  an int8 GATHER + a per-channel DEQUANTIZE: the table stays int8 in memory, not only on disk.
- error: per-row scales fit the table better (SQNR 42.8 dB against 39.1 dB per-column), but the
  sentence embeddings do not see it (cosine to the float-table model >= 0.99978 per-row, 0.99981
  per-column; to PyTorch 0.99912 / 0.99918, float table 0.99924): the int8 weights dominate.
- exactness: a gathered element's scale depends on its column only, so dequantizing after the
  Gather is the same arithmetic as before it; per-row scales would need a second Gather (of the
  scales) and a Mul.

Ids are not checked: the table's rows are the same rows, so out-of-range ids fail the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport.ir import initializer_array
from edgeexport.quantize.rewrite import Builder

#: tables smaller than this stay float: a few KB saved is not worth two nodes
MIN_ELEMENTS = 4096


def quantize_columns(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 with one scale per column (last axis): q in [-127, 127], table ~ q * s."""
    w = np.asarray(table, np.float32)
    amax = np.abs(w.reshape(-1, w.shape[-1])).max(axis=0)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale


def gathered_int8_rows(x: ir.Value) -> bool:
    """`x` is a Gather (axis 0) of rows of a constant int8 table: what int8_tables writes before
    the per-column DequantizeLinear."""
    p = x.producer()
    table = initializer_array(p.inputs[0]) if p is not None and p.op_type == "Gather" else None
    return table is not None and table.dtype == np.int8 and p.attributes.get_int("axis", 0) == 0


def int8_tables(model: ir.Model, min_elements: int = MIN_ELEMENTS) -> dict[str, dict[str, Any]]:
    """Rewrite every Gather (axis 0) with computed integer ids of a constant float table (rank
    >= 2, at least `min_elements`, read by nothing but Gathers) into Gather(int8 table) ->
    DequantizeLinear with one scale per column. Returns table name -> {"shape", "axis",
    "gathers", "scale": {"channels", "min", "max"}, "bytes": {"before", "after"}}."""
    graph = model.graph
    b = Builder(graph)
    done: dict[str, dict[str, Any]] = {}
    stored: dict[str, tuple[ir.Value, ir.Value]] = {}
    for node in list(graph):
        table = _table_of(node, min_elements)
        if table is None:
            continue
        ids, out = node.inputs[1], node.outputs[0]
        if table.name not in stored:
            arr = initializer_array(table).astype(np.float32)
            q, scale = quantize_columns(arr)
            stored[table.name] = (b.const(f"{table.name}_int8", q),
                                  b.const(f"{table.name}_s", scale))
            done[table.name] = {
                "shape": list(arr.shape), "axis": arr.ndim - 1, "gathers": 0,
                "scale": {"channels": int(scale.size), "min": float(scale.min()),
                          "max": float(scale.max())},
                "bytes": {"before": int(arr.size * 4), "after": int(q.size + scale.size * 4)}}
        qtable, scale_v = stored[table.name]
        rank = len(ids.shape) + len(qtable.shape) - 1
        gather = ir.node("Gather", [qtable, ids], {"axis": 0}, name=node.name)
        gathered = gather.outputs[0]
        gathered.name = b.unique(f"{out.name}_int8")
        gathered.type, gathered.shape = ir.TensorType(ir.DataType.INT8), out.shape
        dq = ir.node("DequantizeLinear", [gathered, scale_v], {"axis": rank - 1},
                     name=b.unique(f"{node.name or table.name}_DQ"))
        for key, value in node.metadata_props.items():
            gather.metadata_props[key] = value
            dq.metadata_props[key] = value
        graph.insert_after(node, [gather, dq])
        # the DequantizeLinear's output takes the Gather's output's place and name
        name, new = out.name, dq.outputs[0]
        new.type, new.shape = ir.TensorType(ir.DataType.FLOAT), out.shape
        out.replace_all_uses_with(new, replace_graph_outputs=True)
        graph.remove(node, safe=True)
        out.name, new.name = None, name
        done[table.name]["gathers"] += 1
        if not table.uses() and table.name in graph.initializers:
            del graph.initializers[table.name]
    return done


def _table_of(node: ir.Node, min_elements: int) -> ir.Value | None:
    """The constant float table a Gather reads row by row with computed ids, else None."""
    if node.op_type != "Gather" or node.domain != "" or len(node.inputs) != 2:
        return None
    table, ids = node.inputs
    if table is None or ids is None or table.const_value is None or table.is_graph_input():
        return None
    if node.attributes.get_int("axis", 0) != 0 or initializer_array(ids) is not None:
        return None  # constant ids: constant folding's business
    if ids.dtype not in (ir.DataType.INT32, ir.DataType.INT64) or ids.shape is None:
        return None
    if table.dtype != ir.DataType.FLOAT:
        return None  # an fp16 table is already stored small (fp16 scheme)
    if any(u.node.op_type != "Gather" or u.idx != 0 for u in table.uses()):
        return None  # also read as a float weight: an int8 copy would only add bytes
    shape = table.shape
    if shape is None or len(shape) < 2 or not all(isinstance(d, int) for d in shape):
        return None
    return table if int(np.prod(shape)) >= min_elements else None

