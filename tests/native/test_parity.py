"""The native runner reproduces the Python runtimes' statistics on the same bundle: LiteRT for
nnapi/rpi .tflite (fp32, int8, int8 NHWC I/O) on x86 and on aarch64 under qemu, onnxruntime for onnx (x86 and
aarch64 under qemu), ncnn on Vulkan (lavapipe here) in fp32 and fp16."""

from __future__ import annotations

import json

import pytest

from tests.native.conftest import (python_check, python_onnxruntime_aarch64, python_rows,
                                   require, run_runner)

pytestmark = pytest.mark.slow

# int8 calibration on photo crops ({calib}: the photo_calibration fixture's .npy); random data
# would leave the verdict "unverified" (exit 3)
INT8 = ("--quantize", "int8", "--calibration-data", "{calib}")
# (model, target, extra convert flags) -> the Python runtime that checked the bundle on x86
X86_CASES = [
    ("resnet", "nnapi", (), "litert"),
    ("resnet", "nnapi", INT8, "litert"),
    ("resnet", "rpi", (), "litert"),
    ("resnet", "rpi", INT8, "litert"),
    ("bert", "rpi", (), "litert"),
    ("resnet", "onnx", (), "onnxruntime"),
    ("bert", "onnx", (), "onnxruntime"),
]
AARCH64_TFLITE = [c[:3] for c in X86_CASES if c[3] == "litert"]
VULKAN_CASES = [("fp32",), ("fp16",)]


# bundle contract v1: int8 codes in, int8 codes out, NHWC image input (what a camera app feeds)
INT8_IO_NHWC = ("--quantize", "int8", "--int8-io", "--io-layout", "nhwc")


def _args(extra: tuple, calibration: str) -> tuple:
    return tuple(calibration if a == "{calib}" else a for a in extra)


def _native_row(proc) -> dict:
    assert proc.returncode in (0, 3), proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == proc.returncode
    return doc["parity"][0]


def _need_ncnn(row: dict) -> None:
    if "built without ncnn" in (row.get("reason") or ""):
        require(row["reason"] + " (make native builds it)")


def _same_stats(native: dict, python: dict) -> None:
    assert native["executed"] and python["executed"]
    # max abs error equal to 1e-7 relative: the same runtime on the same inputs
    assert native["max_abs_err"] == pytest.approx(python["max_abs_err"], rel=1e-7, abs=0)
    assert native["max_rel_err"] == pytest.approx(python["max_rel_err"], rel=1e-7, abs=0)
    assert native["cosine"] == pytest.approx(python["cosine"], rel=1e-9)
    assert native["top1_agreement"] == python["top1_agreement"]
    assert native["passed"] == python["passed"]
    assert native["violations"] == python["violations"]


@pytest.mark.parametrize("model,target,extra,python_runtime", X86_CASES,
                         ids=lambda v: "-".join(v) if isinstance(v, tuple) else str(v))
def test_x86_matches_python(runner_host, convert, photo_calibration, model, target, extra,
                            python_runtime) -> None:
    bundle = convert(model, target, *_args(extra, photo_calibration))
    row = _native_row(run_runner(runner_host, bundle, "--json"))
    assert row["runtime"] == ("litert-native" if python_runtime == "litert" else "onnxruntime-native")
    assert row["details"]["runner_arch"] == "x86_64"
    _same_stats(row, python_rows(bundle)[python_runtime])


@pytest.mark.qemu
@pytest.mark.parametrize("model,target,extra", AARCH64_TFLITE,
                         ids=lambda v: "-".join(v) if isinstance(v, tuple) else str(v))
def test_aarch64_litert_matches_python_under_qemu(runner_aarch64, convert, photo_calibration,
                                                   model, target, extra) -> None:
    bundle = convert(model, target, *_args(extra, photo_calibration))
    python = python_rows(bundle).get("litert-aarch64-qemu") or python_check(bundle, "litert-aarch64-qemu")
    row = _native_row(run_runner(runner_aarch64, bundle, "--json", qemu_cpu="cortex-a72"))
    assert row["details"]["runner_arch"] == "aarch64"
    _same_stats(row, python)


def _int8_io_bundle(convert, calibration: str):
    """rpi resnet_small with int8 NHWC I/O: the parity inputs are int8 codes in NHWC and the
    output is int8, which the runner dequantizes with the manifest before its statistics."""
    bundle = convert("resnet", "rpi", *INT8_IO_NHWC, "--calibration-data", calibration)
    m = json.loads((bundle / "manifest.json").read_text())
    (x,), (y,) = m["inputs"], m["outputs"]
    assert (x["layout"], x["dtype"], x["quantization"]["quantized"]) == ("NHWC", "int8", True)
    assert (y["dtype"], y["quantization"]["quantized"]) == ("int8", True)
    inputs = [e for e in m["parity"] if e["kind"] == "input"]
    assert inputs and all(e["quantized"] and e["layout"] == "NHWC" and e["shape"] == x["shape"]
                          for e in inputs)
    assert all(e["dtype"] == "float32" and not e["quantized"] for e in m["parity"]
               if e["kind"] == "expected")
    return bundle


