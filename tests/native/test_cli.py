"""`edgeexport validate|convert|bench --native`: the C++ runner's results join the report as
runtimes of their own, next to the Python runtimes they re-check."""

from __future__ import annotations

import json

import pytest

from tests.conftest import MODELS, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.qemu]


def test_validate_native_adds_rows(runner_host, runner_aarch64, convert) -> None:
    bundle = convert("resnet", "rpi")
    proc = run_cli("validate", str(bundle), "--native", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {p["runtime"]: p for p in json.loads(proc.stdout)["result"]["parity"]}
    assert {"litert", "litert-native", "litert-native-aarch64-qemu"} <= set(rows)
    assert rows["litert-native"]["max_abs_err"] == pytest.approx(rows["litert"]["max_abs_err"],
                                                                 rel=1e-7)
    emulated = rows["litert-native-aarch64-qemu"]
    assert emulated["executed"] and emulated["passed"]
    assert "emulation" in emulated["device"] and emulated["details"]["emulated"] is True
    text = run_cli("validate", str(bundle), "--native")
    assert text.returncode == 0 and "litert-native-aarch64-qemu" in text.stdout


def test_convert_native(runner_host, runner_aarch64, tmp_path) -> None:
    factory, shapes = MODELS["resnet"]
    args = ["convert", factory, "--target", "onnx", "-o", str(tmp_path / "b"), "--native",
            "--json"]
    for s in shapes:
        args += ["--input-shape", s]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    rows = {p["runtime"]: p for p in doc["result"]["report"]["parity"]}
    assert rows["onnxruntime-native"]["passed"] and rows["onnxruntime-native-aarch64-qemu"]["passed"]
    assert rows["onnxruntime-native"]["max_abs_err"] == pytest.approx(
        rows["onnxruntime"]["max_abs_err"], rel=1e-7)


def test_bench_native(runner_host, runner_aarch64, convert) -> None:
    bundle = convert("resnet", "onnx")
    proc = run_cli("bench", str(bundle), "--native", "--runs", "5", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["runtime"]: r for r in json.loads(proc.stdout)["result"]["latency"]}
    native = rows["onnxruntime-native"]
    assert native["executed"] and native["runs"] == 5
    assert 0 < native["p10_ms"] <= native["median_ms"] <= native["p90_ms"]
    assert native["first_ms"] > 0
    assert rows["onnxruntime-native-aarch64-qemu"]["emulated"] is True
