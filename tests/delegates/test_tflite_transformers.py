"""Transformer zoo models as .tflite for XNNPACK: every op runs inside the delegate (int8 too),
no int8 op XNNPACK rejects (SOFTMAX, a broadcast bias ADD), no QUANTIZE -> DEQUANTIZE round trip
between float ops, one TRANSPOSE per attention for q/k/v; parity with PyTorch on LiteRT.
"""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as fb

from edgeexport import passes
from edgeexport import quantize as q
from edgeexport.delegates.tflite import emit_model, operator_names
from edgeexport.exporter import export, parse_input_spec
from edgeexport.runtimes.litert import ops_outside_delegates
from edgeexport.validate import TOLERANCES, error_stats
from tests.conftest import MODELS

_CACHE: dict[tuple[str, str], object] = {}


def exported(name: str, scheme: str = "fp32"):
    """The zoo model as `convert` hands it to the emitter (quantized with `scheme`)."""
    if (name, scheme) not in _CACHE:
        factory, shapes = MODELS[name]
        result = export(factory, input_specs=[parse_input_spec(s) for s in shapes])
        passes.optimize(result.model)
        if scheme != "fp32":
            q.apply(result, scheme, None, quiet=True)
        _CACHE[name, scheme] = result
    return _CACHE[name, scheme]


def litert(data: bytes, tmp_path, result) -> tuple[dict[str, np.ndarray], list[str]]:
    """Outputs on LiteRT (XNNPACK on) and the ops the XNNPACK delegate left to TFLite."""
    from ai_edge_litert.interpreter import Interpreter

    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    for d, arr in zip(it.get_input_details(), result.sample):
        it.set_tensor(d["index"], arr.astype(d["dtype"]))
    it.invoke()
    outs = {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}
    return outs, ops_outside_delegates(it)


def _ops(data: bytes) -> tuple[fb.ModelT, list[str]]:
    return fb.ModelT.InitFromPackedBuf(data, 0), operator_names(data)


@pytest.mark.parametrize("name", ["vit", "mobilevit"])
def test_int8_transformer_runs_inside_xnnpack(name: str, tmp_path) -> None:
    result = exported(name, "int8")
    data = emit_model(result.model).data
    got, fallback = litert(data, tmp_path, result)
    assert fallback == [], fallback
    stats = error_stats(result.expected[0], next(iter(got.values())))
    assert not TOLERANCES["int8"].violations(stats), stats
    model, names = _ops(data)
    sub = model.subgraphs[0]

    def is_int8(t: int) -> bool:
        return sub.tensors[t].type == fb.TensorType.INT8

    def is_const(t: int) -> bool:
        return bool(model.buffers[sub.tensors[t].buffer].data is not None
                    and len(model.buffers[sub.tensors[t].buffer].data))

    producer = {t: i for i, op in enumerate(sub.operators) for t in op.outputs}
    for op, n in zip(sub.operators, names):
        if n == "SOFTMAX":
            assert not is_int8(op.inputs[0]), "XNNPACK takes no int8 SOFTMAX"
        if n == "ADD" and is_int8(op.inputs[0]):
            assert not any(is_const(t) for t in op.inputs), "bias belongs in FULLY_CONNECTED"
        if n == "DEQUANTIZE" and op.inputs[0] in producer:
            src = sub.operators[producer[op.inputs[0]]]
            # float -> int8 -> float between two float ops is rounding for nothing
            assert names[producer[op.inputs[0]]] != "QUANTIZE" or is_int8(src.inputs[0])
        if n == "BATCH_MATMUL" and is_int8(op.inputs[1]):
            assert list(sub.tensors[op.inputs[1]].quantization.zeroPoint) == [0]


def test_int8_attention_stays_int8_around_the_float_softmax() -> None:
    data = emit_model(exported("vit", "int8").model).data
    model, names = _ops(data)
    sub = model.subgraphs[0]
    bmm = [op for op, n in zip(sub.operators, names) if n == "BATCH_MATMUL"]
    assert bmm and all(sub.tensors[op.inputs[0]].type == fb.TensorType.INT8 for op in bmm)
    assert names.count("FULLY_CONNECTED") == 9 and names.count("ADD") <= 10, names


def test_nnapi_keeps_int8_softmax() -> None:
    """The NNAPI delegate takes int8 SOFTMAX; only XNNPACK needs it float."""
    data = emit_model(exported("vit", "int8").model, target="nnapi").data
    model, names = _ops(data)
    sub = model.subgraphs[0]
    soft = [op for op, n in zip(sub.operators, names) if n == "SOFTMAX"]
    assert soft and all(sub.tensors[op.inputs[0]].type == fb.TensorType.INT8 for op in soft)


def test_int8_transformer_is_deterministic() -> None:
    model = exported("vit", "int8").model
    assert emit_model(model).data == emit_model(model).data


def test_dynamic_int8_bert_is_one_partition_of_hybrid_fc(tmp_path) -> None:
    result = exported("bert", "dynamic-int8")
    data = emit_model(result.model).data
    got, fallback = litert(data, tmp_path, result)
    # the embedding GATHER (+ DEQUANTIZE of its int8 rows) and the int64 mask's RESHAPE/CAST
    # run before the delegate
    assert set(fallback) <= {"GATHER", "DEQUANTIZE", "RESHAPE", "CAST"}, fallback
    assert fallback.count("RESHAPE") <= 1  # RESHAPE of a RESHAPE reads the first one's input
    stats = error_stats(result.expected[0], next(iter(got.values())))
    assert not TOLERANCES["dynamic-int8"].violations(stats), stats
    model, names = _ops(data)
    sub = model.subgraphs[0]
    fcs = [op for op, n in zip(sub.operators, names) if n == "FULLY_CONNECTED"]
    assert fcs and all(sub.tensors[op.inputs[1]].type == fb.TensorType.INT8 for op in fcs)
    assert all(op.builtinOptions.asymmetricQuantizeInputs for op in fcs)
    # q/k/v read one input: one FULLY_CONNECTED and a SPLIT per layer (2 layers, 13 Linears)
    assert len(fcs) == 13 - 2 * 2 and names.count("SPLIT") == 2, names


def test_vit_attention_transposes_once_and_skips_identity_affine() -> None:
    """q/k/v: one TRANSPOSE of the whole qkv tensor, K read with adj_y; out: one TRANSPOSE.
    LayerNorm with weight 1 and bias 0 (untrained) has no MUL/ADD by them."""
    data = emit_model(exported("vit").model).data
    model, names = _ops(data)
    sub = model.subgraphs[0]
    depth = 2
    assert names.count("TRANSPOSE") == 1 + 2 * depth, names
    bmm = [op for op, n in zip(sub.operators, names) if n == "BATCH_MATMUL"]
    assert sum(bool(op.builtinOptions.adjY) for op in bmm) == depth
    for op, n in zip(sub.operators, names):
        if n in ("MUL", "ADD"):
            for t in op.inputs:
                buf = model.buffers[sub.tensors[t].buffer].data
                if buf is not None and len(buf) == 64 * 4:
                    arr = np.frombuffer(bytes(buf), np.float32)
                    assert not (np.all(arr == 1.0) or np.all(arr == 0.0)), n
