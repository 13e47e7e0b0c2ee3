"""The shared vectors in tests/vectors are what edgeexport's own code computes today: regenerated
here and compared, so a change to edgeexport.metrics or --preprocess cannot leave them stale
(Kotlin's and Swift's tests read the same files)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edgeexport.metrics import TOLERANCES, error_stats
from edgeexport.validate import manifest
from edgeexport.validate.manifest import Boundary
from tests.apps import vectors


def _same(a, b, where: str = "") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("name", ["statistics.json", "preprocessing.json"])
def test_vectors_are_current(name: str) -> None:
    stored = json.loads((vectors.VECTORS / name).read_text())
    fresh = json.loads(vectors.dumps(vectors.build()[name]))
    _same(fresh, stored, name)  # on failure: python -m tests.apps.vectors, and review the diff


def test_statistics_vectors_hold_in_python() -> None:
    data = json.loads((vectors.VECTORS / "statistics.json").read_text())
    for case in data["cases"]:
        e = np.array(case["expected"], np.float32).reshape(case["shape"])
        a = np.array(case["actual"], np.float32).reshape(case["shape"])
        s = error_stats(e, a)
        _same(s.to_json(), case["stats"], case["name"])
        for tol, lines in case["violations"].items():
            assert TOLERANCES[tol].violations(s) == lines
    names = {c["name"] for c in data["cases"]}
    assert {"identical", "both_zero", "actual_zero", "last_axis_one"} <= names


def test_preprocessing_vectors_hold_in_python() -> None:
    data = json.loads((vectors.VECTORS / "preprocessing.json").read_text())
    assert len(data["cases"]) == len(vectors.PREPROCESS_CASES)
    for case in data["cases"]:
        img = case["image"]
        rgb = np.array(img["rgb"], np.uint8).reshape(img["height"], img["width"], 3)
        assert manifest.errors(_with_preprocessing(case)) == [], case["name"]
        b = Boundary.from_json(case["input"])
        tensor, sized = vectors.python_preprocess(rgb, case["preprocessing"]["spec"],
                                                  tuple(b.pytorch_shape))
        tensor = b.to_artifact(tensor)
        assert tensor.shape == tuple(case["input"]["shape"])
        np.testing.assert_array_equal(sized.ravel(), case["sized"]["pixels"])
        np.testing.assert_array_equal(tensor.ravel(), np.array(case["tensor"], np.float32))


def _with_preprocessing(case: dict) -> dict:
    """A minimal schema-valid manifest around the case's preprocessing and input."""
    return {"schema_version": 1, "format_version": 1, "target": "rpi", "artifact": "m.tflite",
            "artifact_format": "tflite", "ir": "ir.onnx", "precision": "fp32",
            "target_options": {}, "quantization": {"scheme": "none"}, "inputs": [case["input"]],
            "outputs": [case["input"] | {"name": "y"}], "preprocessing": case["preprocessing"],
            "tolerances": {"name": "fp32"}, "source": {"model": "m", "kind": "factory",
                                                       "sha256": None},
            "tool_versions": {}, "parity_samples": {"count": 1, "source": "random"},
            "parity": [], "files": {}}
