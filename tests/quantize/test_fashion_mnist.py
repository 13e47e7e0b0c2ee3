"""A small CNN trained here on Fashion-MNIST (Debian dataset-fashion-mnist): int8 test accuracy
on the 10k test images within 0.5 points of fp32 (onnxruntime runs both)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeexport.zoo import fashion_mnist
from tests.conftest import require


@pytest.mark.slow
def test_int8_accuracy_within_half_a_point(tmp_path):
    require(None if fashion_mnist.available() else
            "needs the Debian package dataset-fashion-mnist (scripts/system-deps.sh)")
    import torch

    from edgeexport import passes, quantize
    from edgeexport.exporter import export, parse_input_spec

    from ._helpers import run_ort

    xtr, ytr, xte, yte = fashion_mnist.load()
    net = fashion_mnist.train_small_cnn(xtr, ytr)
    path = tmp_path / "fmnist.pt"
    torch.jit.trace(net, torch.zeros(1, 1, 28, 28)).save(str(path))
    result = export(str(path), input_specs=[parse_input_spec("1,1,28,28")])
    passes.optimize(result.model)
    float_model = quantize.clone(result.model)
    np.save(tmp_path / "calib.npy", fashion_mnist.normalize(xtr[:100]))
    quantize.apply(result, "int8", str(tmp_path / "calib.npy"))
    norm = fashion_mnist.normalize
    test = [{result.inputs[0].name: norm(xte[i:i + 1])} for i in range(len(xte))]
    acc_f = np.mean([o[0].argmax() == t for o, t in zip(run_ort(float_model, test), yte)])
    acc_q = np.mean([o[0].argmax() == t for o, t in zip(run_ort(result.model, test), yte)])
    print(f"fashion-mnist fp32 {100 * acc_f:.2f}% int8 {100 * acc_q:.2f}%")
    assert acc_f > 0.8
    assert abs(acc_f - acc_q) <= 0.005
