"""`edgeexport convert --target onnx`: the whole bundle, its report keys, exit codes, --json,
and the other subcommands on the result (validate, run, targets)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli

REPORT_KEYS = {"target", "artifact", "artifact_bytes", "quantization", "coverage", "parity",
               "timings_s"}
PARITY_KEYS = {"runtime", "executed", "reason", "max_abs_err", "max_rel_err", "cosine", "passed",
               "tolerance"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "resnet"
    proc = run_cli("convert", "edgeexport.zoo:resnet_small", "--input-shape", "x=1,3,64,64",
                   "--output-names", "logits", "--target", "onnx", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "onnxruntime" in proc.stdout and "reference" in proc.stdout
    return out


def test_bundle_layout_and_report(bundle: Path) -> None:
    names = {p.name for p in bundle.iterdir()}
    assert {"model.onnx", "manifest.json", "report.json", "report.html", "parity"} <= names
    report = json.loads((bundle / "report.json").read_text())
    assert REPORT_KEYS <= set(report)
    assert {"total_ops", "delegated_ops", "partitions", "fallback"} <= set(report["coverage"])
    assert set(report["timings_s"]) == {"export", "passes", "quantize", "emit", "validate"}
    runtimes = {p["runtime"]: p for p in report["parity"]}
    assert set(runtimes) == {"onnxruntime", "reference"}
    for p in runtimes.values():
        assert PARITY_KEYS <= set(p)
        assert p["executed"] and p["passed"] and p["max_abs_err"] <= 1e-5
    assert report["artifact_bytes"] == (bundle / "model.onnx").stat().st_size
    assert report["lowering"] == "direct"


def test_manifest_hashes_and_parity_tensors(bundle: Path) -> None:
    import hashlib

    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["target"] == "onnx" and manifest["artifact"] == "model.onnx"
    assert manifest["inputs"] == [{"name": "x", "shape": [1, 3, 64, 64], "dtype": "float32",
                                   "layout": "NCHW", "quantization": {"quantized": False},
                                   "axes_from_pytorch": [0, 1, 2, 3],
                                   "pytorch": {"shape": [1, 3, 64, 64], "dtype": "float32",
                                               "layout": "NCHW"}}]
    assert manifest["outputs"][0]["name"] == "logits"
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((bundle / rel).read_bytes()).hexdigest() == digest
    entries = {e["kind"]: e for e in manifest["parity"]}
    x = np.fromfile(bundle / entries["input"]["path"], dtype="<f4").reshape(1, 3, 64, 64)
    y = np.fromfile(bundle / entries["expected"]["path"], dtype="<f4").reshape(1, 10)
    import torch

    from edgeexport.zoo import resnet_small

    with torch.no_grad():  # the expected outputs are PyTorch's, on the stored inputs
        want = resnet_small()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-6)


def test_validate_run_and_json(bundle: Path, tmp_path) -> None:
    proc = run_cli("validate", str(bundle), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["ok"] and {p["runtime"] for p in data["result"]["parity"]} == {"onnxruntime", "reference"}

    x = np.random.default_rng(3).standard_normal((1, 3, 64, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    for runtime in ("onnxruntime", "reference"):
        proc = run_cli("run", str(bundle / "model.onnx"), "--input", f"x={tmp_path / 'x.npy'}",
                       "--runtime", runtime, "-o", str(tmp_path / f"{runtime}.npz"))
        assert proc.returncode == 0, proc.stderr
    a = np.load(tmp_path / "onnxruntime.npz")["logits"]
    b = np.load(tmp_path / "reference.npz")["logits"]
    assert np.abs(a - b).max() <= 1e-5


def test_validate_per_layer_names_layers(bundle: Path) -> None:
    proc = run_cli("validate", str(bundle), "--per-layer", "--json")
    assert proc.returncode == 0, proc.stderr
    layers = json.loads(proc.stdout)["result"]["per_layer"]["onnxruntime"]
    assert len(layers["layers"]) > 10 and layers["first_over_tolerance"] is None


def test_parity_failure_exits_3(bundle: Path, tmp_path) -> None:
    import hashlib
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    exp = next(e for e in manifest["parity"] if e["kind"] == "expected")
    y = np.fromfile(broken / exp["path"], dtype="<f4")
    (y + 1.0).astype("<f4").tofile(broken / exp["path"])  # expected no longer matches
    # ... and the manifest records it, as if convert had written it: validate refuses a file
    # whose sha256 differs before it runs anything (tests/validate/test_bundle_integrity.py)
    digest = hashlib.sha256((broken / exp["path"]).read_bytes()).hexdigest()
    manifest["files"][exp["path"]] = digest
    (broken / "manifest.json").write_text(json.dumps(manifest))
    proc = run_cli("validate", str(broken))
    assert proc.returncode == 3
    assert "FAILED" in proc.stdout


def test_json_mode_prints_one_document(tmp_path) -> None:
    proc = run_cli("convert", "edgeexport.zoo:vit_tiny", "--input-shape", "1,3,32,32",
                   "--target", "onnx", "-o", str(tmp_path / "vit"), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["ok"] and data["result"]["report"]["target"] == "onnx"
    assert proc.stderr.strip() == ""  # no progress bar, no warnings when not on a terminal


def test_targets_and_version() -> None:
    proc = run_cli("targets", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)["result"]
    onnx_ops = {op for op, row in data["ops"].items() if row.get("onnx") != "no"}
    assert "Conv" in onnx_ops and data["edge_profile_ops"] >= 100
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("edgeexport ")


def test_export_command_is_deterministic(tmp_path) -> None:
    paths = []
    for i in range(2):
        p = tmp_path / f"m{i}.onnx"
        proc = run_cli("export", "edgeexport.zoo:bert_tiny", "--input-shape",
                       "input_ids=1,16:int64", "--input-shape", "attention_mask=1,16:int64",
                       "-o", str(p))
        assert proc.returncode == 0, proc.stderr
        paths.append(p)
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_convert_artifact_is_deterministic(bundle: Path, tmp_path) -> None:
    out = tmp_path / "again"
    proc = run_cli("convert", "edgeexport.zoo:resnet_small", "--input-shape", "x=1,3,64,64",
                   "--output-names", "logits", "--target", "onnx", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "model.onnx").read_bytes() == (bundle / "model.onnx").read_bytes()
    for sub in ("parity",):
        for f in (bundle / sub).iterdir():
            assert (out / sub / f.name).read_bytes() == f.read_bytes()


def test_overwrites_existing_bundle_atomically(bundle: Path, tmp_path) -> None:
    out = tmp_path / "b"
    for again in (False, True):  # replacing a previous bundle takes --force
        proc = run_cli("convert", "edgeexport.zoo:vit_tiny", "--input-shape", "1,3,32,32",
                       "--target", "onnx", "-o", str(out), *(["--force"] if again else []))
        assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_bench_times_every_runtime(bundle: Path) -> None:
    proc = run_cli("bench", str(bundle), "--runs", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["runtime"]: r for r in json.loads(proc.stdout)["result"]["latency"]}
    assert set(rows) == {"onnxruntime", "reference"}
    assert all(r["executed"] and r["median_ms"] > 0 for r in rows.values())


def test_convert_onnx_source_compares_with_onnxruntime_on_the_source(tmp_path) -> None:
    src = tmp_path / "vit.onnx"
    assert run_cli("export", "edgeexport.zoo:vit_tiny", "--input-shape", "1,3,32,32",
                   "--no-optimize", "-o", str(src)).returncode == 0
    proc = run_cli("convert", str(src), "--target", "onnx", "-o", str(tmp_path / "b"), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)["result"]["report"]
    assert report["expected_from"].startswith("onnxruntime on the source")
    assert report["lowering"] is None
    ref = next(p for p in report["parity"] if p["runtime"] == "reference")
    assert ref["executed"] and ref["passed"]
