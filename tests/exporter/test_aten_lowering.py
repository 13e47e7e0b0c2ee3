"""The direct ATen -> IR lowering, op by op: each small module is exported, must take the direct
path (no torch.onnx), and must compute what PyTorch eager computes in onnxruntime and in the
reference runtime. Programs the lowering refuses fall back to torch.onnx and say why."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgeexport import ir as eir
from edgeexport import profile
from edgeexport.errors import UnsupportedOpError
from edgeexport.exporter import export
from edgeexport.exporter.aten import LOWERINGS
from edgeexport.exporter.aten.registry import lowers
from edgeexport.exporter.capture import LOWERING_PROP
from edgeexport.runtimes import reference


class Fn(nn.Module):
    def __init__(self, fn, *modules: nn.Module) -> None:
        super().__init__()
        self.fn, self.mods = fn, nn.ModuleList(modules)

    def forward(self, *xs):
        return self.fn(self.mods, *xs)


def r(*shape, lo=-2.0, hi=2.0, seed=0):
    g = torch.Generator().manual_seed(seed + len(shape))
    return torch.rand(*shape, generator=g) * (hi - lo) + lo


CASES = {
    # convolution and pooling
    "conv2d": (Fn(lambda m, x: m[0](x), nn.Conv2d(3, 8, 3, stride=2, padding=1)), [r(1, 3, 9, 9)]),
    "conv2d_same_dilated": (Fn(lambda m, x: m[0](x), nn.Conv2d(4, 4, 3, padding="same",
                                                            dilation=2, groups=2, bias=False)),
                            [r(1, 4, 8, 8)]),
    "conv1d": (Fn(lambda m, x: m[0](x), nn.Conv1d(3, 5, 3)), [r(2, 3, 11)]),
    "conv_transpose2d": (Fn(lambda m, x: m[0](x), nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1,
                                                                     output_padding=1)),
                         [r(1, 4, 5, 5)]),
    "depthwise_bn_relu6": (Fn(lambda m, x: F.relu6(m[1](m[0](x))),
                              nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False),
                              nn.BatchNorm2d(6)), [r(1, 6, 7, 7)]),
    "max_pool2d": (Fn(lambda m, x: F.max_pool2d(x, 3, 2, 1)), [r(1, 2, 9, 9)]),
    "max_pool2d_ceil": (Fn(lambda m, x: F.max_pool2d(x, 2, 2, ceil_mode=True)), [r(1, 2, 7, 7)]),
    "avg_pool2d": (Fn(lambda m, x: (F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
                                    F.avg_pool2d(x, (2, 3), 1, 1, divisor_override=2),
                                    F.avg_pool2d(x, 3, 1, 1, True, False, 2))),
                   [r(1, 2, 9, 9)]),
    "adaptive_avg_pool": (Fn(lambda m, x: F.adaptive_avg_pool2d(x, 1).flatten(1)),
                          [r(2, 4, 5, 5)]),
    "adaptive_avg_pool_2x2": (Fn(lambda m, x: F.adaptive_avg_pool2d(x, 2)), [r(1, 3, 8, 6)]),
    # windows of different sizes (PyTorch: floor(i*In/Out) .. ceil((i+1)*In/Out))
    "adaptive_avg_pool_uneven": (Fn(lambda m, x, y: (F.adaptive_avg_pool2d(x, (3, 4)),
                                                     F.adaptive_avg_pool1d(y, 5))),
                                 [r(1, 3, 7, 9), r(2, 4, 8)]),
    # ceil mode adds a last window that PyTorch divides by its part inside the padded input
    "avg_pool_ceil": (Fn(lambda m, x: (F.avg_pool2d(x, 3, 2, ceil_mode=True),
                                       F.avg_pool2d(x, 3, 2, 1, ceil_mode=True),
                                       F.avg_pool2d(x, (3, 2), 2, (1, 0), ceil_mode=True,
                                                    count_include_pad=False),
                                       F.avg_pool2d(x, 2, 3, ceil_mode=True, divisor_override=3),
                                       F.avg_pool1d(x[0], 3, 2, ceil_mode=True))),
                      [r(1, 2, 8, 7)]),
    # one window longer than the padded input (HF EfficientNet's pooler): clipped to it
    "avg_pool_one_long_window": (Fn(lambda m, x: (
        F.avg_pool2d(x, 20, ceil_mode=True),
        F.avg_pool2d(x, (20, 3), (20, 2), 1, ceil_mode=True, count_include_pad=False),
        F.avg_pool2d(x, 20, ceil_mode=True, divisor_override=3))), [r(1, 2, 3, 7)]),
    "pixel_shuffle": (Fn(lambda m, x: F.pixel_shuffle(x, 2)), [r(1, 8, 3, 3)]),
    "upsample_nearest": (Fn(lambda m, x: F.interpolate(x, scale_factor=2, mode="nearest")),
                         [r(1, 2, 3, 4)]),
    "upsample_bilinear": (Fn(lambda m, x: F.interpolate(x, size=(7, 5), mode="bilinear")),
                          [r(1, 2, 3, 4)]),
    "upsample_bilinear_corners": (Fn(lambda m, x: F.interpolate(x, scale_factor=2, mode="bilinear",
                                                                align_corners=True)),
                                  [r(1, 2, 3, 4)]),
    "pad_flip": (Fn(lambda m, x: (F.pad(x, (1, 2, 0, 1), value=0.5), F.pad(x, (2, 2)),
                                  x.flip(1, -1))), [r(1, 2, 3, 4)]),
    # normalization, softmax, matrix products
    "layer_norm": (Fn(lambda m, x: m[0](x), nn.LayerNorm(8)), [r(2, 3, 8)]),
    "layer_norm_no_affine": (Fn(lambda m, x: F.layer_norm(x, (3, 8))), [r(2, 3, 8)]),
    "group_norm": (Fn(lambda m, x: m[0](x), nn.GroupNorm(2, 4)), [r(1, 4, 3, 3)]),
    "softmax_log_softmax": (Fn(lambda m, x: (x.softmax(-1), F.log_softmax(x, 1))), [r(2, 5, 3)]),
    "linear_2d_3d": (Fn(lambda m, x, y: (m[0](x), m[0](y)), nn.Linear(6, 4)),
                     [r(3, 6), r(2, 3, 6)]),
    "linear_no_bias": (Fn(lambda m, x: m[0](x), nn.Linear(6, 4, bias=False)), [r(2, 3, 6)]),
    "matmul_bmm_addmm": (Fn(lambda m, a, b: (a @ b, torch.bmm(a, b),
                                             torch.addmm(b[0, 0], a[0], b[0], beta=0.5))),
                         [r(2, 4, 4), r(2, 4, 4)]),
    "sdpa_causal_mask": (Fn(lambda m, q, k, v: (F.scaled_dot_product_attention(q, k, v,
                                                                              is_causal=True),
                                                F.scaled_dot_product_attention(
                                                    q, k, v, attn_mask=q[..., :1] > 0))),
                         [r(1, 2, 5, 8), r(1, 2, 5, 8, seed=1), r(1, 2, 5, 8, seed=2)]),
    # constant masks become an additive bias; row 3 of the first is hidden whole (output 0)
    "sdpa_constant_masks": (Fn(lambda m, q, k, v: (
        F.scaled_dot_product_attention(q, k, v, attn_mask=(torch.arange(5)[:, None] != 3)
                                       .expand(5, 5)),
        F.scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(5, 5, dtype=torch.bool)),
        F.scaled_dot_product_attention(q, k, v, attn_mask=(torch.arange(5.0) * -0.5).expand(5, 5),
                                       is_causal=False))),
        [r(1, 2, 5, 8), r(1, 2, 5, 8, seed=1), r(1, 2, 5, 8, seed=2)]),
    "reductions": (Fn(lambda m, x: (x.mean((1, 2), keepdim=True), x.sum(-1), x.amax(1),
                                    x.amin((0, 2)), x.argmax(1), x.argmin(-1, keepdim=True),
                                    x.mean(), x.sum(), x.argmax(), x.prod(1), x.prod(),
                                    (x > 1).any(1), x.all(), x.cumsum(1))), [r(2, 3, 4)]),
    "vector_norms": (Fn(lambda m, x: (F.normalize(x, dim=-1), torch.linalg.vector_norm(x),
                                      torch.linalg.vector_norm(x, 1, dim=(0, 2), keepdim=True),
                                      torch.linalg.vector_norm(x, float("inf"), dim=1),
                                      torch.linalg.vector_norm(x, float("-inf"), dim=-1),
                                      torch.linalg.vector_norm(x, 3, dim=1, keepdim=True),
                                      x.norm(dim=-1))), [r(2, 3, 4)]),
    "topk_sort": (Fn(lambda m, x: (*x.topk(3, 1), *x.topk(2, -1, largest=False), *x.sort(0),
                                   *torch.sort(x, dim=-1, descending=True, stable=True))),
                  [r(4, 5, 6)]),
    "native_norms": (Fn(lambda m, x: (*torch.native_layer_norm(x, [4], None, None, 1e-5),
                                      torch.native_group_norm(x.view(2, 3, 4, 1), None, None, 2,
                                                              3, 4, 1, 1e-5)[0])),
                     [r(2, 3, 4)]),
    # elementwise with PyTorch's type promotion
    "arithmetic": (Fn(lambda m, x, y: (x + 2 * y, x - y, 3 - x, x * y, x / (y.abs() + 1),
                                       x ** 2, torch.maximum(x, y), torch.minimum(x, y),
                                       torch.rsub(x, y, alpha=2), x.add(y, alpha=0.5))),
                   [r(2, 3), r(2, 3, seed=1)]),
    "int_float_promotion": (Fn(lambda m, x, i: (x * i, i + 1, i * 0.5, (i > 1) & (x > 0),
                                                torch.where(i > 1, x, 0.0), i.float() / 3,
                                                (1 - i.to(torch.float32)) * -1e4)),
                            [r(2, 3), torch.tensor([[0, 1, 2], [3, 2, 1]])]),
    "comparisons": (Fn(lambda m, x, y: (x == y, x != y, x < 0.5, x <= y, x > y, x >= 0,
                                        ~(x > y), torch.logical_xor(x > 0, y > 0))),
                    [r(2, 3), r(2, 3, seed=1)]),
    "unary": (Fn(lambda m, x: (x.relu(), x.sigmoid(), x.tanh(), x.exp(), (x.abs() + 1).log(),
                               x.abs().sqrt(), (x.abs() + 1).rsqrt(), -x, x.reciprocal(),
                               x.sin(), x.cos(), x.erf(), x.floor(), x.ceil(), x.round(),
                               x.sign(), torch.atan(x), x.trunc(), x.round(decimals=1),
                               x.abs().log2(), x.abs().log10(),
                               x.clamp(min=x[:1] - 1, max=x[:1]))), [r(2, 5)]),
    "activations": (Fn(lambda m, x: (F.hardtanh(x, -0.5, 1.5), F.relu6(x * 4), x.clamp(-1, 1),
                                     x.clamp(min=0.2), F.leaky_relu(x, 0.1), F.elu(x),
                                     F.gelu(x), F.gelu(x, approximate="tanh"), F.silu(x),
                                     F.hardswish(x * 4), F.hardsigmoid(x * 4), F.softplus(x),
                                     F.mish(x), m[0](x)), nn.PReLU(1)), [r(2, 5)]),
    "prelu_channels": (Fn(lambda m, x: m[0](x), nn.PReLU(3)), [r(1, 3, 2, 2)]),
    "inplace_relu": (Fn(lambda m, x: m[1](m[0](x)) + 1, nn.Conv2d(2, 2, 1),
                        nn.ReLU(inplace=True)), [r(1, 2, 3, 3)]),
    # shapes and data movement
    "views": (Fn(lambda m, x: (x.view(2, 12), x.reshape(-1), x.flatten(1), x.unsqueeze(1),
                               x[:, :1].squeeze(1), x.unflatten(2, (2, 2)),
                               x.permute(2, 0, 1), x.transpose(0, 1), x[0].t())), [r(2, 3, 4)]),
    "indexing": (Fn(lambda m, x: (x[1], x[:, 1:3], x[..., ::2], x[:, -1], x.narrow(2, 1, 2),
                                  x.index_select(1, torch.tensor([2, 0])))), [r(2, 3, 4)]),
    # advanced indexing: runtime indices (Gather on one axis, GatherND on several: leading,
    # adjacent after a slice, apart) and constant ones (a Reshape, a Slice or one flat Gather)
    "index_runtime": (Fn(lambda m, x, i, j: (x[:, i], x[i, j], x[:, i.clamp(min=0), j],
                                             x[i, :, j])),
                      [r(3, 4, 5), torch.tensor([[0, 2], [1, -1]]),
                       torch.tensor([[1, 0], [3, 2]])]),
    "index_constant": (Fn(lambda m, x: (x[torch.tensor([0, 2]), torch.tensor([1, -1])],
                                        x[torch.tensor([[0], [1]]), torch.arange(4)],
                                        x[:, torch.arange(1, 4), torch.tensor([[2], [0]])],
                                        x[torch.tensor([1, 0]), :, torch.tensor([4, 2])],
                                        x[torch.zeros(1, 1, dtype=torch.long), torch.arange(4)])),
                       [r(3, 4, 5)]),
    "index_put_masked_fill_gather": (
        Fn(lambda m, x, v, i: (torch.index_put(x, (torch.tensor([0, 2]), torch.tensor([1, -1])),
                                               v),
                               torch.index_put(x, (torch.tensor([1]),), v[:1, None]),
                               x.masked_fill(x > 0, -1.0), x.masked_fill(x < 0, v[0, 0]),
                               torch.gather(x, 1, i), torch.gather(x, 2, torch.tensor(
                                   [[[4, 0]], [[1, 3]], [[2, 2]]])))),
        [r(3, 4, 5), r(2, 5, seed=1), torch.tensor([[[0, 3, 1, 2, 0]], [[1, 1, 2, 3, 3]],
                                                    [[2, 0, 0, 1, 3]]])]),
    "cat_stack_split": (Fn(lambda m, x, y: (torch.cat([x, y], 1), torch.stack([x, y], 0),
                                            *x.split(2, -1), *torch.chunk(y, 2, 1),
                                            *x.unbind(0))), [r(2, 3, 4), r(2, 3, 4, seed=1)]),
    "diagonal": (Fn(lambda m, x: (x.diagonal(), x.diagonal(1, 1, 2), x.diagonal(-2, -1, 0),
                                  torch.diagonal(x[0], 3))), [r(3, 4, 5)]),
    "scatter_into_slices": (Fn(lambda m, x, y: (torch.slice_scatter(x, y[:, :2], 1, 1, 3),
                                                torch.slice_scatter(x, y[:, :2], 1, 0, 4, 2),
                                                torch.slice_scatter(x, y[:, :1], 1, 3),
                                                torch.select_scatter(x, y[:, 0], 1, -1))),
                            [r(2, 4, 3), r(2, 3, 3, seed=1)]),
    "zero_d_input": (Fn(lambda m, x, s: (torch.select_scatter(x, s, 0, 2), x * s)),
                     [r(5), torch.tensor(0.25)]),
    "expand_repeat": (Fn(lambda m, x: (x.expand(3, 2, 4), x.repeat(2, 1, 3), x.expand_as(
        torch.zeros(2, 2, 4)))), [r(1, 2, 4)]),
    "constants": (Fn(lambda m, x: (x + torch.arange(4), torch.zeros_like(x) + x,
                                   torch.ones_like(x) * 2, torch.full_like(x, 3.0), x.new_zeros(2)
                                   + 1)), [r(3, 4)]),
    "embedding_cast": (Fn(lambda m, i: (m[0](i), i.to(torch.float32), i.float().softmax(-1)),
                          nn.Embedding(10, 4)), [torch.tensor([[1, 5, 9], [0, 2, 2]])]),
}


def _eager(module: nn.Module, inputs: list[torch.Tensor]) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(*[t.clone() for t in inputs])
    out = out if isinstance(out, (tuple, list)) else (out,)
    return [o.numpy() for o in out]


@pytest.mark.parametrize("name", list(CASES))
def test_direct_lowering(name: str) -> None:
    import onnxruntime as ort

    module, inputs = CASES[name]
    module.eval()
    result = export(module, example_inputs=tuple(inputs))
    model = result.model
    assert model.metadata_props[LOWERING_PROP] == "direct"
    for node in eir.iter_nodes(model.graph):
        assert profile.check_node(node) is None, node
    # every value carries the shape PyTorch computed: ONNX's own inference must agree with it
    onnx.shape_inference.infer_shapes(onnx.load_from_string(eir.to_bytes(model)),
                                      check_type=True, strict_mode=True)
    expected = _eager(module, inputs)
    feeds = {s.name: a for s, a in zip(result.inputs, result.sample)}
    ref = reference.run(model, feeds)
    sess = ort.InferenceSession(eir.to_bytes(model), providers=["CPUExecutionProvider"])
    got_ort = sess.run(None, feeds)
    assert len(model.graph.outputs) == len(expected)
    for i, (want, value) in enumerate(zip(expected, model.graph.outputs)):
        for runtime, got in (("reference", ref[value.name]), ("onnxruntime", got_ort[i])):
            assert got.shape == want.shape, (runtime, i, got.shape, want.shape)
            assert got.dtype == want.dtype, (runtime, i, got.dtype, want.dtype)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5,
                                       err_msg=f"{runtime} output {i}")


def test_a_window_longer_than_the_input_pads_nothing() -> None:
    """AvgPool2d(320, ceil_mode=True) on 2x2 is a 2x2 mean: no 320x320 zero-padded copy."""
    result = export(nn.AvgPool2d(320, ceil_mode=True), example_inputs=(r(1, 4, 2, 2),))
    ops = {n.op_type: n for n in result.model.graph}
    assert "Pad" not in ops and list(ops["AveragePool"].attributes["kernel_shape"].value) == [2, 2]


def test_every_zoo_model_lowers_directly() -> None:
    from edgeexport.exporter import parse_input_spec
    from edgeexport.zoo import EXAMPLES

    for name, shapes in EXAMPLES.values():
        if name == "mobilenet_v2_pretrained":
            name = "mobilenet_v2"  # same graph, no weight loading
        result = export(f"edgeexport.zoo:{name}",
                        input_specs=[parse_input_spec(s) for s in shapes])
        assert result.model.metadata_props[LOWERING_PROP] == "direct", name


class _AliasedMutation(nn.Module):
    def forward(self, x):
        a = x * 2
        v = a.view(-1)
        a.add_(1)  # v sees this in eager: lowering add_ as add would be wrong
        return v * 1


class _Noise(nn.Module):
    def forward(self, x):
        return x + torch.randn(3)


class _Atan2(nn.Module):
    def forward(self, x):
        return torch.atan2(x, x + 1)


@pytest.mark.parametrize("module,why", [(_AliasedMutation(), "aliases"),
                                        (_Atan2(), "no lowering for aten.atan2")])
def test_fallback_to_torch_onnx_says_why(module: nn.Module, why: str) -> None:
    x = r(2, 3)
    result = export(module, example_inputs=(x,))
    how = result.model.metadata_props[LOWERING_PROP]
    assert how.startswith("torch.onnx") and why in how, how
    feeds = {s.name: a for s, a in zip(result.inputs, result.sample)}
    got = reference.run(result.model, feeds)[result.model.graph.outputs[0].name]
    np.testing.assert_allclose(got, _eager(module, [x])[0], rtol=1e-6)


def test_random_ops_are_not_frozen_into_constants() -> None:
    # freezing one draw at export time would be wrong: it reaches the IR as a random op, which
    # no edge target has
    with pytest.raises(UnsupportedOpError, match="RandomNormal"):
        export(_Noise(), example_inputs=(r(2, 3),))


def test_dynamic_batch_uses_torch_onnx() -> None:
    result = export(nn.Linear(3, 2), example_inputs=(r(2, 3),), dynamic_batch=True)
    assert result.model.metadata_props[LOWERING_PROP] == "torch.onnx (symbolic batch)"


def test_registry_rejects_duplicates() -> None:
    assert torch.ops.aten.conv2d.default in LOWERINGS
    with pytest.raises(ValueError, match="already has a lowering"):
        lowers(torch.ops.aten.conv2d.default)(lambda ctx, node, *a: None)
