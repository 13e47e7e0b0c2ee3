"""An op that no path of the target can lower stops the conversion right after export, before
quantization and calibration, with the one-line error (op, node, PyTorch origin, targets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeexport import pipeline, quantize
from edgeexport.errors import UnsupportedOpError
from edgeexport.exporter.inputs import parse_input_spec
from tests.conftest import REPO, run_cli

MODEL = "tests.validate.conditioning_models:unsupported_on_vulkan"


def test_unsupported_op_fails_before_quantization(monkeypatch, tmp_path: Path) -> None:
    def quantization_ran(*args, **kwargs):  # the hook: quantization must not start
        raise AssertionError("quantization ran before the unsupported op was found")

    monkeypatch.setattr(quantize, "apply", quantization_ran)
    monkeypatch.chdir(REPO)
    opts = pipeline.ConvertOptions("vulkan", [parse_input_spec("x=1,3,16,16")],
                                   allow_cwd_import=True, quantize="int8",
                                   calibration_data="random")
    with pytest.raises(UnsupportedOpError) as err:
        pipeline.convert(MODEL, tmp_path / "out", opts)
    assert err.value.op == "Sign" and err.value.target == "vulkan"
    assert "aten.sign" in (err.value.source or "")
    assert "coreml" in err.value.supported_by and "vulkan" not in err.value.supported_by
    assert not (tmp_path / "out").exists()


def test_unsupported_op_cli_line(tmp_path: Path) -> None:
    proc = run_cli("convert", MODEL, "--allow-cwd-import", "--input-shape", "x=1,3,16,16",
                   "--target", "vulkan", "--quantize", "int8", "-o", str(tmp_path / "o"),
                   cwd=REPO)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("edgeexport: error: op Sign at node '")
    assert "(from <top> (aten.sign.default))" in lines[0] and "supported by: onnx" in lines[0]


def test_every_lowerable_op_passes_the_check() -> None:
    """The onnx target takes any node; a model vulkan can lower passes the early check."""
    from edgeexport import delegates
    from edgeexport.exporter import export

    result = export("edgeexport.zoo:resnet_small",
                    input_specs=[parse_input_spec("x=1,3,32,32")])
    for target in ("onnx", "vulkan", "nnapi", "coreml"):
        delegates.load_target(target).check_lowerable(result.model)
