"""LiteRT runtime: runs .tflite artifacts by IR names, and run_all returns intermediates by IR
value name in the IR's (NCHW) layout, matching onnxruntime on the same IR.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgeexport import ir as eir
from edgeexport.delegates.tflite import emit_model
from edgeexport.exporter import export
from edgeexport.runtimes import artifact_format, get
from edgeexport.runtimes.onnxruntime import OrtSession


def _small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 4, 3, stride=2), nn.Sigmoid(), nn.Flatten(),
                         nn.Linear(4 * 3 * 3, 5)).eval()


def test_run_and_run_all_by_ir_names(tmp_path) -> None:
    x = torch.randn(1, 3, 14, 14)
    result = export(_small_cnn(), example_inputs=(x,))
    path = tmp_path / "m.tflite"
    path.write_bytes(emit_model(result.model).data)
    assert artifact_format(path) == "tflite"
    rt = get("litert")
    assert rt.unavailable_reason() is None
    session = rt.load(path)
    feeds = {result.model.graph.inputs[0].name: x.numpy()}
    out = session.run(feeds)
    name = result.model.graph.outputs[0].name
    np.testing.assert_allclose(out[name], result.expected[0], rtol=1e-4, atol=1e-5)

    eir.save(result.model, tmp_path / "ir.onnx")
    want = OrtSession(tmp_path / "ir.onnx").run_all(feeds)
    got = session.run_all(feeds)
    common = [k for k in got if k in want]
    assert len(common) >= 5  # convs (fused), pool, sigmoid, flatten, output
    for k in common:
        assert got[k].shape == want[k].shape, k  # NHWC tensors come back as NCHW
        np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-4, err_msg=k)
