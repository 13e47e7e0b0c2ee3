"""Fashion-MNIST from Debian's dataset-fashion-mnist package, and the small CNN that the
quantization accuracy test and benchmark train on it (one epoch on 20k images, ~13 s here).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

ROOT = Path("/usr/share/datasets/fashion-mnist")
MEAN, STD = 0.286, 0.353


def available() -> bool:
    return (ROOT / "t10k-images-idx3-ubyte.gz").exists()


def _read(name: str, offset: int) -> np.ndarray:
    with gzip.open(ROOT / name) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def load(train_limit: int = 20000) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, test images, test labels); images Nx1x28x28 uint8."""
    if not available():
        raise FileNotFoundError(f"{ROOT}: install the Debian package dataset-fashion-mnist")
    xtr = _read("train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)[:train_limit]
    ytr = _read("train-labels-idx1-ubyte.gz", 8)[:train_limit]
    xte = _read("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    yte = _read("t10k-labels-idx1-ubyte.gz", 8)
    return xtr, ytr, xte, yte


def normalize(x: np.ndarray) -> np.ndarray:
    return ((x.astype(np.float32) / 255.0) - MEAN) / STD


def train_small_cnn(xtr: np.ndarray, ytr: np.ndarray, seed: int = 0):  # -> nn.Module
    """A 2-conv CNN trained for one epoch (batch 128, Adam); ~86% test accuracy."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(32 * 7 * 7, 10))
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    x, y = torch.from_numpy(normalize(xtr)), torch.from_numpy(ytr.astype(np.int64))
    for i in range(0, len(x), 128):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x[i:i + 128]), y[i:i + 128]).backward()
        opt.step()
    return net.eval()
