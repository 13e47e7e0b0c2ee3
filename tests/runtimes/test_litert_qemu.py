"""litert-aarch64-qemu: the aarch64 LiteRT wheel under qemu-user matches LiteRT on x86, says why
when it cannot run, and labels itself as emulation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgeexport.delegates.tflite import emit_model
from edgeexport.exporter import export
from edgeexport.runtimes import get
from tests.conftest import require_runtime


def test_unavailable_without_qemu(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    reason = get("litert-aarch64-qemu").unavailable_reason()
    assert reason is not None and "qemu-user-static" in reason


@pytest.mark.qemu
def test_matches_x86_litert(tmp_path) -> None:
    require_runtime("litert-aarch64-qemu")
    rt = get("litert-aarch64-qemu")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU6(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(8, 3)).eval()
    x = torch.randn(1, 3, 12, 12)
    result = export(net, example_inputs=(x,))
    path = tmp_path / "m.tflite"
    path.write_bytes(emit_model(result.model).data)
    feeds = {result.model.graph.inputs[0].name: x.numpy()}
    session = rt.load(path, cpu="cortex-a72")
    got = session.run(feeds)
    want = get("litert").load(path).run(feeds)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)
    assert session.details["emulated"] is True
    assert "emulation" in session.device
