"""The bundle contract: every target's manifest.json follows manifest.schema.json and says what
the artifact really takes (read back with the real runtimes), with --io-layout nhwc, --int8-io,
--preprocess and --labels.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeexport.errors import UsageError
from edgeexport.exporter import parse_input_spec
from edgeexport.pipeline import ConvertOptions, convert
from edgeexport.validate import manifest as contract
from tests.conftest import require, run_cli

MODEL = "edgeexport.zoo:resnet_small"


def _convert(tmp_path: Path, target: str, quantize: str | None = None, name: str = "",
             **options) -> tuple:
    calib = None
    if quantize == "int8":  # judged on its calibration data (random-only int8 is unverified)
        calib = tmp_path / f"calib-{target}.npy"
        np.save(calib, np.random.default_rng(0).standard_normal((8, 1, 3, 32, 32), np.float32))
    opts = ConvertOptions(target=target, input_specs=[parse_input_spec("1,3,32,32")],
                          quantize=quantize, target_options=argparse.Namespace(**options),
                          calibration_data=calib and str(calib), timing_runs=1)
    out = tmp_path / (name or f"{target}-{quantize}")
    outcome = convert(MODEL, out, opts)
    return outcome, json.loads((out / "manifest.json").read_text()), out


def _check_bundle(out: Path, manifest: dict) -> None:
    assert contract.errors(manifest) == []
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*")
               if p.is_file() and p.name != "manifest.json"}
    assert set(manifest["files"]) == on_disk
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest
    tensors = {t["name"]: t for t in manifest["inputs"] + manifest["outputs"]}
    for e in manifest["parity"]:  # parity tensors are in the artifact's shape and layout
        t = tensors[e["tensor"]]
        assert e["shape"] == t["shape"] and e["layout"] == t["layout"], (e, t)
        assert (out / e["path"]).stat().st_size == np.prod(e["shape"]) * np.dtype(
            e["dtype"]).itemsize
        if e["kind"] == "input":
            assert e["dtype"] == t["dtype"]


TARGETS = [("onnx", None, {}), ("nnapi", None, {}), ("rpi", None, {}), ("coreml", None, {}),
           ("metal", None, {}), ("vulkan", None, {"precision": "fp32"}),
           pytest.param("onnx", "int8", {}, marks=pytest.mark.slow),
           pytest.param("nnapi", "int8", {}, marks=pytest.mark.slow),
           pytest.param("rpi", "int8", {}, marks=pytest.mark.slow),
           pytest.param("coreml", "int8", {"ios": 17}, marks=pytest.mark.slow),
           pytest.param("metal", "int8", {"ios": 17}, marks=pytest.mark.slow)]


@pytest.mark.parametrize("target,quantize,options", TARGETS)
def test_every_bundle_follows_the_schema(tmp_path, monkeypatch, target, quantize, options) -> None:
    monkeypatch.setenv("EDGEEXPORT_NO_QEMU", "1")
    outcome, manifest, out = _convert(tmp_path, target, quantize, **options)
    _check_bundle(out, manifest)
    assert manifest["schema_version"] == 1 and manifest["target"] == target
    assert manifest["precision"] == (quantize or manifest["precision"])
    assert manifest["quantization"]["scheme"] == (quantize or "none")
    x = manifest["inputs"][0]
    assert x["pytorch"] == {"shape": [1, 3, 32, 32], "dtype": "float32", "layout": "NCHW"}
    assert x["layout"] == "NCHW" and x["quantization"] == {"quantized": False}
    assert manifest["outputs"][0]["layout"] == "plain"
    assert manifest["preprocessing"] is None and "labels" not in manifest
    if target == "vulkan":  # the ncnn blob: w/h/c of the CHW image without its batch
        assert x["ncnn"]["dims"] == 3 and (x["ncnn"]["w"], x["ncnn"]["h"], x["ncnn"]["c"]) == (
            32, 32, 3)
    if target in ("coreml", "metal"):
        assert x["coreml"]["type"] == "multiArrayType" and x["shape"] == [1, 3, 32, 32]
        assert manifest["compute_units"] == ("ALL" if target == "coreml" else "CPU_AND_GPU")
    else:
        assert "compute_units" not in manifest
    assert any(p["executed"] and p["passed"] for p in outcome.report["parity"])


def test_schema_rejects_what_apps_could_not_use(tmp_path) -> None:
    _, manifest, _ = _convert(tmp_path, "onnx")
    assert contract.errors(manifest) == []
    broken = json.loads(json.dumps(manifest))
    broken["inputs"][0]["quantization"] = None
    del broken["parity"][0]["layout"]
    broken["files"]["../escape"] = "0" * 64
    problems = contract.errors(broken)
    assert any(p.startswith("inputs/0/quantization") for p in problems), problems
    assert any(p.startswith("parity/0") and "layout" in p for p in problems), problems
    assert any(p.startswith("files") and "escape" in p for p in problems), problems
    with pytest.raises(ValueError, match="breaks manifest.schema.json"):
        contract.check(broken)


def test_validate_refuses_a_manifest_that_breaks_the_schema(tmp_path) -> None:
    _, manifest, out = _convert(tmp_path, "onnx")
    manifest["inputs"][0]["layout"] = "CHW"
    (out / "manifest.json").write_text(json.dumps(manifest))
    proc = run_cli("validate", str(out))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "inputs/0/layout" in proc.stderr


def _litert(path: Path):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    return interp


def _stored(out: Path, manifest: dict, kind: str, tensor: str) -> np.ndarray:
    e = next(e for e in manifest["parity"] if e["kind"] == kind and e["tensor"] == tensor
             and e["sample"] == 0)
    return np.fromfile(out / e["path"], dtype=np.dtype(e["dtype"]).newbyteorder("<")).reshape(
        e["shape"])


def test_io_layout_nhwc_tflite(tmp_path, monkeypatch) -> None:
    """--io-layout nhwc: LiteRT sees a [1,H,W,3] input, the front TRANSPOSE is gone, the stored
    parity input is NHWC and PyTorch on it (moved back to NCHW) gives the stored expected."""
    import torch

    from edgeexport.delegates.tflite.writer import operator_names
    from edgeexport.zoo import resnet_small

    monkeypatch.setenv("EDGEEXPORT_NO_QEMU", "1")
    outcome, manifest, out = _convert(tmp_path, "nnapi", io_layout="nhwc")
    _check_bundle(out, manifest)
    x = manifest["inputs"][0]
    assert x["shape"] == [1, 32, 32, 3] and x["layout"] == "NHWC"
    assert x["axes_from_pytorch"] == [0, 2, 3, 1] and x["pytorch"]["layout"] == "NCHW"
    details = _litert(out / "model.tflite").get_input_details()
    assert [list(d["shape"]) for d in details] == [[1, 32, 32, 3]]
    assert "TRANSPOSE" not in operator_names((out / "model.tflite").read_bytes())
    nchw = _convert(tmp_path, "nnapi", name="nchw")[2]
    assert "TRANSPOSE" in operator_names((nchw / "model.tflite").read_bytes())
    litert = next(p for p in outcome.report["parity"] if p["runtime"] == "litert")
    assert litert["executed"] and litert["passed"] and litert["max_rel_err"] <= 1e-4
    stored = _stored(out, manifest, "input", "x")
    with torch.no_grad():
        want = resnet_small()(torch.from_numpy(stored.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(_stored(out, manifest, "expected", "output"), want, atol=1e-5)
    proc = run_cli("validate", str(out), "--per-layer", "--json",
                   env={"EDGEEXPORT_NO_QEMU": "1"})
    assert proc.returncode == 0, proc.stderr
    layers = json.loads(proc.stdout)["result"]["per_layer"]["litert"]
    assert layers["first_over_tolerance"] is None and len(layers["layers"]) > 5


def _photos(folder: Path, n: int = 4) -> Path:
    from edgeexport.zoo.photos import photo_paths

    paths = sorted(photo_paths().items())[:n]
    if len(paths) < n:
        require("the example photos (scikit-image, scikit-learn) are not installed")
    folder.mkdir()
    for name, p in paths:
        shutil.copy(p, folder / f"{name}{p.suffix}")
    return folder


@pytest.mark.slow
def test_int8_rpi_bundle_for_a_mobile_app(tmp_path) -> None:
    """What an app developer gets from `convert --target rpi --quantize int8 --int8-io
    --io-layout nhwc --preprocess imagenet --labels`: int8 NHWC input and int8 output with
    their scale/zero point, preprocessing, labels; parity re-checked here the way a native
    runner does it (feed the stored int8 input, dequantize the int8 output)."""
    calib = _photos(tmp_path / "photos")
    labels = tmp_path / "classes.txt"
    labels.write_text("\n".join(f"class {i}" for i in range(10)) + "\n\n")
    out = tmp_path / "bundle"
    proc = run_cli("convert", MODEL, "--input-shape", "x=1,3,224,224", "--target", "rpi",
                   "--quantize", "int8", "--calibration-data", str(calib),
                   "--calibration-method", "minmax", "--preprocess", "imagenet",
                   "--labels", str(labels), "--int8-io", "--io-layout", "nhwc", "-o", str(out),
                   env={"EDGEEXPORT_NO_QEMU": "1"})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    _check_bundle(out, manifest)
    x, y = manifest["inputs"][0], manifest["outputs"][0]
    assert x["shape"] == [1, 224, 224, 3] and x["dtype"] == "int8" and x["layout"] == "NHWC"
    assert y["dtype"] == "int8" and y["shape"] == [1, 10]
    for t in (x, y):
        assert t["quantization"]["quantized"] and t["quantization"]["scale"] > 0
    pre = manifest["preprocessing"]
    assert pre["input"] == "x" and pre["resize"] == {"shorter_side": 256,
                                                     "interpolation": "bilinear"}
    assert pre["crop"]["height"] == 224 and pre["color"] == "RGB" and pre["scale"] == 255
    assert pre["mean"] == [0.485, 0.456, 0.406] and pre["std"] == [0.229, 0.224, 0.225]
    assert pre["layout"] == "NHWC" and pre["dtype"] == "int8" and "then" in pre
    assert manifest["labels"] == {"path": "labels.txt", "count": 10, "output": "output",
                                  "axis": -1}
    assert (out / "labels.txt").read_text().splitlines() == [f"class {i}" for i in range(10)]
    assert manifest["target_options"]["int8_io"] is True
    assert manifest["target_options"]["io_layout"] == "nhwc"
    # the .tflite itself, through LiteRT: what the manifest says
    interp = _litert(out / "model.tflite")
    d_in, d_out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert list(d_in["shape"]) == x["shape"] and d_in["dtype"] == np.int8
    assert d_in["quantization"] == pytest.approx((x["quantization"]["scale"],
                                                  x["quantization"]["zero_point"]))
    assert d_out["dtype"] == np.int8 and d_out["quantization"] == pytest.approx(
        (y["quantization"]["scale"], y["quantization"]["zero_point"]))
    e_in = [e for e in manifest["parity"] if e["kind"] == "input"]
    e_out = [e for e in manifest["parity"] if e["kind"] == "expected"]
    assert all(e["quantized"] and e["dtype"] == "int8" for e in e_in)
    assert all(not e["quantized"] and e["dtype"] == "float32" for e in e_out)
    from edgeexport.metrics import error_stats

    for s in range(manifest["parity_samples"]["count"]):
        feed = _stored_sample(out, manifest, "input", s)
        interp.set_tensor(d_in["index"], feed)
        interp.invoke()
        q = interp.get_tensor(d_out["index"]).astype(np.float32)
        got = (q - y["quantization"]["zero_point"]) * y["quantization"]["scale"]
        stats = error_stats(_stored_sample(out, manifest, "expected", s), got)
        assert stats.cosine >= manifest["tolerances"]["min_cosine"], stats
    report = json.loads((out / "report.json").read_text())
    assert next(p for p in report["parity"] if p["runtime"] == "litert")["passed"]
    proc = run_cli("validate", str(out), "--json", env={"EDGEEXPORT_NO_QEMU": "1"})
    assert proc.returncode == 0, proc.stderr


def _stored_sample(out: Path, manifest: dict, kind: str, sample: int) -> np.ndarray:
    e = next(e for e in manifest["parity"] if e["kind"] == kind and e["sample"] == sample)
    return np.fromfile(out / e["path"], dtype=np.dtype(e["dtype"]).newbyteorder("<")).reshape(
        e["shape"])


@pytest.mark.slow
@pytest.mark.qemu
def test_int8_io_parity_under_qemu(tmp_path) -> None:
    from edgeexport.runtimes.litert_qemu import LiteRtQemuRuntime

    reason = LiteRtQemuRuntime().unavailable_reason()
    require(reason)
    outcome, manifest, out = _convert(tmp_path, "rpi", "int8", int8_io=True, io_layout="nhwc")
    assert manifest["inputs"][0]["dtype"] == "int8" and manifest["outputs"][0]["dtype"] == "int8"
    by = {p["runtime"]: p for p in outcome.report["parity"]}
    for name in ("litert", "litert-aarch64-qemu"):
        assert by[name]["executed"] and by[name]["passed"], by[name]
    # both read the same int8 codes: the same numbers up to XNNPACK's arm/x86 kernels
    assert abs(by["litert"]["cosine"] - by["litert-aarch64-qemu"]["cosine"]) < 1e-3


def test_int8_io_needs_a_quantized_model(tmp_path) -> None:
    with pytest.raises(UsageError, match="--int8-io"):
        _convert(tmp_path, "rpi", int8_io=True)
    assert not (tmp_path / "rpi-None").exists()


def test_labels_count_is_checked(tmp_path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    opts = ConvertOptions(target="onnx", input_specs=[parse_input_spec("1,3,32,32")],
                          labels=str(labels), timing_runs=1)
    with pytest.raises(UsageError, match="2 labels, but no output has 2 classes"):
        convert(MODEL, tmp_path / "out", opts)
    assert not (tmp_path / "out").exists()


def test_preprocess_without_calibration_data_is_recorded(tmp_path) -> None:
    opts = ConvertOptions(target="onnx", input_specs=[parse_input_spec("1,3,32,32")],
                          calibration_preprocess="resize=40,crop=32,mean=0.5,std=0.25",
                          timing_runs=1)
    manifest = convert(MODEL, tmp_path / "out", opts).manifest
    pre = manifest["preprocessing"]
    assert pre["mean"] == [0.5] * 3 and pre["std"] == [0.25] * 3
    assert pre["value_range"] == [[-2.0, 2.0]] * 3 and pre["layout"] == "NCHW"
    assert pre["resize"]["shorter_side"] == 40 and pre["crop"]["width"] == 32
    assert contract.errors(manifest) == []
