"""QDQ graphs (made here with onnxruntime's quantize_static: int8 activations, per-channel int8
weights, int32 bias) become int8 TFLite kernels; parity with PyTorch and with onnxruntime on the
same QDQ model, and the NNAPI per-channel rule (API 29) on the result.
"""

from __future__ import annotations

import argparse

import numpy as np
import onnx
import pytest
from ai_edge_litert import schema_py_generated as fb

from edgeexport import ir as eir
from edgeexport import passes
from edgeexport.delegates import load_target
from edgeexport.delegates.tflite import emit_model, operator_names
from edgeexport.exporter import export, parse_input_spec
from edgeexport.validate import error_stats
from tests.conftest import MODELS

_CACHE: dict[str, tuple] = {}


def qdq(name: str, tmp_path_factory) -> tuple:
    """(float ExportResult, QDQ IR model, path of the QDQ .onnx)."""
    if name in _CACHE:
        return _CACHE[name]
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    factory, shapes = MODELS[name]
    result = export(factory, input_specs=[parse_input_spec(s) for s in shapes])
    passes.optimize(result.model)
    d = tmp_path_factory.mktemp(f"qdq_{name}")
    eir.save(result.model, d / "f.onnx")
    in_name = result.model.graph.inputs[0].name
    rng = np.random.default_rng(0)
    batches = [result.sample[0]] + [rng.standard_normal(result.sample[0].shape, np.float32)
                                    for _ in range(7)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{in_name: b} for b in batches])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(d / "f.onnx"), str(d / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8)
    onnx.shape_inference.infer_shapes_path(str(d / "q.onnx"), str(d / "q.onnx"))
    _CACHE[name] = (result, eir.load(d / "q.onnx"), d / "q.onnx")
    return _CACHE[name]


def _run(data: bytes, tmp_path, feeds):
    from edgeexport.runtimes.litert import LiteRtSession

    path = tmp_path / "q.tflite"
    path.write_bytes(data)
    return LiteRtSession(path).run(feeds)


@pytest.mark.parametrize("name", ["resnet", "mobilenet_v2"])
def test_int8_cnn_parity(name: str, tmp_path, tmp_path_factory) -> None:
    import onnxruntime as ort

    result, qmodel, qpath = qdq(name, tmp_path_factory)
    emitted = emit_model(qmodel)
    feeds = {result.model.graph.inputs[0].name: result.sample[0]}
    got = _run(emitted.data, tmp_path, feeds)
    out = result.model.graph.outputs[0].name
    vs_torch = error_stats(result.expected[0], got[out])
    assert vs_torch.cosine >= 0.99 and vs_torch.top1_agreement == 1.0, vs_torch
    ort_out = ort.InferenceSession(str(qpath), providers=["CPUExecutionProvider"]).run(
        None, feeds)[0]
    assert error_stats(ort_out, got[out]).cosine >= 0.995
    ops = operator_names(emitted.data)
    # Q/DQ pairs vanish between int8 kernels: QUANTIZE in, DEQUANTIZE out, and one round trip
    # around the global pool, which onnxruntime's quantizer leaves in float
    assert ops.count("DEQUANTIZE") <= 2 and ops.count("QUANTIZE") <= 2, ops
    fp32 = emit_model(result.model).data
    assert len(emitted.data) < 0.35 * len(fp32)


def test_int8_conv_weights_are_per_channel(tmp_path_factory) -> None:
    _, qmodel, _ = qdq("resnet", tmp_path_factory)
    data = emit_model(qmodel).data
    model = fb.ModelT.InitFromPackedBuf(data, 0)
    sub = model.subgraphs[0]
    names = operator_names(data)
    convs = [op for op, n in zip(sub.operators, names) if n == "CONV_2D"]
    assert convs
    for op in convs:
        x, w, b = (sub.tensors[i] for i in op.inputs)
        assert x.type == fb.TensorType.INT8 and w.type == fb.TensorType.INT8
        assert b.type == fb.TensorType.INT32
        assert len(w.quantization.scale) == w.shape[0] > 1
        # bias scale = input scale x weight scale, per channel
        np.testing.assert_allclose(b.quantization.scale,
                                   np.asarray(w.quantization.scale) * x.quantization.scale[0],
                                   rtol=1e-5)


def test_nnapi_per_channel_needs_api_29(tmp_path_factory) -> None:
    _, qmodel, _ = qdq("resnet", tmp_path_factory)
    nnapi = load_target("nnapi")
    c28 = nnapi.coverage(qmodel, argparse.Namespace(android_api=28))
    c29 = nnapi.coverage(qmodel, argparse.Namespace(android_api=29))
    conv28 = [f for f in c28.fallback if f.op == "CONV_2D"]
    assert conv28 and all("per-channel" in f.reason for f in conv28)
    assert not [f for f in c29.fallback if f.op == "CONV_2D"]
    assert c29.delegated_ops > c28.delegated_ops


def test_int8_artifact_is_deterministic(tmp_path_factory) -> None:
    _, qmodel, _ = qdq("resnet", tmp_path_factory)
    assert emit_model(qmodel).data == emit_model(qmodel).data
