"""Every command's --json run: one JSON document on stdout with the common keys, nothing on
stderr when it succeeds, and the same shape (with `error`) when it fails."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeexport.cli import SCHEMA_VERSION
from tests.conftest import run_cli

COMMON = {"schema_version", "ok", "command", "exit_code", "result", "warnings"}


def _json_run(*args: str, code: int = 0) -> dict:
    proc = run_cli(*args, "--json")
    assert proc.returncode == code, proc.stderr
    doc = json.loads(proc.stdout)  # one document, nothing else on stdout
    assert COMMON <= set(doc), doc.keys()
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["command"] == args[0] and doc["exit_code"] == code
    assert doc["ok"] is (code == 0) and isinstance(doc["warnings"], list)
    if code == 0:
        assert proc.stderr == "", proc.stderr
    return doc


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """An exported model and an nnapi bundle of it (the commands after convert read it)."""
    root = tmp_path_factory.mktemp("json")
    doc = _json_run("export", "edgeexport.zoo:vit_tiny", "--input-shape", "1,3,32,32",
                    "-o", str(root / "m.onnx"))
    assert doc["output"] == str(root / "m.onnx") == doc["result"]["output"]  # (older key kept)
    doc = _json_run("convert", str(root / "m.onnx"), "--target", "nnapi", "-o", str(root / "b"))
    assert doc["out"] == str(root / "b") and doc["verdict"] == doc["result"]["verdict"]
    # the NNAPI partition warning went into the document (and report.json), not on stderr
    report = json.loads((root / "b" / "report.json").read_text())
    assert any("NNAPI partitions" in w["text"] for w in report["warnings"])
    assert doc["warnings"] == report["warnings"]
    np.save(root / "x.npy", np.zeros((1, 3, 32, 32), np.float32))
    return root


@pytest.mark.slow
@pytest.mark.parametrize("command", ["quantize", "validate", "inspect", "run", "bench",
                                     "targets", "app"])
def test_every_command_prints_the_common_document(work: Path, command: str) -> None:
    args = {
        "quantize": ["quantize", str(work / "m.onnx"), "--scheme", "fp16",
                     "-o", str(work / "q.onnx")],
        "validate": ["validate", str(work / "b")],
        "inspect": ["inspect", str(work / "m.onnx"), "--target", "nnapi"],
        "run": ["run", str(work / "b" / "model.tflite"), "--input", f"x={work / 'x.npy'}"],
        "bench": ["bench", str(work / "b"), "--runs", "2"],
        "targets": ["targets"],
        "app": ["app", "android", str(work / "b"), "-o", str(work / "app")],
    }[command]
    doc = _json_run(*args)
    if command == "inspect":
        assert any("NNAPI partitions" in w for w in doc["warnings"])
    if command == "bench":
        assert doc["bundle"] == doc["result"]["bundle"]


def test_failure_has_the_same_shape(tmp_path: Path) -> None:
    proc = run_cli("run", str(tmp_path / "missing.tflite"), "--json")
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert COMMON <= set(doc) and doc["ok"] is False and doc["exit_code"] == 2
    assert doc["command"] == "run" and doc["result"] is None and "missing.tflite" in doc["error"]
    assert proc.stderr.count("\n") == 1  # the one error line stays on stderr
