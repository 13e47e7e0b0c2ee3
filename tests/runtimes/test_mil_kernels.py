"""The mil-interpreter's own kernels: checked against PyTorch's ops directly, and independent of
the reference runtime, so a bug in a reference kernel cannot hide in a CoreML parity check.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgeexport.delegates.coreml import TARGET
from edgeexport.exporter import export
from edgeexport.runtimes.mil_kernels import KERNELS
from edgeexport.validate import TOLERANCES, check_runtime

RNG = np.random.default_rng(11)
SRC = Path(__file__).resolve().parents[2] / "src" / "edgeexport" / "runtimes"


def _run(op_type: str, **a: object) -> np.ndarray:
    return KERNELS[op_type](SimpleNamespace(op_type=op_type), a)[0]


def _close(got: np.ndarray, want: torch.Tensor) -> None:
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("groups, stride, dilation, pad", [
    (1, (2, 1), (1, 1), (1, 0, 2, 1)), (4, (1, 1), (2, 2), (2, 2, 2, 2)),
    (2, (1, 2), (1, 3), (0, 0, 0, 0))])
def test_conv_matches_pytorch(groups: int, stride: tuple, dilation: tuple, pad: tuple) -> None:
    x = RNG.standard_normal((2, 4, 9, 10)).astype(np.float32)
    w = RNG.standard_normal((6 if groups != 4 else 8, 4 // groups, 3, 2)).astype(np.float32)
    b = RNG.standard_normal(w.shape[0]).astype(np.float32)
    got = _run("conv", x=x, weight=w, bias=b, strides=stride, dilations=dilation, groups=groups,
               pad_type="custom", pad=np.array(pad, np.int32))
    xt = F.pad(torch.from_numpy(x), (pad[2], pad[3], pad[0], pad[1]))  # MIL: [begin, end] per axis
    _close(got, F.conv2d(xt, torch.from_numpy(w), torch.from_numpy(b), stride, 0, dilation,
                         groups))


def test_conv_same_padding_puts_the_odd_element_last() -> None:
    x = RNG.standard_normal((1, 2, 8, 8)).astype(np.float32)
    w = RNG.standard_normal((3, 2, 4, 4)).astype(np.float32)
    got = _run("conv", x=x, weight=w, strides=[2, 2], pad_type="same")
    _close(got, F.conv2d(F.pad(torch.from_numpy(x), (1, 1, 1, 1)), torch.from_numpy(w),
                         stride=2))
    lower = _run("conv", x=x, weight=w, strides=[1, 1], pad_type="same_lower")
    _close(lower, F.conv2d(F.pad(torch.from_numpy(x), (2, 1, 2, 1)), torch.from_numpy(w)))


@pytest.mark.parametrize("groups, stride, dilation, pad", [
    (1, (2, 3), (1, 2), (1, 1, 0, 0)), (2, (2, 2), (1, 1), (1, 1, 1, 1))])
def test_conv_transpose_matches_pytorch(groups: int, stride: tuple, dilation: tuple,
                                        pad: tuple) -> None:
    x = RNG.standard_normal((1, 4, 5, 6)).astype(np.float32)
    w = RNG.standard_normal((4, 3, 3, 4)).astype(np.float32)
    b = RNG.standard_normal(3 * groups).astype(np.float32)
    got = _run("conv_transpose", x=x, weight=w, bias=b, strides=stride, dilations=dilation,
               groups=groups, pad_type="custom", pad=np.array(pad, np.int32))
    want = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                              stride, (pad[0], pad[2]), 0, groups, dilation)
    _close(got, want)


@pytest.mark.parametrize("ceil", [False, True])
@pytest.mark.parametrize("exclude", [False, True])
def test_pools_match_pytorch(ceil: bool, exclude: bool) -> None:
    x = RNG.standard_normal((1, 3, 10, 9)).astype(np.float32)
    args = dict(x=x, kernel_sizes=[3, 3], strides=[2, 2], pad_type="custom",
                pad=np.array([1, 1, 1, 1], np.int32), ceil_mode=ceil)
    t = torch.from_numpy(x)
    _close(_run("max_pool", **args), F.max_pool2d(t, 3, 2, 1, ceil_mode=ceil))
    _close(_run("avg_pool", exclude_padding_from_average=exclude, **args),
           F.avg_pool2d(t, 3, 2, 1, ceil_mode=ceil, count_include_pad=not exclude))


@pytest.mark.parametrize("align, half", [(True, False), (False, True), (False, False)])
def test_upsample_bilinear_matches_pytorch(align: bool, half: bool) -> None:
    x = RNG.standard_normal((1, 2, 4, 5)).astype(np.float32)
    got = _run("upsample_bilinear", x=x, scale_factor_height=2.0, scale_factor_width=3.0,
               align_corners=align, half_pixel_centers=half)
    t = torch.from_numpy(x)
    if align or half:
        want = F.interpolate(t, scale_factor=(2, 3), mode="bilinear", align_corners=align)
    else:  # asymmetric: source = out / scale, the last row and column clamped
        h, w = np.minimum(np.arange(8) / 2, 3), np.minimum(np.arange(15) / 3, 4)
        grid = torch.from_numpy(np.stack(np.meshgrid(w / 4 * 2 - 1, h / 3 * 2 - 1), -1)[None])
        want = F.grid_sample(t.double(), grid, align_corners=True, padding_mode="border").float()
    _close(got, want)


def test_nearest_pixel_shuffle_space_to_depth_match_pytorch() -> None:
    x = RNG.standard_normal((1, 8, 3, 4)).astype(np.float32)
    t = torch.from_numpy(x)
    _close(_run("upsample_nearest_neighbor", x=x, scale_factor_height=2, scale_factor_width=3),
           F.interpolate(t, scale_factor=(2, 3), mode="nearest"))
    _close(_run("pixel_shuffle", x=x, upscale_factor=2), F.pixel_shuffle(t, 2))
    _close(_run("space_to_depth", x=_run("depth_to_space", x=x, block_size=2), block_size=2), t)


def test_norms_reductions_cumsum_band_part() -> None:
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    t = torch.from_numpy(x)
    g, b = RNG.standard_normal(3).astype(np.float32), RNG.standard_normal(3).astype(np.float32)
    m, v = RNG.standard_normal(3).astype(np.float32), RNG.uniform(0.5, 2, 3).astype(np.float32)
    _close(_run("batch_norm", x=x, mean=m, variance=v, gamma=g, beta=b, epsilon=1e-3),
           F.batch_norm(t, *map(torch.from_numpy, (m, v, g, b)), eps=1e-3))
    _close(_run("instance_norm", x=x, gamma=g, beta=b, epsilon=1e-5),
           F.instance_norm(t, weight=torch.from_numpy(g), bias=torch.from_numpy(b)))
    _close(_run("reduce_log_sum_exp", x=x, axes=[1, -1], keep_dims=True),
           torch.logsumexp(t, (1, 3), keepdim=True))
    _close(_run("reduce_l2_norm", x=x, axes=None, keep_dims=False), t.norm())
    excl = _run("cumsum", x=x, axis=-1, exclusive=True, reverse=True)
    _close(excl, t.flip(-1).cumsum(-1).flip(-1) - t)
    _close(_run("band_part", x=x, lower=1, upper=0), torch.tril(t) - torch.tril(t, -2))


def test_no_interpreter_module_imports_the_reference_runtime() -> None:
    for name in ("mil.py", "mil_kernels.py"):
        tree = ast.parse((SRC / name).read_text())
        imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if m and "reference" in m], (name, imported)


class _Net(nn.Module):
    """conv, grouped dilated conv, gelu (erf), pools, transposed conv, batch and instance norm,
    both upsamplings, pixel shuffle, reductions, cumsum: most of what the interpreter runs with
    kernels of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4)
        self.up = nn.ConvTranspose2d(8, 8, 4, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8).eval()
        self.inorm = nn.InstanceNorm2d(8, affine=True)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = F.gelu(self.conv(x))
        y = F.max_pool2d(self.dw(y), 3, 2, 1, ceil_mode=True)
        y = self.bn(F.avg_pool2d(self.up(y), 3, 1, 1))
        y = F.interpolate(self.inorm(y), scale_factor=2, mode="bilinear", align_corners=False)
        y = F.pixel_shuffle(F.interpolate(y, scale_factor=2, mode="nearest"), 2)
        return (y * y).mean(dim=(2, 3)), torch.cumsum(y.amax(dim=1), dim=-1)


