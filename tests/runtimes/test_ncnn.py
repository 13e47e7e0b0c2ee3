"""The ncnn runtimes: the device really used (Vulkan device name or cpu), ncnn's silent CPU
fallback detected and never counted as Vulkan parity, per-layer blobs by IR name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper, shape_inference

from edgeexport.delegates import load_target
from edgeexport.runtimes import get, ncnn as ncnn_rt
from edgeexport.runtimes.onnxruntime import OrtSession
from tests.conftest import require_vulkan

RNG = np.random.default_rng(2)
REPO = Path(__file__).resolve().parents[2]


def _model() -> ir.Model:
    w = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = RNG.standard_normal((4, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "b"], ["a"]),
             helper.make_node("Softmax", ["a"], ["y"], axis=1)]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 5, 7))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 4, 5, 7))],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    return ir.serde.deserialize_model(shape_inference.infer_shapes(proto))


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    import argparse

    out = tmp_path_factory.mktemp("ncnn")
    model = _model()
    art = load_target("vulkan").emit(model, out, argparse.Namespace(precision="fp32"))
    ir.save(model, os.fspath(out / "ir.onnx"))
    return art.path


X = {"x": RNG.standard_normal((1, 3, 5, 7)).astype(np.float32)}


def test_cpu_session_reports_cpu(artifact: Path) -> None:
    session = get("ncnn-cpu").load(artifact)
    assert session.device == "cpu" and session.details["vulkan"] is False
    assert session.fallback is None  # nothing was asked of Vulkan
    assert get("ncnn-cpu").formats == ("ncnn",)


@pytest.mark.vulkan
def test_vulkan_session_names_the_device(artifact: Path) -> None:
    require_vulkan()
    devices = ncnn_rt.vulkan_devices()
    session = get("ncnn-vulkan").load(artifact)
    assert session.device == devices[0]["name"] != "cpu"
    assert session.details["vulkan"] is True and session.fallback is None
    assert session.details["fp16_storage"] is False  # fp32 artifact: fp16 paths off
    got = session.run(X)["y"]
    want = get("ncnn-cpu").load(artifact).run(X)["y"]
    assert np.abs(got - want).max() < 1e-5


def test_per_layer_blobs_match_onnxruntime(artifact: Path) -> None:
    got = get("ncnn-cpu").load(artifact).run_all(X)
    want = OrtSession(artifact.with_name("ir.onnx"), optimize=False).run_all(X)
    assert {"x", "c", "a", "y"} <= set(got)
    for name in ("c", "a", "y"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)


def test_weights_must_be_beside_the_param(tmp_path: Path, artifact: Path) -> None:
    lone = tmp_path / "model.param"
    lone.write_bytes(artifact.read_bytes())
    with pytest.raises(FileNotFoundError, match="model.bin"):
        get("ncnn-cpu").load(lone)


def test_driver_choice_honours_configuration(monkeypatch) -> None:
    # both variables are registered with monkeypatch so that the test leaves no trace
    monkeypatch.setenv("VK_DRIVER_FILES", "")
    monkeypatch.setenv("VK_ICD_FILENAMES", "/some/icd.json")
    monkeypatch.delenv(ncnn_rt.DISABLE_ENV, raising=False)
    assert ncnn_rt.configure_vulkan_env() == "VK_ICD_FILENAMES=/some/icd.json"
    monkeypatch.setenv(ncnn_rt.DISABLE_ENV, "1")
    assert "disabled" in ncnn_rt.configure_vulkan_env()
    assert os.environ["VK_ICD_FILENAMES"].startswith("/nonexistent")


def test_forced_unavailable_vulkan_runs_on_cpu_and_says_so(artifact: Path) -> None:
    """ncnn would quietly use the CPU: the session must report cpu and the fallback."""
    code = ("import json, sys; from edgeexport.runtimes import get; "
            "s = get('ncnn-vulkan').load(sys.argv[1]); "
            "print(json.dumps({'device': s.device, 'fallback': s.fallback, "
            "'vulkan': s.details['vulkan']}))")
    env = dict(os.environ, **{ncnn_rt.DISABLE_ENV: "1"})
    out = subprocess.run([sys.executable, "-c", code, str(artifact)], env=env, check=True,
                         capture_output=True, text=True).stdout
    info = json.loads(out.strip().splitlines()[-1])
    assert info["device"] == "cpu" and info["vulkan"] is False
    assert "not Vulkan parity" in info["fallback"]


def test_convert_without_vulkan_reports_cpu_not_vulkan_parity(tmp_path: Path) -> None:
    """The whole command with Vulkan forced off: report.json says cpu for the ncnn-vulkan
    entry and does not count it as executed; the CPU entry still carries the parity."""
    exe = Path(sys.executable).with_name("edgeexport")
    env = dict(os.environ, **{ncnn_rt.DISABLE_ENV: "1"})
    out = tmp_path / "out"
    proc = subprocess.run([str(exe), "convert", "edgeexport.zoo:resnet_small", "--input-shape",
                           "1,3,64,64", "--target", "vulkan", "--precision", "fp32", "-o",
                           str(out)], env=env, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    entries = {p["runtime"]: p for p in report["parity"]}
    vk = entries["ncnn-vulkan"]
    assert vk["device"] == "cpu" and vk["executed"] is False and vk["passed"] is False
    assert "CPU" in vk["reason"] and vk["details"]["vulkan"] is False
    cpu = entries["ncnn-cpu"]
    assert cpu["executed"] and cpu["passed"] and cpu["device"] == "cpu"
    assert cpu["max_rel_err"] <= 1e-4
