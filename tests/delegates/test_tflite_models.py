"""The zoo models emitted as .tflite (fp32 and fp16) and run on LiteRT, compared with PyTorch eager;
CNNs stay channels-last with no TRANSPOSE inside the graph; the bytes are the same every run.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ai_edge_litert import schema_py_generated as fb

from edgeexport import passes
from edgeexport.delegates.tflite import emit_model, operator_names
from edgeexport.exporter import export, parse_input_spec
from edgeexport.validate import TOLERANCES, error_stats
from tests.conftest import MODELS

_CACHE: dict[str, object] = {}


def exported(name: str):
    if name not in _CACHE:
        factory, shapes = MODELS[name]
        result = export(factory, input_specs=[parse_input_spec(s) for s in shapes])
        passes.optimize(result.model)  # what `convert` hands the emitter
        _CACHE[name] = result
    return _CACHE[name]


def run_litert(data: bytes, tmp_path, result) -> dict[str, np.ndarray]:
    from edgeexport.runtimes.litert import LiteRtSession

    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    names = [s.name for s in result.inputs]
    return LiteRtSession(path).run(dict(zip(names, result.sample)))


def inner_transposes(data: bytes) -> int:
    """TRANSPOSE ops whose input is not a model input (the boundary one is allowed)."""
    model = fb.Model.GetRootAs(data, 0)
    sub = model.Subgraphs(0)
    inputs = {sub.Inputs(i) for i in range(sub.InputsLength())}
    outputs = {sub.Outputs(i) for i in range(sub.OutputsLength())}
    names = operator_names(data)
    count = 0
    for i, name in enumerate(names):
        op = sub.Operators(i)
        if name == "TRANSPOSE" and op.Inputs(0) not in inputs and op.Outputs(0) not in outputs:
            count += 1
    return count


@pytest.mark.parametrize("name", ["resnet", "vit", "mobilevit", "bert", "mobilenet_v2"])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_model_parity_on_litert(name: str, precision: str, tmp_path) -> None:
    result = exported(name)
    emitted = emit_model(result.model, precision)
    got = run_litert(emitted.data, tmp_path, result)
    out_names = [v.name for v in result.model.graph.outputs]
    tol = TOLERANCES[precision]
    for out, want in zip(out_names, result.expected):
        stats = error_stats(want, got[out])
        assert not tol.violations(stats), (name, precision, out, stats)
        if precision == "fp32":
            assert stats.max_rel_err <= 1e-4


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet"])
def test_cnn_has_no_transpose_inside(name: str) -> None:
    data = emit_model(exported(name).model).data
    ops = operator_names(data)
    assert inner_transposes(data) == 0, ops
    assert ops.count("TRANSPOSE") <= 1  # at most the one at the input boundary
    # activations are fused: no standalone RELU/RELU6 op remains
    assert "RELU" not in ops and "RELU6" not in ops


def test_vit_patch_embedding_needs_no_transpose() -> None:
    """Conv -> flatten -> transpose(0, 2, 1) is a reshape of the channels-last tensor."""
    data = emit_model(exported("vit").model).data
    model = fb.Model.GetRootAs(data, 0)
    sub = model.Subgraphs(0)
    names = operator_names(data)
    first_conv = names.index("CONV_2D")
    assert "TRANSPOSE" not in names[first_conv:first_conv + 4], names[:10]
    assert sub.OperatorsLength() == len(names)


def test_artifacts_are_byte_identical(tmp_path) -> None:
    first = emit_model(exported("resnet").model, "fp16").data
    again = emit_model(exported("resnet").model, "fp16").data
    assert first == again
    factory, shapes = MODELS["resnet"]
    fresh = export(factory, input_specs=[parse_input_spec(s) for s in shapes])
    passes.optimize(fresh.model)
    assert emit_model(fresh.model, "fp16").data == first


def test_fp16_halves_the_weights() -> None:
    model = exported("resnet").model
    fp32, fp16 = emit_model(model, "fp32").data, emit_model(model, "fp16").data
    assert len(fp16) < 0.55 * len(fp32)


def test_litert_loads_without_warnings(tmp_path, capfd) -> None:
    """No 'unsupported op' / version complaints from the interpreter on load."""
    from edgeexport.runtimes.litert import LiteRtSession

    for name in ("resnet", "vit", "bert"):
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(emit_model(exported(name).model).data)
        LiteRtSession(path)
    err = capfd.readouterr().err.lower()
    for word in ("warning", "unsupported", "error", "didn't find"):
        assert word not in err, err


@pytest.mark.slow
@pytest.mark.parametrize("factory,shape", [("edgeexport.zoo:vit_deit_tiny", "x=1,3,224,224"),
                                           ("edgeexport.zoo:mobilevit_xxs", "x=1,3,256,256")])
def test_deployment_sized_transformers(factory: str, shape: str, tmp_path) -> None:
    """The benchmark's deployment-sized ViT and MobileViT (bench_tflite's vit_224 and
    mobilevit_256): fp32 at parity with PyTorch on LiteRT; int8 keeps the logits' direction."""
    from edgeexport import quantize

    result = export(factory, input_specs=[parse_input_spec(shape)])
    passes.optimize(result.model)
    want = result.expected[0]
    got = next(iter(run_litert(emit_model(result.model).data, tmp_path, result).values()))
    assert not TOLERANCES["fp32"].violations(error_stats(want, got))
    quantize.apply(result, "int8", None, quiet=True)
    got = next(iter(run_litert(emit_model(result.model).data, tmp_path, result).values()))
    assert error_stats(want, got).cosine >= 0.99, error_stats(want, got)


class _PoolsAndAnchors(torch.nn.Module):
    """What detectors and segmenters do around their backbone: ceil-mode average pooling,
    adaptive pooling to a size that does not divide the input, and a constant output (anchors)."""

    def forward(self, x):
        a = F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)
        b = F.adaptive_avg_pool2d(x, (3, 5))
        return a * 2, b + 1, torch.arange(12.0).reshape(3, 4)


def test_ceil_pooling_uneven_adaptive_pooling_and_constant_outputs_on_litert(tmp_path) -> None:
    x = torch.rand(1, 4, 10, 11, generator=torch.Generator().manual_seed(0))
    result = export(_PoolsAndAnchors(), example_inputs=(x,))
    passes.optimize(result.model)
    emitted = emit_model(result.model)
    got = run_litert(emitted.data, tmp_path, result)
    for value, want in zip(result.model.graph.outputs, result.expected):
        np.testing.assert_allclose(got[value.name], want, rtol=1e-5, atol=1e-6)