def test_x86_int8_io_nhwc_matches_python(runner_host, convert, photo_calibration) -> None:
    bundle = _int8_io_bundle(convert, photo_calibration)
    row = _native_row(run_runner(runner_host, bundle, "--json"))
    assert row["runtime"] == "litert-native" and row["details"]["runner_arch"] == "x86_64"
    _same_stats(row, python_rows(bundle)["litert"])


@pytest.mark.qemu
def test_aarch64_int8_io_nhwc_matches_python_under_qemu(runner_aarch64, convert,
                                                         photo_calibration) -> None:
    bundle = _int8_io_bundle(convert, photo_calibration)
    python = python_rows(bundle).get("litert-aarch64-qemu") or python_check(bundle, "litert-aarch64-qemu")
    row = _native_row(run_runner(runner_aarch64, bundle, "--json", qemu_cpu="cortex-a72"))
    assert row["details"]["runner_arch"] == "aarch64"
    _same_stats(row, python)


@pytest.mark.qemu
@pytest.mark.parametrize("model", ["resnet", "bert"])
def test_aarch64_onnxruntime_matches_python_under_qemu(runner_aarch64, convert, model,
                                                        tmp_path) -> None:
    bundle = convert(model, "onnx")
    row = _native_row(run_runner(runner_aarch64, bundle, "--json", qemu_cpu="cortex-a72"))
    assert row["runtime"] == "onnxruntime-native" and row["passed"]
    want = python_onnxruntime_aarch64(bundle, tmp_path)
    assert row["max_abs_err"] == pytest.approx(want, rel=1e-7, abs=0)


@pytest.mark.vulkan
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_vulkan_matches_python_ncnn(runner_host, convert, precision) -> None:
    bundle = convert("resnet", "vulkan", "--precision", precision)
    python = python_rows(bundle)["ncnn-vulkan"]
    proc = run_runner(runner_host, bundle, "--json")
    doc = json.loads(proc.stdout)
    row = doc["parity"][0]
    _need_ncnn(row)
    assert row["runtime"] == "ncnn-native-vulkan"
    assert row["executed"], row["reason"]
    assert row["device"] == python["device"]  # the same Vulkan device (lavapipe here)
    assert row["details"]["precision"] == precision
    _same_stats(row, python)


def test_failed_parity_matches_python_verdict(runner_host, convert, tmp_path) -> None:
    """Expected outputs moved off (and re-hashed, so the bundle is consistent): both the runner
    and `edgeexport validate` fail parity with exit 3 and the same violations, word for word."""
    import hashlib
    import shutil

    import numpy as np

    from tests.conftest import run_cli

    bundle = tmp_path / "b"
    shutil.copytree(convert("resnet", "onnx"), bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    entry = next(e for e in manifest["parity"] if e["kind"] == "expected")
    path = bundle / entry["path"]
    want = np.fromfile(path, dtype="<f4")
    want[::3] += np.float32(0.05) * np.abs(want).max()  # a third of the logits moved
    want.tofile(path)
    manifest["files"][entry["path"]] = hashlib.sha256(path.read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2))

    proc = run_runner(runner_host, bundle, "--json")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    row = json.loads(proc.stdout)["parity"][0]
    py = run_cli("validate", str(bundle), "--json")
    assert py.returncode == 3, py.stderr
    python = {p["runtime"]: p for p in json.loads(py.stdout)["result"]["parity"]}["onnxruntime"]
    assert not row["passed"] and row["violations"]
    _same_stats(row, python)
    text = run_runner(runner_host, bundle)
    assert text.returncode == 3 and "FAILED: " + "; ".join(python["violations"]) in text.stdout


@pytest.mark.vulkan
def test_vulkan_unavailable_is_not_executed(runner_host, convert, monkeypatch) -> None:
    """Without a Vulkan device the runner reports the row as not executed (exit 1), never as
    Vulkan parity computed on the CPU."""
    bundle = convert("resnet", "vulkan", "--precision", "fp32")
    monkeypatch.setenv("EDGEEXPORT_DISABLE_VULKAN", "1")
    proc = run_runner(runner_host, bundle, "--json")
    row = json.loads(proc.stdout)["parity"][0]
    _need_ncnn(row)
    assert proc.returncode == 1
    assert not row["executed"] and "Vulkan unavailable" in row["reason"]
    assert row["max_abs_err"] is None and not row["passed"]
