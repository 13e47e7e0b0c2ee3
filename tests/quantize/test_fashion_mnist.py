"""A small CNN trained here on Fashion-MNIST (Debian dataset-fashion-mnist): int8 test accuracy
on the 10k test images within 0.5 points of fp32 (onnxruntime runs both)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

ROOT = Path("/usr/share/datasets/fashion-mnist")


def _read(name: str, offset: int) -> np.ndarray:
    with gzip.open(ROOT / name) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / "t10k-images-idx3-ubyte.gz").exists(),
                    reason="needs the Debian package dataset-fashion-mnist")
def test_int8_accuracy_within_half_a_point(tmp_path):
    import torch

    from edgeexport import passes, quantize
    from edgeexport.exporter import export

    from ._helpers import run_ort

    xtr = _read("train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)[:20000]
    ytr = _read("train-labels-idx1-ubyte.gz", 8)[:20000]
    xte = _read("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    yte = _read("t10k-labels-idx1-ubyte.gz", 8)
    norm = lambda x: ((x.astype(np.float32) / 255.0) - 0.286) / 0.353  # noqa: E731
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(32 * 7 * 7, 10))
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    x, y = torch.from_numpy(norm(xtr)), torch.from_numpy(ytr.astype(np.int64))
    for i in range(0, len(x), 128):  # one epoch on 20k images: ~86% here
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x[i:i + 128]), y[i:i + 128]).backward()
        opt.step()
    net.eval()
    path = tmp_path / "fmnist.pt"
    torch.jit.trace(net, torch.zeros(1, 1, 28, 28)).save(str(path))
    from edgeexport.exporter import parse_input_spec

    result = export(str(path), input_specs=[parse_input_spec("1,1,28,28")])
    passes.optimize(result.model)
    float_model = quantize.clone(result.model)
    np.save(tmp_path / "calib.npy", norm(xtr[:100]))
    quantize.apply(result, "int8", str(tmp_path / "calib.npy"))
    test = [{result.inputs[0].name: norm(xte[i:i + 1])} for i in range(len(xte))]
    acc_f = np.mean([o[0].argmax() == t for o, t in zip(run_ort(float_model, test), yte)])
    acc_q = np.mean([o[0].argmax() == t for o, t in zip(run_ort(result.model, test), yte)])
    print(f"fashion-mnist fp32 {100 * acc_f:.2f}% int8 {100 * acc_q:.2f}%")
    assert acc_f > 0.8
    assert abs(acc_f - acc_q) <= 0.005
