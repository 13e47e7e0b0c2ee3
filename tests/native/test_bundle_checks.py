"""The runner refuses a bad bundle before running anything: a changed file, a path leading
outside the bundle, a missing manifest. One line on stderr naming the file, exit 2. And its
core (SHA-256, JSON, statistics) passes its known-answer checks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import run_cli
from tests.native.conftest import run_runner


@pytest.fixture
def bundle(convert, tmp_path):
    """A private copy of a small onnx bundle (the tests below damage it)."""
    dst = tmp_path / "bundle"
    shutil.copytree(convert("resnet", "onnx"), dst)
    return dst


def _refused(proc, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert proc.stdout == ""
    return lines[0]


def test_core_known_answers(runner_host) -> None:
    proc = subprocess.run([str(runner_host.parent / "native-core-test")], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout
    assert "all checks passed" in proc.stdout


def test_untouched_bundle_passes(runner_host, bundle) -> None:
    proc = run_runner(runner_host, bundle)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "onnxruntime-native" in proc.stdout and "parity: PASSED" in proc.stdout


@pytest.mark.parametrize("victim", ["parity/sample0_input_x.bin", "model.onnx"])
def test_tampered_file_is_refused(runner_host, bundle, victim) -> None:
    path = bundle / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    path.write_bytes(bytes(data))
    line = _refused(run_runner(runner_host, bundle), str(path), "sha256")
    assert "edgeexport convert" in line  # says what to do


def test_missing_file_is_refused(runner_host, bundle) -> None:
    (bundle / "parity" / "sample0_expected_output.bin").unlink()
    _refused(run_runner(runner_host, bundle), "sample0_expected_output.bin", "missing")


@pytest.mark.parametrize("escape", ["../outside.bin", "/etc/passwd", "parity/../../outside.bin"])
def test_paths_outside_the_bundle_are_refused(runner_host, bundle, escape) -> None:
    (bundle.parent / "outside.bin").write_bytes(b"x")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"][escape] = "0" * 64
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    _refused(run_runner(runner_host, bundle), f"'{escape}'", "outside the bundle")


def test_symlink_out_of_the_bundle_is_refused(runner_host, bundle) -> None:
    target = bundle / "parity" / "sample0_input_x.bin"
    moved = bundle.parent / "moved.bin"
    shutil.move(target, moved)
    os.symlink(moved, target)  # same bytes, same sha256, but the file lives outside
    _refused(run_runner(runner_host, bundle), "sample0_input_x.bin", "outside the bundle")


def test_parity_file_not_covered_by_files_is_refused(runner_host, bundle) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["files"]["parity/sample0_input_x.bin"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    _refused(run_runner(runner_host, bundle), "sample0_input_x.bin", "not listed")


def test_not_a_bundle(runner_host, tmp_path) -> None:
    _refused(run_runner(runner_host, tmp_path), str(tmp_path), "manifest.json")


def test_broken_manifest(runner_host, bundle) -> None:
    (bundle / "manifest.json").write_text('{"artifact": "model.onnx",')
    _refused(run_runner(runner_host, bundle), "manifest.json", "byte")


def test_cli_validate_native_refuses_tampered_bundle(runner_host, bundle) -> None:
    path = bundle / "parity" / "sample0_input_x.bin"
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    proc = run_cli("validate", str(bundle), "--native")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and str(path) in proc.stderr


def _edit_manifest(bundle, edit) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    edit(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("version", [2, "1", None])
def test_other_schema_version_is_refused(runner_host, bundle, version) -> None:
    """Bundle contract v1 only: another schema_version (or none) is refused before anything
    else in the manifest is read."""
    def edit(m):
        if version is None:
            del m["schema_version"]
        else:
            m["schema_version"] = version
    _edit_manifest(bundle, edit)
    line = _refused(run_runner(runner_host, bundle), "manifest.json", "schema_version")
    assert "this runner reads 1" in line


@pytest.mark.parametrize("key,value,needle", [("layout", "NHWC", "stored as NHWC"),
                                               ("quantized", True, "quantized: true")])
def test_parity_input_not_in_the_artifacts_form_is_refused(runner_host, bundle, key, value,
                                                           needle) -> None:
    """A parity input must be stored as the artifact takes it (its layout; int8 codes only for
    a quantized input): anything else would be fed wrongly."""
    def edit(m):
        next(e for e in m["parity"] if e["kind"] == "input")[key] = value
    _edit_manifest(bundle, edit)
    _refused(run_runner(runner_host, bundle), "manifest.json", "parity", needle)


def test_manifest_output_quantization_must_be_the_artifacts(runner_host, convert,
                                                            photo_calibration, tmp_path) -> None:
    """The runner dequantizes an int8 output with manifest.json's outputs[].quantization; when
    that differs from the .tflite's own it says so and fails (exit 3) instead of judging skewed
    numbers."""
    bundle = tmp_path / "io"
    shutil.copytree(convert("resnet", "rpi", "--quantize", "int8", "--int8-io", "--io-layout",
                            "nhwc", "--calibration-data", photo_calibration), bundle)
    assert run_runner(runner_host, bundle).returncode == 0

    def edit(m):
        m["outputs"][0]["quantization"]["scale"] *= 2
    _edit_manifest(bundle, edit)
    proc = run_runner(runner_host, bundle, "--json")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    row = json.loads(proc.stdout)["parity"][0]
    assert row["violations"] == ["runtime error"]
    assert "quantization" in row["reason"] and "differs from the artifact's" in row["reason"]
