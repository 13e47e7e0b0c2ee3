"""Findings from a report: a per-layer error the report wrote as a non-finite string ("inf",
"nan") is a finding like any other, not a crash (it broke every HF text model's report)."""

from __future__ import annotations

from edgeexport.validate import findings


def test_non_finite_per_layer_error_is_reported_not_raised() -> None:
    bad = {"node": "node_Where_23", "op": "Where", "module": "encoder", "max_rel_err": "inf"}
    report = {"per_layer": {"runtimes": {"ncnn-vulkan": {"first_over_tolerance": bad}}}}
    texts = [f["text"] for f in findings.collect(report)]
    assert any("node_Where_23" in t and "max_rel_err inf" in t for t in texts), texts
    bad["max_rel_err"] = 0.01234
    texts = [f["text"] for f in findings.collect(report)]
    assert any("max_rel_err 0.0123" in t for t in texts), texts
