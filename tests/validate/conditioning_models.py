"""Small models whose parity is hard to judge for reasons other than the conversion: an
ill-conditioned net, an fp16 segmentation head, a linear-attention block, an op no target takes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class _Cancel(nn.Module):
    """Two BatchNorm'd convolutions that nearly cancel: real-looking BN statistics (variances of
    1e-6) give a gain of ~1000, and the branches' weights differ by 1e-4, so float32 rounding of
    each branch is amplified ~1e4 in their difference (the LeViT/EfficientViT failure mode)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
        self.bn_a, self.bn_b = nn.BatchNorm2d(c), nn.BatchNorm2d(c)
        with torch.no_grad():
            self.b.weight.copy_(self.a.weight * (1 + 1e-4 * torch.randn_like(self.a.weight)))
            self.b.bias.copy_(self.a.bias)
            for bn in (self.bn_a, self.bn_b):
                bn.running_var.fill_(1e-6)
                bn.running_mean.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn_a(self.a(x)) - self.bn_b(self.b(x)))


def ill_conditioned() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), _Cancel(8), nn.Conv2d(8, 4, 1)).eval()


class _Segmenter(nn.Module):
    """LRASPP/DeepLab-style: strided conv backbone, an ASPP-ish head (1x1 + dilated 3x3 +
    pooled branch), classifier, bilinear upsample to the input size: [1, classes, H, W]."""

    def __init__(self, classes: int = 6) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU())
        self.b1 = nn.Sequential(nn.Conv2d(32, 16, 1), nn.ReLU())
        self.b2 = nn.Sequential(nn.Conv2d(32, 16, 3, padding=2, dilation=2), nn.ReLU())
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(32, 16, 1), nn.Sigmoid())
        self.classifier = nn.Conv2d(32, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone(x)
        y = torch.cat([self.b1(f), self.b2(f)], 1) * torch.cat([self.pool(f)] * 2, 1)
        return F.interpolate(self.classifier(y), size=x.shape[-2:], mode="bilinear",
                             align_corners=False)


def segmenter() -> nn.Module:
    torch.manual_seed(0)
    return _Segmenter().eval()


def segmenter_broken() -> nn.Module:
    """A wrong layer: the classifier's weights for class 0 negated."""
    model = segmenter()
    with torch.no_grad():
        model.classifier.weight[0].neg_()
    return model


class _Sign(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sign(self.conv(x))


def unsupported_on_vulkan() -> nn.Module:
    """torch.sign: ONNX Sign, which has no ncnn mapping."""
    torch.manual_seed(0)
    return _Sign().eval()


class _LinearAttention(nn.Module):
    """Linear attention (ReLU kernels, division by a sum): out = phi(q) (phi(k)^T v) /
    (phi(q) . sum phi(k)). The normaliser reaches ~1e6 on unit inputs: inf in fp16, then NaN."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(dim, dim) for _ in range(3))
        self.out = nn.Linear(dim, dim)
        with torch.no_grad():
            for lin in (self.q, self.k):
                lin.weight.mul_(20.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = torch.relu(self.q(x)), torch.relu(self.k(x)), self.v(x)
        kv = torch.matmul(k.transpose(1, 2), v)                       # [B, D, D]
        den = torch.matmul(q, k.sum(dim=1, keepdim=True).transpose(1, 2))  # [B, N, 1]
        return self.out(torch.matmul(q, kv) / (den + 1e-6))


def linear_attention() -> nn.Module:
    torch.manual_seed(0)
    return _LinearAttention().eval()


class _Fp16Cancel(nn.Module):
    """Well-conditioned in float32, not in fp16: two convolutions whose weights differ by a
    relative `eps`, subtracted. fp16 rounds each branch (and its weights) to 2^-11 of its size,
    which is ~1/eps larger relative to their difference; float32's 2^-24 stays far below 1e-4."""

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.a, self.b = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 4, 1, bias=False)  # (a bias would drown the difference)
        with torch.no_grad():
            self.b.weight.copy_(self.a.weight * (1 + eps * torch.randn_like(self.a.weight)))
            self.b.bias.copy_(self.a.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.stem(x))
        return self.head(self.a(h) - self.b(h))


def fp16_sensitive(eps: float = 0.01) -> nn.Module:
    torch.manual_seed(0)
    return _Fp16Cancel(eps).eval()


def fp16_unstable() -> nn.Module:
    """PyTorch's own fp16 output is below the fixed fp16 bound (cosine ~0.9975)."""
    return fp16_sensitive(0.005)


def _one_weight_off(model: _Fp16Cancel) -> _Fp16Cancel:
    """A broken artifact's model: one weight of branch `a` off by 0.5 (a wrong layer)."""
    with torch.no_grad():
        model.a.weight[0, 0, 1, 1] += 0.5
    return model


def fp16_sensitive_broken() -> nn.Module:
    return _one_weight_off(fp16_sensitive())


def fp16_unstable_broken() -> nn.Module:
    return _one_weight_off(fp16_unstable())
