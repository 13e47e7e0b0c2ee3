"""Patterns of real architectures on the vulkan target, exported from PyTorch and compared with
PyTorch eager on ncnn-vulkan (lavapipe in CI) and ncnn-cpu: MobileViT's unfold/fold through
5-D and 6-D permutes, ViT attention's 5-D qkv permute, GPT-2's causal mask (Where), an audio
front end (Conv1d), BatchNorm after a Linear, EfficientNet's ceil-mode pooler.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgeexport import passes
from edgeexport.delegates.vulkan import REGISTRY
from edgeexport.delegates.vulkan.emit import emit_model
from edgeexport.exporter import export, parse_input_spec
from edgeexport.metrics import error_stats
from edgeexport.runtimes import get
from tests.conftest import require_vulkan

RUNTIMES = ["ncnn-cpu", pytest.param("ncnn-vulkan", marks=pytest.mark.vulkan)]


class Unfold5(nn.Module):
    """MobileViT's unfold and fold written with 5-D permutes (batch folded into channels)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, c, h, w = x.shape
        p = 2
        y = x.reshape(c, h // p, p, w // p, p).permute(2, 4, 1, 3, 0)  # (ph, pw, nh, nw, C)
        y = torch.relu(y.reshape(1, p * p, (h // p) * (w // p), c)) * 2
        y = y.reshape(p, p, h // p, w // p, c).permute(4, 2, 0, 3, 1)  # (C, nh, ph, nw, pw)
        return y.reshape(1, c, h, w)


class Unfold6(nn.Module):
    """timm MobileViT-v2's unfold: (B, C, nh, ph, nw, pw).permute(0, 1, 3, 5, 2, 4)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = 2
        y = x.reshape(b, c, h // p, p, w // p, p).permute(0, 1, 3, 5, 2, 4)
        return torch.tanh(y.reshape(b, c, p * p, -1))


class QKV(nn.Module):
    """ViT attention with a relative-position bias (not fused into MultiHeadAttention): the
    qkv projection goes through a 5-D permute and unbind."""

    def __init__(self, d: int = 16, heads: int = 2, n: int = 8) -> None:
        super().__init__()
        self.qkv, self.heads = nn.Linear(d, 3 * d), heads
        self.rel = nn.Parameter(torch.randn(heads, n, n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        a = (q @ k.transpose(-2, -1) * 0.5 + self.rel).softmax(-1)
        return (a @ v).transpose(1, 2).reshape(b, n, c)


class CausalScores(nn.Module):
    """GPT-2's eager attention mask: where(tril, scores, finfo.min), then softmax."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        mask = torch.tril(torch.ones(n, n, dtype=torch.bool))
        scores = torch.where(mask, x * 0.5, torch.tensor(torch.finfo(x.dtype).min))
        return scores.softmax(-1)


class AudioFrontEnd(nn.Module):
    """wav2vec2 / Whisper-like: strided Conv1d, GELU, grouped and depthwise Conv1d."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(1, 8, 10, stride=5)
        self.c2 = nn.Conv1d(8, 8, 3, stride=2, padding=1, groups=2)
        self.c3 = nn.Conv1d(8, 8, 5, padding=2, groups=8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c3(nn.functional.gelu(self.c2(nn.functional.gelu(self.c1(x)))))


class LinearBatchNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.bn = nn.Linear(8, 6), nn.BatchNorm1d(6)
        self.bn.running_mean.uniform_(-1, 1)
        self.bn.running_var.uniform_(0.5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.fc(x)))


class CeilPooler(nn.Module):
    """HF EfficientNet's pooler: AvgPool2d(hidden_dim, ceil_mode=True) on a 2x2 feature map,
    one window far longer than the input (PyTorch divides by the 4 values it covers)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.pool = nn.Conv2d(3, 32, 1), nn.AvgPool2d(320, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.conv(x))).flatten(1)


CASES = {"unfold5": (Unfold5, "1,8,6,6"), "unfold6": (Unfold6, "1,8,6,4"), "qkv": (QKV, "1,8,16"),
         "causal": (CausalScores, "1,2,6,6"), "audio": (AudioFrontEnd, "1,1,400"),
         "linear_bn": (LinearBatchNorm, "1,8"), "ceil_pooler": (CeilPooler, "1,3,2,2")}


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("name", list(CASES))
def test_pattern_matches_pytorch(name: str, runtime: str, tmp_path) -> None:
    if runtime == "ncnn-vulkan":
        require_vulkan()
    cls, shape = CASES[name]
    torch.manual_seed(0)
    model = cls().eval()
    r = export(model, input_specs=[parse_input_spec(shape)])
    passes.optimize(r.model)
    assert [n.op_type for n in r.model.graph if REGISTRY.why_not(n) is not None] == []
    emit_model(r.model, tmp_path, "model.param", "fp32")
    session = get(runtime).load(tmp_path / "model.param")
    assert session.details["vulkan"] is (runtime == "ncnn-vulkan")
    x = np.random.default_rng(3).standard_normal(r.sample[0].shape).astype(np.float32)
    got = session.run({r.inputs[0].name: x})[r.model.graph.outputs[0].name]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    stats = error_stats(want, got)
    assert got.shape == want.shape and stats.max_rel_err <= 1e-4, stats


def test_elementwise_on_more_axes_than_ncnn_holds_is_refused_with_the_reason(tmp_path) -> None:
    """A 5-D tensor with five non-unit axes can pass through reshapes and permutes, but an op
    computing on it has no ncnn blob to write: the coverage reason says so."""
    class Scaled5(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x.reshape(2, 3, 2, 2, 3).permute(4, 3, 2, 1, 0) * 2).reshape(1, 72)

    r = export(Scaled5(), input_specs=[parse_input_spec("1,72")])
    passes.optimize(r.model)
    reasons = {n.op_type: REGISTRY.why_not(n) for n in r.model.graph}
    assert reasons["Transpose"] is None
    assert "more than 4 non-unit axes" in reasons["Mul"]
