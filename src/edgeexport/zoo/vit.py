"""A small ViT and a MobileViT-style hybrid (conv stem + MobileNetV2 blocks + transformer).

Both use nn.MultiheadAttention-free attention written out, as exported transformer graphs look.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeexport.zoo.mobilenet import InvertedResidual


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, image: int = 32, patch: int = 8, dim: int = 64, depth: int = 2,
                 heads: int = 4, num_classes: int = 10) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        n = (image // patch) ** 2
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


class MobileViTBlock(nn.Module):
    """Local conv features, unfolded into patches, a transformer over them, folded back."""

    def __init__(self, channels: int, dim: int, depth: int, patch: int = 2) -> None:
        super().__init__()
        self.patch = patch
        self.local = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels), nn.SiLU(),
            nn.Conv2d(channels, dim, 1, bias=False))
        self.transformer = nn.Sequential(*[Block(dim, 2) for _ in range(depth)])
        self.proj = nn.Sequential(nn.Conv2d(dim, channels, 1, bias=False),
                                  nn.BatchNorm2d(channels), nn.SiLU())
        self.fuse = nn.Sequential(nn.Conv2d(2 * channels, channels, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(channels), nn.SiLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.local(x)
        b, d, h, w = y.shape
        p = self.patch
        # (b, d, h, w) -> (b*p*p, h*w/(p*p), d): pixels at the same offset inside each patch attend
        y = y.reshape(b, d, h // p, p, w // p, p).permute(0, 3, 5, 2, 4, 1)
        y = y.reshape(b * p * p, (h // p) * (w // p), d)
        y = self.transformer(y)
        y = y.reshape(b, p, p, h // p, w // p, d).permute(0, 5, 3, 1, 4, 2).reshape(b, d, h, w)
        return self.fuse(torch.cat([x, self.proj(y)], dim=1))


class MobileViTXXS(nn.Module):
    """MobileViT-XXS's geometry (Mehta & Rastegari 2022): 256x256 input, MV2 stages with
    expansion 2, MobileViT blocks of widths 64/80/96 and depths 2/4/3, 1x1 conv to 320, 1000
    classes. Built from this module's blocks (ReLU6 MV2 blocks, 2-head attention)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.SiLU(),
            InvertedResidual(16, 16, 1, 2),
            InvertedResidual(16, 24, 2, 2), InvertedResidual(24, 24, 1, 2),
            InvertedResidual(24, 24, 1, 2),
            InvertedResidual(24, 48, 2, 2), MobileViTBlock(48, 64, depth=2),
            InvertedResidual(48, 64, 2, 2), MobileViTBlock(64, 80, depth=4),
            InvertedResidual(64, 80, 2, 2), MobileViTBlock(80, 96, depth=3),
            nn.Conv2d(80, 320, 1, bias=False), nn.BatchNorm2d(320), nn.SiLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(320, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class MobileViTLike(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.SiLU())
        self.mv2 = nn.Sequential(InvertedResidual(16, 16, 1, 2), InvertedResidual(16, 24, 2, 2))
        self.mvit = MobileViTBlock(24, 32, depth=2)
        self.down = InvertedResidual(24, 32, 2, 2)
        self.head = nn.Sequential(nn.Conv2d(32, 64, 1, bias=False), nn.BatchNorm2d(64), nn.SiLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.down(self.mvit(self.mv2(self.stem(x)))))


def vit_tiny(num_classes: int = 10, seed: int = 0) -> ViT:
    """A 2-block ViT over 32x32 images with 8x8 patches."""
    torch.manual_seed(seed)
    return ViT(num_classes=num_classes).eval()


def vit_deit_tiny(num_classes: int = 1000, seed: int = 0) -> ViT:
    """DeiT-Tiny's geometry (224x224, 16x16 patches, 12 blocks of width 192, 3 heads): a
    deployment-sized transformer for benchmarks (random weights: no pretrained ones offline)."""
    torch.manual_seed(seed)
    return ViT(image=224, patch=16, dim=192, depth=12, heads=3, num_classes=num_classes).eval()


def mobilevit_xxs_like(num_classes: int = 10, seed: int = 0) -> MobileViTLike:
    """A MobileViT-style hybrid over 64x64 images."""
    torch.manual_seed(seed)
    return _random_batchnorm(MobileViTLike(num_classes)).eval()


def mobilevit_xxs(num_classes: int = 1000, seed: int = 0) -> MobileViTXXS:
    """A MobileViT-XXS-sized hybrid (256x256, 1.3 M parameters): deployment size for benchmarks
    (random weights, BatchNorm statistics randomized so that no layer is an identity)."""
    torch.manual_seed(seed)
    return _random_batchnorm(MobileViTXXS(num_classes)).eval()


def _random_batchnorm(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            m.running_var.uniform_(0.5, 1.5)
    return model
