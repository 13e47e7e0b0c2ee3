"""The Python API as users call it: an nn.Module in memory and example tensors, to every target,
checked on the real runtimes (bundle.passed, the parity numbers), float and int8.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import edgeexport
from edgeexport.errors import UsageError
from edgeexport.target_options import CoremlOptions, RpiOptions


class SmallNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(image)).mean((2, 3)))


@pytest.fixture(scope="module")
def net() -> SmallNet:
    torch.manual_seed(0)
    return SmallNet().eval()


def _example(seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def _executed(bundle: edgeexport.Bundle) -> list[dict]:
    rows = [p for p in bundle.parity if p["executed"]]
    assert rows, bundle.parity
    return rows


@pytest.mark.parametrize("target", ["onnx", "nnapi", "vulkan", "coreml",
                                    pytest.param("rpi", marks=pytest.mark.slow)])
def test_module_to_each_target(net: SmallNet, target: str) -> None:
    bundle = edgeexport.convert(net, _example(), target=target)
    assert bundle.passed, bundle.report["parity"]
    assert bundle.verdict == "passed" and bundle.artifact.exists()
    assert bundle.manifest["inputs"][0]["name"] == "image"  # from forward's signature
    for row in _executed(bundle):
        assert row["max_abs_err"] < 1e-2 and row["cosine"] > 0.999
    x = _example(7)
    want = net(x).detach().numpy()
    got = next(iter(bundle.run(x).values()))
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-2, rtol=1e-2)


def test_all_targets_in_one_call(net: SmallNet, tmp_path) -> None:
    bundles = edgeexport.convert(net, (_example(),), targets=["onnx", "nnapi", "vulkan",
                                                              "coreml", "metal"],
                                 out=tmp_path / "all",
                                 options={"nnapi": {"android_api": 30},
                                          "coreml": CoremlOptions(ios=17)})
    assert bundles["nnapi"].manifest["target_options"]["android_api"] == 30
    assert bundles["coreml"].manifest["target_options"]["ios"] == 17
    assert bundles["metal"].manifest["target_options"]["ios"] == 16
    assert set(bundles) == {"onnx", "nnapi", "vulkan", "coreml", "metal"}
    assert all(b.passed for b in bundles.values()), {k: b.verdict for k, b in bundles.items()}
    combined = json.loads((tmp_path / "all" / "report.json").read_text())
    assert combined["passed"] and set(combined["targets"]) == set(bundles)
    for name, entry in combined["targets"].items():
        assert any(p["executed"] for p in entry["parity"]), name


def test_int8_with_calibration_arrays_calibrates_once(net: SmallNet, tmp_path,
                                                      monkeypatch) -> None:
    from edgeexport import quantize as quantize_pkg

    calls = []
    real_apply = quantize_pkg.apply

    def counting_apply(*args, **kwargs):  # the real quantizer, counted
        calls.append(args[1])
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(quantize_pkg, "apply", counting_apply)
    calibration = [_example(100 + i) for i in range(16)]
    bundles = edgeexport.convert(net, _example(), target="all", quantize="int8",
                                 calibration=calibration, out=tmp_path / "q")
    assert calls == ["int8"]  # one calibration for every target
    combined = json.loads((tmp_path / "q" / "report.json").read_text())
    assert combined["shared"]["quantize_runs"] == 1
    assert combined["shared"]["quantization"]["scheme"] == "int8"
    for name, b in bundles.items():
        assert b.manifest["quantization"]["scheme"] == "int8", name
        # judged on the calibration arrays (real data), not on a random sample
        assert b.verdict == "passed", (name, b.report["verdict_reason"], b.parity)
        for row in _executed(b):
            assert row["cosine"] > 0.98, (name, row)


def test_options_dataclass_and_dict(net: SmallNet, tmp_path) -> None:
    b = edgeexport.convert(net, _example(), target="coreml",
                           options=CoremlOptions(ios=17), out=tmp_path / "c")
    assert b.manifest["target_options"]["ios"] == 17
    with pytest.raises(UsageError, match="no option cpuu"):
        edgeexport.convert(net, _example(), target="rpi", options={"cpuu": "cortex-a76"})
    with pytest.raises(UsageError, match="cortex-a99"):
        edgeexport.convert(net, _example(), target="rpi", options=RpiOptions(cpu="cortex-a99"))


def test_errors_name_api_arguments(net: SmallNet) -> None:
    with pytest.raises(UsageError) as err:
        edgeexport.convert(net, target="onnx")
    assert "example_inputs" in str(err.value) and "--input-shape" not in str(err.value)


def test_bundle_object(net: SmallNet, tmp_path) -> None:
    exported = torch.export.export(net, (_example(),))
    b = edgeexport.convert(exported, _example(), target="onnx", out=tmp_path / "b")
    again = edgeexport.load_bundle(tmp_path / "b")
    assert again.verdict == b.verdict == "passed"
    checked = again.validate(per_layer=True)
    assert checked["verdict"] == "passed"
    assert checked["per_layer"]["onnxruntime"]["first_over_tolerance"] is None
    assert "<table>" in b._repr_html_() and "onnxruntime" in b._repr_html_()
    rows = b.bench(runs=2)
    assert rows[0]["executed"] and rows[0]["median_ms"] > 0
    cov = edgeexport.inspect(net, _example(), target="vulkan")
    assert cov["delegated_ops"] == cov["total_ops"]
    ir_model, info = edgeexport.quantize(net, _example(), scheme="fp16")
    assert info["scheme"] == "fp16" and len(ir_model.graph) > 0


def test_import_is_light() -> None:
    code = "import sys, edgeexport; print('torch' in sys.modules, sorted(dir(edgeexport)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("False") and "convert" in out and "load_bundle" in out


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeexport.cli", *argv], capture_output=True,
                          text=True)


def test_cli_help_and_targets_list_target_options() -> None:
    help_text = _cli("convert", "--help").stdout
    for group, flag in [("nnapi target options", "--android-api"),
                        ("rpi target options", "--cpu"),
                        ("coreml, metal target options", "--coreml-image-input"),
                        ("nnapi, rpi target options", "--io-layout")]:
        assert group in help_text and flag in help_text
    text = _cli("targets").stdout
    assert "--android-api" in text and "default 29" in text and "default cortex-a72" in text
    info = json.loads(_cli("targets", "--json").stdout)["result"]
    rpi = next(t for t in info["targets"] if t["target"] == "rpi")
    cpu = next(o for o in rpi["options"] if o["name"] == "cpu")
    assert cpu["default"] == "cortex-a72" and cpu["choices"] == ["cortex-a72", "cortex-a76"]


def test_cli_refuses_another_targets_flag(tmp_path) -> None:
    r = _cli("convert", "x.onnx", "--target", "onnx", "--cpu", "cortex-a76",
             "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "--cpu is an option of target rpi" in r.stderr


class TopFive(torch.nn.Module):
    """A top-5 head: TopK has no vulkan (ncnn) mapping, every other target takes it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(12, 20)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.topk(self.fc(x), 5).values


