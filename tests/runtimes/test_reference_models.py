"""The reference runtime against onnxruntime: small torch-exported graphs, and single-op opset-20
models for the window and quantization ops whose ONNX node cases are at other op versions.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnx.helper as oh
import onnx_ir as ir
import pytest

from edgeexport import ir as eir
from edgeexport.errors import UnsupportedOpError, UsageError
from edgeexport.runtimes.reference import Interpreter, ReferenceRuntime, run
from tests.conftest import require_module

ort = require_module("onnxruntime")
torch = require_module("torch")
nn = torch.nn

RNG = np.random.default_rng(0)


def _ort(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def _export(module: nn.Module, args: tuple, path: Path) -> ir.Model:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module.eval(), args, dynamo=True, opset_version=20,
                                    verbose=False)
    eir.save(program.model, path)
    return eir.load(path)


def _compare(model: ir.Model, path: Path, feeds: dict[str, np.ndarray], rtol: float = 1e-4,
             atol: float = 1e-5) -> dict[str, np.ndarray]:
    ours, theirs = run(model, feeds), _ort(path, feeds)
    assert set(ours) == set(theirs)
    for name, want in theirs.items():
        assert ours[name].dtype == want.dtype, name
        np.testing.assert_allclose(ours[name], want, rtol=rtol, atol=atol, err_msg=name)
    return ours


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8),              # depthwise, strided
            nn.Conv2d(8, 16, 3, padding=2, dilation=2, groups=4), nn.ReLU(),  # grouped, dilated
            nn.Conv2d(16, 32, 1), nn.Hardswish(),                            # pointwise
            nn.Conv2d(32, 32, 5, stride=2, padding=2, groups=16),            # grouped, multiplier 2
            nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.ConvTranspose2d(32, 8, 3, stride=2, padding=1, output_padding=1),
            nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False),
            nn.Conv2d(8, 8, 1, stride=2), nn.Sigmoid(),
        )
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(dim=(2, 3)))


class Block(nn.Module):
    """A pre-norm transformer block written out: LayerNorm, attention, GELU MLP."""

    def __init__(self, d: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5, dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.norm2(x))


class Embed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Embedding(50, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(self.table(ids).mean(dim=1)))


class Upsample(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = nn.functional.interpolate
        return torch.cat([f(x, scale_factor=2, mode="nearest"),
                          f(x, scale_factor=2, mode="bilinear", align_corners=False),
                          f(x, scale_factor=2, mode="bilinear", align_corners=True),
                          f(x, scale_factor=2, mode="bicubic", align_corners=False)], dim=1)


@pytest.fixture(scope="module")
def convnet(tmp_path_factory: pytest.TempPathFactory) -> tuple[ir.Model, Path]:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ref") / "convnet.onnx"
    net = ConvNet()
    for m in net.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return _export(net, (torch.randn(1, 3, 37, 41),), path), path


def test_convnet_matches_onnxruntime(convnet: tuple[ir.Model, Path]) -> None:
    model, path = convnet
    x = RNG.standard_normal((1, 3, 37, 41)).astype(np.float32)
    _compare(model, path, {model.graph.inputs[0].name: x})


def test_transformer_block_matches_onnxruntime(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _export(Block(), (torch.randn(2, 7, 32),), tmp_path / "block.onnx")
    ops = set(eir.op_types(model))
    assert {"LayerNormalization", "Softmax", "MatMul"} <= ops
    x = RNG.standard_normal((2, 7, 32)).astype(np.float32)
    _compare(model, tmp_path / "block.onnx", {model.graph.inputs[0].name: x})


def test_embedding_gather_matches_onnxruntime(tmp_path: Path) -> None:
    torch.manual_seed(0)
    ids = torch.tensor([[1, 4, 49, 0, 7], [3, 3, 2, 10, 11]])
    model = _export(Embed(), (ids,), tmp_path / "embed.onnx")
    assert "Gather" in eir.op_types(model)
    _compare(model, tmp_path / "embed.onnx", {model.graph.inputs[0].name: ids.numpy()})


def test_resize_modes_match_onnxruntime(tmp_path: Path) -> None:
    model = _export(Upsample(), (torch.randn(1, 2, 5, 7),), tmp_path / "up.onnx")
    assert "Resize" in eir.op_types(model)
    x = RNG.standard_normal((1, 2, 5, 7)).astype(np.float32)
    _compare(model, tmp_path / "up.onnx", {model.graph.inputs[0].name: x})


def test_keep_all_returns_every_intermediate(convnet: tuple[ir.Model, Path]) -> None:
    model, _ = convnet
    name = model.graph.inputs[0].name
    x = RNG.standard_normal((1, 3, 37, 41)).astype(np.float32)
    interpreter = Interpreter(model)
    outputs = interpreter.run({name: x})
    everything = interpreter.run({name: x}, keep_all=True)
    assert set(outputs) == {v.name for v in model.graph.outputs}
    produced = {v.name for node in model.graph for v in node.outputs
                if v.name and node.op_type != "Constant"}
    assert produced <= set(everything)
    for key, value in outputs.items():  # prepared once, run twice: same results
        np.testing.assert_array_equal(everything[key], value)


def test_runtime_loads_a_file_and_exposes_intermediates(convnet: tuple[ir.Model, Path]) -> None:
    model, path = convnet
    runtime = ReferenceRuntime()
    assert runtime.unavailable_reason() is None and runtime.formats == ("onnx",)
    session = runtime.load(path)
    x = RNG.standard_normal((1, 3, 37, 41)).astype(np.float32)
    feeds = {model.graph.inputs[0].name: x}
    assert set(session.run(feeds)) == {v.name for v in model.graph.outputs}
    assert len(session.run_all(feeds)) > len(model.graph.outputs)


# --- single ops at opset 20 ------------------------------------------------------------------

def _single(op: str, inputs: list[np.ndarray | None], n_outputs: int = 1,
            initializers: dict[str, np.ndarray] | None = None, opset: int = 20,
            **attrs) -> onnx.ModelProto:
    names = [f"in{i}" if a is not None else "" for i, a in enumerate(inputs)]
    outs = [f"out{i}" for i in range(n_outputs)]
    node = oh.make_node(op, names, outs, **attrs)
    elem = oh.np_dtype_to_tensor_dtype
    graph_inputs = [oh.make_tensor_value_info(n, elem(a.dtype), a.shape)
                    for n, a in zip(names, inputs) if a is not None and n not in (initializers or {})]
    inits = [onnx.numpy_helper.from_array(a, n) for n, a in (initializers or {}).items()]
    graph = oh.make_graph([node], op, graph_inputs,
                          [oh.make_tensor_value_info(o, 0, None) for o in outs], inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset)])
    model.ir_version = 10
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def _check_single(tmp_path: Path, op: str, inputs: list[np.ndarray | None], n_outputs: int = 1,
                  const: tuple[int, ...] = (), rtol: float = 1e-5, atol: float = 1e-5,
                  opset: int = 20, **attrs) -> None:
    inits = {f"in{i}": inputs[i] for i in const}
    proto = _single(op, inputs, n_outputs, inits, opset, **attrs)
    path = tmp_path / f"{op}.onnx"
    onnx.save(proto, path)
    feeds = {f"in{i}": a for i, a in enumerate(inputs) if a is not None and f"in{i}" not in inits}
    _compare(eir.load(path), path, feeds, rtol=rtol, atol=atol)


def _f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


CONVS = {
    "1x1": (_f32(2, 8, 9, 9), _f32(6, 8, 1, 1), {}),
    "1x1_stride2": (_f32(1, 8, 9, 10), _f32(6, 8, 1, 1), dict(strides=[2, 2])),
    "1x1_pads": (_f32(1, 8, 5, 5), _f32(6, 8, 1, 1), dict(pads=[1, 0, 0, 2])),
    "3x3_same_upper_s2": (_f32(1, 4, 10, 11), _f32(5, 4, 3, 3),
                          dict(auto_pad="SAME_UPPER", strides=[2, 2])),
    "3x3_same_lower_s2": (_f32(1, 4, 10, 11), _f32(5, 4, 3, 3),
                          dict(auto_pad="SAME_LOWER", strides=[2, 2])),
    "valid_dilated": (_f32(1, 3, 12, 12), _f32(4, 3, 3, 2),
                      dict(auto_pad="VALID", dilations=[2, 3])),
    "asymmetric_pads": (_f32(1, 3, 7, 8), _f32(4, 3, 3, 3), dict(pads=[0, 1, 2, 3])),
    "depthwise_s2_pads": (_f32(2, 6, 9, 9), _f32(6, 1, 3, 3),
                          dict(group=6, strides=[2, 2], pads=[1, 1, 1, 1])),
    "depthwise_dilated_5x5": (_f32(1, 4, 11, 11), _f32(4, 1, 5, 5),
                              dict(group=4, dilations=[2, 2], pads=[4, 4, 4, 4])),
    "depthwise_multiplier": (_f32(1, 4, 8, 8), _f32(8, 1, 3, 3), dict(group=4, pads=[1] * 4)),
    "grouped": (_f32(1, 8, 8, 8), _f32(6, 4, 3, 3), dict(group=2, strides=[1, 2])),
    "conv1d": (_f32(2, 3, 17), _f32(4, 3, 5), dict(strides=[3], pads=[2, 1])),
    "conv3d": (_f32(1, 2, 5, 6, 7), _f32(3, 2, 3, 3, 2), dict(pads=[1, 0, 1, 1, 1, 0])),
    "depthwise1d": (_f32(1, 4, 20), _f32(4, 1, 3), dict(group=4, dilations=[3])),
}


@pytest.mark.parametrize("name", CONVS)
@pytest.mark.parametrize("weights", ["constant", "input"])
def test_conv_matches_onnxruntime(tmp_path: Path, name: str, weights: str) -> None:
    x, w, attrs = CONVS[name]
    b = _f32(w.shape[0])
    const = (1, 2) if weights == "constant" else ()
    _check_single(tmp_path, "Conv", [x, w, b], const=const, **attrs)


CONV_TRANSPOSES = {
    "stride2_pads": (_f32(1, 4, 5, 6), _f32(4, 3, 3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1])),
    "output_padding": (_f32(1, 4, 5, 5), _f32(4, 2, 3, 3),
                       dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])),
    "output_shape": (_f32(1, 2, 4, 4), _f32(2, 3, 3, 3), dict(strides=[2, 2],
                                                              output_shape=[9, 10])),
    "same_upper": (_f32(1, 2, 4, 5), _f32(2, 3, 4, 4), dict(strides=[2, 2], auto_pad="SAME_UPPER")),
    "grouped_dilated": (_f32(1, 4, 5, 5), _f32(4, 3, 3, 3), dict(group=2, dilations=[2, 1])),
    "conv1d": (_f32(2, 3, 7), _f32(3, 2, 4), dict(strides=[3])),
}


@pytest.mark.parametrize("name", CONV_TRANSPOSES)
def test_conv_transpose_matches_onnxruntime(tmp_path: Path, name: str) -> None:
    x, w, attrs = CONV_TRANSPOSES[name]
    b = _f32(w.shape[1] * attrs.get("group", 1))
    _check_single(tmp_path, "ConvTranspose", [x, w, b], const=(1, 2), **attrs)


POOLS = {
    "max_ceil_pads": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 0, 0],
                                      ceil_mode=1)),
    "max_dilated": ("MaxPool", dict(kernel_shape=[2, 3], dilations=[2, 2], strides=[1, 2])),
    "max_same_lower": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER")),
    "avg_exclude_pad_ceil": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2],
                                                 pads=[1, 1, 1, 1], ceil_mode=1)),
    "avg_include_pad": ("AveragePool", dict(kernel_shape=[3, 2], strides=[2, 1], pads=[1, 1, 1, 0],
                                            count_include_pad=1)),
    "avg_same_upper": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2],
                                           auto_pad="SAME_UPPER")),
}


@pytest.mark.parametrize("name", POOLS)
def test_pool_matches_onnxruntime(tmp_path: Path, name: str) -> None:
    op, attrs = POOLS[name]
    _check_single(tmp_path, op, [_f32(2, 3, 10, 11)], **attrs)


@pytest.mark.parametrize("storage_order", [0, 1])
def test_max_pool_indices_match_onnxruntime(tmp_path: Path, storage_order: int) -> None:
    x = RNG.permutation(2 * 3 * 7 * 8).astype(np.float32).reshape(2, 3, 7, 8)  # no ties
    _check_single(tmp_path, "MaxPool", [x], n_outputs=2, kernel_shape=[3, 3], strides=[2, 2],
                  pads=[1, 1, 1, 1], storage_order=storage_order)


RESIZES = [(mode, ctm) for mode in ("nearest", "linear", "cubic")
           for ctm in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                       "half_pixel_symmetric")]


@pytest.mark.parametrize("mode,ctm", RESIZES, ids=[f"{m}-{c}" for m, c in RESIZES])
@pytest.mark.parametrize("scales", [(1, 1, 2.0, 1.5), (1, 1, 0.5, 0.75)], ids=["up", "down"])
def test_resize_matches_onnxruntime(tmp_path: Path, mode: str, ctm: str, scales: tuple) -> None:
    inputs = [_f32(1, 2, 8, 12), None, np.array(scales, dtype=np.float32)]
    _check_single(tmp_path, "Resize", inputs, const=(2,), mode=mode,
                  coordinate_transformation_mode=ctm)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16])
@pytest.mark.parametrize("axis", [None, 1, 0])
def test_quantize_dequantize_match_onnxruntime(tmp_path: Path, dtype: type, axis: int | None) -> None:
    x = _f32(4, 3, 5) * 20
    n = 1 if axis is None else x.shape[axis]
    scale = (RNG.uniform(0.05, 0.2, n).astype(np.float32)).reshape(() if axis is None else (n,))
    info = np.iinfo(dtype)
    zp = RNG.integers(info.min // 4, info.max // 4, n).astype(dtype).reshape(scale.shape)
    attrs = {} if axis is None else {"axis": axis}
    opset = 20 if np.dtype(dtype).itemsize == 1 else 21  # 16-bit types arrive in opset 21
    _check_single(tmp_path, "QuantizeLinear", [x, scale, zp], const=(1, 2), opset=opset, **attrs)
    q = RNG.integers(info.min, info.max, x.shape).astype(dtype)
    _check_single(tmp_path, "DequantizeLinear", [q, scale, zp], const=(1, 2), opset=opset,
                  **attrs)


def test_blocked_quantization_matches_onnxruntime(tmp_path: Path) -> None:
    x = _f32(4, 10) * 20
    scale = RNG.uniform(0.05, 0.2, (4, 3)).astype(np.float32)  # blocks of 4 along axis 1
    zp = RNG.integers(-20, 20, (4, 3)).astype(np.int8)
    _check_single(tmp_path, "QuantizeLinear", [x, scale, zp], const=(1, 2), opset=21, axis=1,
                  block_size=4)
    q = RNG.integers(-128, 127, x.shape).astype(np.int8)
    _check_single(tmp_path, "DequantizeLinear", [q, scale, zp], const=(1, 2), opset=21, axis=1,
                  block_size=4)


# --- errors ----------------------------------------------------------------------------------

def test_unknown_op_names_op_and_node() -> None:
    model = ir.from_proto(oh.make_model(oh.make_graph(
        [oh.make_node("NonZero", ["x"], ["i"], name="nz")], "g",
        [oh.make_tensor_value_info("x", 1, [4])],
        [oh.make_tensor_value_info("i", 7, [1, None])]), opset_imports=[oh.make_opsetid("", 20)]))
    with pytest.raises(UnsupportedOpError, match="NonZero.*'nz'"):
        Interpreter(model)


@pytest.mark.parametrize("attrs", [{"axis": 1}, {"axis": -1, "largest": 0}, {"axis": 0}])
def test_topk_matches_onnxruntime_with_ties(attrs: dict) -> None:
    # ONNX: of equal values the lower index comes first (ONNX's own node cases are TopK-24,
    # outside the profile's opset, so onnxruntime is the peer here)
    x = np.round(np.random.default_rng(3).normal(size=(3, 6, 4)), 0).astype(np.float32)
    graph = oh.make_graph(
        [oh.make_node("TopK", ["x", "k"], ["v", "i"], **attrs)], "g",
        [oh.make_tensor_value_info("x", 1, x.shape)],
        [oh.make_tensor_value_info("v", 1, None), oh.make_tensor_value_info("i", 7, None)],
        [onnx.numpy_helper.from_array(np.array([3], np.int64), "k")])
    proto = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 20)])
    want = ort.InferenceSession(proto.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})
    got = run(ir.from_proto(proto), {"x": x})
    np.testing.assert_array_equal(got["v"], want[0])
    np.testing.assert_array_equal(got["i"], want[1])


def test_unknown_attribute_is_refused() -> None:
    model = ir.from_proto(oh.make_model(oh.make_graph(
        [oh.make_node("Relu", ["x"], ["y"], name="r", flavour=3)], "g",
        [oh.make_tensor_value_info("x", 1, [4])], [oh.make_tensor_value_info("y", 1, [4])]),
        opset_imports=[oh.make_opsetid("", 20)]))
    with pytest.raises(UnsupportedOpError, match="Relu.*'r'.*flavour"):
        Interpreter(model)


def test_bad_feeds_are_usage_errors(convnet: tuple[ir.Model, Path]) -> None:
    model, _ = convnet
    name = model.graph.inputs[0].name
    interpreter = Interpreter(model)
    with pytest.raises(UsageError, match="missing"):
        interpreter.run({})
    with pytest.raises(UsageError, match="float64"):
        interpreter.run({name: np.zeros((1, 3, 37, 41))})
    with pytest.raises(UsageError, match="not an input"):
        interpreter.run({name: np.zeros((1, 3, 37, 41), np.float32), "nope": np.zeros(1)})
