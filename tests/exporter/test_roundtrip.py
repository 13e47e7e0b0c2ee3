"""Exporter round trip: every model kind from every source format, run in onnxruntime and in the
reference runtime, compared with PyTorch eager (max abs error <= 1e-5)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from edgeexport import ir as eir
from edgeexport import profile
from edgeexport.exporter import export, parse_input_spec
from edgeexport.runtimes import reference
from tests.conftest import MODELS, save_model

KINDS = ["factory", "torchscript", "pt2", "pickle"]


def _run_ort(model, feeds):
    import onnxruntime as ort

    sess = ort.InferenceSession(eir.to_bytes(model), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(MODELS))
def test_roundtrip(name: str, kind: str, tmp_path) -> None:
    src = save_model(kind, name, tmp_path)
    specs = [parse_input_spec(s) for s in MODELS[name][1]]
    result = export(src, input_specs=specs, trust_pickle=(kind == "pickle"))
    model = result.model
    onnx.checker.check_model(eir.to_bytes(model))
    assert model.opset_imports[""] == eir.OPSET
    for node in eir.iter_nodes(model.graph):
        assert profile.check_node(node) is None, node
    feeds = {s.name: a for s, a in zip(result.inputs, result.sample)}
    # expected straight from PyTorch eager on the same inputs, not from our own pipeline
    with torch.no_grad():
        module = result.eager
        out = module(*[torch.from_numpy(a) for a in result.sample])
    out = out if isinstance(out, (tuple, list)) else (out,)
    expected = [t.numpy() for t in out]
    ort_out = _run_ort(model, feeds)
    ref = reference.run(model, feeds)
    ref_out = [ref[v.name] for v in model.graph.outputs]
    for e, o, r in zip(expected, ort_out, ref_out):
        assert np.abs(e - o).max() <= 1e-5, f"onnxruntime {np.abs(e - o).max()}"
        assert np.abs(e - r).max() <= 1e-5, f"reference {np.abs(e - r).max()}"
    props = model.metadata_props
    assert props["edgeexport.torch_version"] == torch.__version__
    assert props["edgeexport.version"]
    if kind != "factory":
        import hashlib

        assert props["edgeexport.source_sha256"] == hashlib.sha256(
            open(src, "rb").read()).hexdigest()


def test_bert_inputs_are_named_int64_and_in_vocabulary() -> None:
    result = export(MODELS["bert"][0], input_specs=[parse_input_spec(s) for s in MODELS["bert"][1]],
                    output_names=["hidden", "pooled"])
    ins = {v.name: v for v in result.model.graph.inputs}
    assert list(ins) == ["input_ids", "attention_mask"]
    assert all(v.dtype.name == "INT64" for v in ins.values())
    assert [v.name for v in result.model.graph.outputs] == ["hidden", "pooled"]
    ids = result.sample[0]
    assert ids.dtype == np.int64 and 0 <= ids.min() and ids.max() < 1000 and ids.max() > 1


def test_dynamic_batch_keeps_batch_symbolic() -> None:
    result = export("edgeexport.zoo:resnet_small", input_specs=[parse_input_spec("1,3,64,64")],
                    dynamic_batch=True)
    dim0 = result.model.graph.inputs[0].shape[0]
    assert not isinstance(dim0, int)
    import onnxruntime as ort

    sess = ort.InferenceSession(eir.to_bytes(result.model), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((3, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        want = result.eager(torch.from_numpy(x)).numpy()
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert got.shape == (3, 10) and np.abs(got - want).max() <= 1e-5


def test_onnx_source_is_read_with_its_shapes(tmp_path) -> None:
    first = export("edgeexport.zoo:vit_tiny", input_specs=[parse_input_spec("1,3,32,32")])
    path = tmp_path / "vit.onnx"
    eir.save(first.model, path)
    again = export(str(path))  # no --input-shape: the file carries it
    assert again.inputs[0].shape == (1, 3, 32, 32)
    assert again.expected is None and again.loaded.kind == "onnx"


def test_onnx_source_at_older_opset_is_converted(tmp_path) -> None:
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    path = tmp_path / "old.onnx"
    torch.onnx.export(m, (torch.randn(1, 3, 8, 8),), str(path), dynamo=False, opset_version=13)
    result = export(str(path))
    assert result.model.opset_imports[""] == eir.OPSET