def test_a_wrong_reference_kernel_fails_the_reference_not_the_mil_interpreter(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every reference kernel made wrong (float outputs x 1.01) after the artifact is emitted:
    the reference runtime now fails against PyTorch, the MIL interpreter still passes, so its
    numbers come from kernels of its own and coremltools', not from the reference's."""
    from edgeexport import passes
    from edgeexport.exporter.capture import run_eager
    from edgeexport.runtimes import mil
    from edgeexport.runtimes.reference.kernels import KERNELS as REFERENCE

    torch.manual_seed(0)
    x = torch.randn(1, 3, 16, 16)
    result = export(_Net().eval(), example_inputs=(x,))
    passes.optimize(result.model)
    names = [v.name for v in result.model.graph.outputs]
    samples = [{result.inputs[0].name: x.numpy()}]
    expected = [dict(zip(names, run_eager(result.eager, result.inputs, [x.numpy()], "net")))]
    artifact = TARGET.emit(result.model, tmp_path, argparse.Namespace(precision="fp32"))
    onnx_path = tmp_path / "ir.onnx"
    from edgeexport import ir as eir

    eir.save(result.model, onnx_path)
    ops = {op.op_type for op in mil.MilProgram(artifact.path).ops}
    assert {"conv", "conv_transpose", "max_pool", "avg_pool", "upsample_bilinear",
            "upsample_nearest_neighbor", "pixel_shuffle", "cumsum"} <= ops, ops
    assert {"gelu", "erf"} & ops and {"batch_norm", "instance_norm"} & ops, ops
    tol = TOLERANCES["fp32"]
    before = check_runtime("reference", onnx_path, samples, expected, tol, timing_runs=0)
    assert before.passed, before.to_json()

    def wrong(kernel):  # the same op, 1% off wherever it produces floats
        def fn(*args, **kwargs):
            out = kernel.fn(*args, **kwargs)
            if isinstance(out, np.ndarray) and out.dtype.kind == "f":
                return out * out.dtype.type(1.01)
            return out
        return dataclasses.replace(kernel, fn=fn, prepare=None, fuses=False, inplace=None,
                                   takes_prologue=None)

    for op, kernel in list(REFERENCE.items()):
        monkeypatch.setitem(REFERENCE, op, wrong(kernel))
    ref = check_runtime("reference", onnx_path, samples, expected, tol, timing_runs=0)
    assert ref.executed and not ref.passed, ref.to_json()
    got = check_runtime("mil-interpreter", artifact.path, samples, expected, tol, timing_runs=0)
    assert got.executed and got.passed, got.to_json()