def test_a_target_that_cannot_take_the_model_does_not_stop_the_others(tmp_path) -> None:
    from edgeexport.errors import UnsupportedOpError
    from edgeexport.pipeline import NotConverted

    torch.manual_seed(0)
    x = torch.randn(1, 12)
    got = edgeexport.convert(TopFive().eval(), x, targets=["onnx", "vulkan"], out=tmp_path / "t")
    assert isinstance(got["vulkan"], NotConverted)
    assert isinstance(got["vulkan"].error, UnsupportedOpError) and got["vulkan"].error.op == "TopK"
    assert got["onnx"].passed, got["onnx"].parity
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["onnx", "report.json"]
    combined = json.loads((tmp_path / "t" / "report.json").read_text())
    assert combined["targets"]["vulkan"]["verdict"] == "not converted"
    assert "TopK" in combined["targets"]["vulkan"]["error"] and not combined["passed"]
    with pytest.raises(UnsupportedOpError, match="TopK"):  # no target at all: the error itself
        edgeexport.convert(TopFive().eval(), x, targets=["vulkan"], out=tmp_path / "v")


def test_run_takes_a_bundle_folder(net: SmallNet, tmp_path) -> None:
    edgeexport.convert(net, _example(), target="onnx", out=tmp_path / "b")
    np.save(tmp_path / "x.npy", _example(3).numpy())
    proc = _cli("run", str(tmp_path / "b"), "--input", f"image={tmp_path / 'x.npy'}", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["result"]
    want = net(_example(3)).detach().numpy().ravel()
    got = np.array(next(iter(doc["outputs"].values()))["values"])
    np.testing.assert_allclose(got, want[:len(got)], atol=1e-5)
    (tmp_path / "b" / "model.onnx").write_bytes(b"tampered")  # the manifest's hash is checked
    proc = _cli("run", str(tmp_path / "b"), "--input", f"image={tmp_path / 'x.npy'}")
    assert proc.returncode == 2 and "sha256" in proc.stderr, proc.stderr


@pytest.mark.slow
def test_target_all_on_the_command_line_lists_a_target_it_could_not_convert(tmp_path) -> None:
    out = tmp_path / "all"
    argv = ["convert", "tests.test_api:TopFive", "--allow-cwd-import", "--input-shape", "x=1,12",
            "--target", "all", "-o", str(out)]
    proc = _cli(*argv)
    assert proc.returncode == 1, proc.stderr[-2000:]  # a conversion error, after the others
    assert "vulkan" in proc.stdout and "not converted" in proc.stdout and "TopK" in proc.stdout
    written = sorted(p.name for p in out.iterdir())
    assert "vulkan" not in written and {"onnx", "nnapi", "report.json"} <= set(written), written
    combined = json.loads((out / "report.json").read_text())
    assert combined["targets"]["vulkan"]["verdict"] == "not converted"
    assert all(t["verdict"] == "passed" for n, t in combined["targets"].items() if n != "vulkan")
    doc = json.loads(_cli(*argv, "--force", "--json").stdout)
    assert doc["exit_code"] == 1 and not doc["ok"]
    by_target = {d["target"]: d for d in doc["result"]}
    assert by_target["vulkan"]["verdict"] == "not converted" and by_target["onnx"]["ok"]


def test_topk_values_only_on_tflite() -> None:
    """TopK's indices unread (only the values are an output): the .tflite keeps both outputs of
    the kept TOPK_V2 while it drops the dead CAST that read the indices."""
    torch.manual_seed(0)
    bundle = edgeexport.convert(TopFive().eval(), torch.randn(1, 12), target="nnapi")
    assert bundle.passed, bundle.parity
