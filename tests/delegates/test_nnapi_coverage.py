"""The NNAPI partitioner: coverage changes with --android-api for the documented reasons, the
multi-partition warning, `inspect` printing the same table, and the artifact running on LiteRT.
"""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from torch import nn

from edgeexport.delegates import load_target
from edgeexport.exporter import export


class HswishDiv(nn.Module):
    """Conv -> HardSwish (NNAPI 1.3, API 30) -> divide by a tensor (DIV: API 28)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.hardswish(self.conv(x))
        y = self.conv2(y)
        return y / (y.abs() + 1.0)


def hswish_div() -> nn.Module:
    torch.manual_seed(0)
    return HswishDiv().eval()


@pytest.fixture(scope="module")
def model():
    return export(hswish_div(), example_inputs=(torch.randn(1, 3, 16, 16),)).model


def coverage(model, api: int):
    return load_target("nnapi").coverage(model, argparse.Namespace(android_api=api))


def test_coverage_differs_by_api_level(model, capsys) -> None:
    c27, c29, c30 = coverage(model, 27), coverage(model, 29), coverage(model, 30)
    r27 = {f.op: f.reason for f in c27.fallback}
    r29 = {f.op: f.reason for f in c29.fallback}
    assert "DIV" in r27 and "API 28" in r27["DIV"]
    assert "HARD_SWISH" in r27 and "HARD_SWISH" in r29 and "API 30" in r29["HARD_SWISH"]
    assert "DIV" not in r29
    assert c30.fallback == [] and c30.partitions == 1
    assert c27.delegated_ops < c29.delegated_ops < c30.delegated_ops
    assert c29.partitions > 1
    assert any(n.startswith("WARNING") for n in c29.notes)
    # a warning of the report (report.json, the summary, --json), not a stray stderr line
    from edgeexport.pipeline import coverage_warnings

    assert any("NNAPI partitions" in w for w in coverage_warnings(c29))
    assert capsys.readouterr().err == ""
    # every fallback names an IR node, not a TFLite-internal tensor
    names = {n.name for n in model.graph}
    assert all(f.node in names or f.node in {v.name for v in model.graph.inputs}
               for f in c27.fallback)


def test_android_api_out_of_range_is_a_usage_error(model) -> None:
    from edgeexport.errors import UsageError

    with pytest.raises(UsageError):
        coverage(model, 26)


def test_inspect_prints_the_same_table(capsys) -> None:
    from edgeexport.cli import main

    code = main(["inspect", "tests.delegates.test_nnapi_coverage:hswish_div",
                 "--input-shape", "1,3,16,16", "--target", "nnapi", "--android-api", "29",
                 "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    fallback = {f["op"] for f in out["result"]["coverage"]["fallback"]}
    assert "HARD_SWISH" in fallback and "DIV" not in fallback


def test_fully_connected_is_flattened_for_nnapi() -> None:
    """keep_num_dims FULLY_CONNECTED is rejected by the NNAPI delegate: nnapi emits 2-D FCs."""
    from edgeexport.delegates.tflite import emit_model

    lin = nn.Sequential(nn.Linear(8, 4), nn.ReLU()).eval()
    m = export(lin, example_inputs=(torch.randn(2, 3, 8),)).model
    cov = load_target("nnapi").coverage(m, argparse.Namespace(android_api=29))
    assert cov.fallback == []
    assert "FULLY_CONNECTED" in emit_model(m, target="nnapi").ops
