"""int8 static (each calibration method), fp16 and dynamic int8 on a CNN and a BERT encoder:
executed on onnxruntime against the float IR; the QDQ contract of DESIGN.md; the budget."""

from __future__ import annotations

import numpy as np
import pytest

from edgeexport import quantize
from edgeexport.ir import initializer_array
from edgeexport.quantize import observe

from ._helpers import cosine, fresh, run_ort


def _feeds(result, n=4, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        f = {}
        for s, a in zip(result.inputs, result.sample):
            f[s.name] = (rng.standard_normal(a.shape).astype(a.dtype) if a.dtype.kind == "f"
                         else np.roll(a, i, axis=-1))
        out.append(f)
    return out


def _calib(tmp_path, result, n=16):
    feeds = _feeds(result, n, seed=1)
    np.savez(tmp_path / "calib.npz", **{k: np.stack([f[k] for f in feeds]) for k in feeds[0]})
    return str(tmp_path / "calib.npz")


def _quality(result, q, feeds) -> float:
    ref = run_ort(result.model, feeds)
    got = run_ort(q.model, feeds)
    return min(cosine(r, g) for rr, gg in zip(ref, got) for r, g in zip(rr, gg))


@pytest.mark.parametrize("method", observe.METHODS)
def test_int8_cnn_each_method(cnn, tmp_path, method):
    q = fresh(cnn)
    info = quantize.apply(q, "int8", _calib(tmp_path, cnn), calibration_method=method)
    assert info["calibration"]["method"] == method and info["quantized_nodes"] > 20
    assert _quality(cnn, q, _feeds(cnn)) > 0.98
    assert info["size_ratio"] <= 0.30  # resnet_small is tiny: proto overhead weighs more
    assert info["per_layer"] and all("sqnr_db" in r for r in info["per_layer"])


@pytest.mark.parametrize("method", observe.METHODS)
def test_int8_bert(bert, tmp_path, method):
    q = fresh(bert)
    info = quantize.apply(q, "int8", _calib(tmp_path, bert), calibration_method=method)
    assert _quality(bert, q, _feeds(bert)) > 0.95
    ops = [n.op_type for n in q.model.graph]
    assert "QuantizeLinear" in ops
    # TFLite's fixed output scale for Softmax
    for n in q.model.graph:
        if n.op_type == "QuantizeLinear" and n.inputs[0].producer() is not None \
                and n.inputs[0].producer().op_type == "Softmax":
            assert float(initializer_array(n.inputs[1])) == pytest.approx(1 / 256)
            assert int(initializer_array(n.inputs[2])) == -128
    assert not info["warnings"]


def test_qdq_contract(cnn, tmp_path):
    q = fresh(cnn)
    quantize.apply(q, "int8", _calib(tmp_path, cnn))
    convs = [n for n in q.model.graph if n.op_type == "Conv"]
    for conv in convs:
        w = conv.inputs[1].producer()
        assert w.op_type == "DequantizeLinear" and w.attributes.get_int("axis") == 0
        assert initializer_array(w.inputs[0]).dtype == np.int8
        assert initializer_array(w.inputs[1]).shape == (initializer_array(w.inputs[0]).shape[0],)
        x = conv.inputs[0].producer()
        assert x.op_type == "DequantizeLinear"
        if len(conv.inputs) > 2:
            b = conv.inputs[2].producer()
            assert initializer_array(b.inputs[0]).dtype == np.int32
            want = float(initializer_array(x.inputs[1])) * initializer_array(w.inputs[1])
            np.testing.assert_allclose(initializer_array(b.inputs[1]), want, rtol=1e-6)
    # MaxPool keeps its input's scale and zero point (TFLite's int8 MAX_POOL_2D contract)
    for n in q.model.graph:
        if n.op_type == "MaxPool":
            dq_in = n.inputs[0].producer()
            q_out = next(u.node for u in n.outputs[0].uses() if u.node.op_type == "QuantizeLinear")
            assert float(initializer_array(dq_in.inputs[1])) == \
                float(initializer_array(q_out.inputs[1]))


@pytest.mark.parametrize("name", ["cnn", "bert"])
def test_fp16_and_dynamic(request, name):
    result = request.getfixturevalue(name)
    feeds = _feeds(result)
    q = fresh(result)
    info = quantize.apply(q, "fp16", None)
    # bert_tiny's weights are small next to its graph: the ratio tends to 50% on real sizes
    assert info["size_ratio"] <= (0.52 if name == "cnn" else 0.6)
    assert _quality(result, q, feeds) > 0.9999
    q = fresh(result)
    info = quantize.apply(q, "dynamic-int8", None)
    assert info["layers"] and _quality(result, q, feeds) > 0.99
    assert not any(n.op_type == "QuantizeLinear" for n in q.model.graph)


def test_random_calibration_warns(cnn, capsys):
    q = fresh(cnn)
    info = quantize.apply(q, "int8", None)
    assert "RANDOM" in info["warnings"][0]
    assert capsys.readouterr().err == ""  # the caller shows it (summary, report.json, --json)


def test_accuracy_budget_keeps_layers_float(cnn, tmp_path):
    calib = _calib(tmp_path, cnn)
    q = fresh(cnn)
    base = quantize.apply(q, "int8", calib, max_error="cosine=0.5")
    assert base["layers_float"] == [] and base["accuracy_budget"]["met"]
    strict = base["vs_float"]["cosine"] + (1 - base["vs_float"]["cosine"]) * 0.5
    q = fresh(cnn)
    info = quantize.apply(q, "int8", calib, max_error=f"cosine={strict}")
    assert info["accuracy_budget"]["met"], info["accuracy_budget"]
    assert info["layers_float"] and all(r["reason"] and r["op"] for r in info["layers_float"])
    assert info["vs_float"]["cosine"] >= strict - 1e-9
