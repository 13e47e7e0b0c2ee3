"""Bad input: one line on stderr naming the file and the problem, exit 2, no traceback, and
nothing left behind in the output's folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli, save_model


def _assert_clean_refusal(proc, out_parent: Path, *must_contain: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    for text in must_contain:
        assert text.lower() in lines[0].lower(), lines[0]
    if out_parent.exists():
        leftovers = [p.name for p in out_parent.iterdir() if p.name.startswith(".out")
                     or p.name == "out"]
        assert leftovers == [], leftovers


def _convert(model: str, tmp: Path, *extra: str):
    return run_cli("convert", model, "--target", "onnx", "-o", str(tmp / "out"), *extra)


def test_missing_file(tmp_path) -> None:
    proc = _convert(str(tmp_path / "nope.pt"), tmp_path)
    _assert_clean_refusal(proc, tmp_path, "nope.pt", "no such file")


def test_empty_file(tmp_path) -> None:
    (tmp_path / "empty.pt").write_bytes(b"")
    proc = _convert(str(tmp_path / "empty.pt"), tmp_path)
    _assert_clean_refusal(proc, tmp_path, "empty.pt", "empty")


def test_random_bytes(tmp_path) -> None:
    (tmp_path / "noise.pt").write_bytes(os.urandom(4096))
    proc = _convert(str(tmp_path / "noise.pt"), tmp_path, "--input-shape", "1,3,8,8")
    _assert_clean_refusal(proc, tmp_path, "noise.pt", "not a model file")


def test_truncated_torchscript(tmp_path) -> None:
    src = Path(save_model("torchscript", "resnet", tmp_path))
    data = src.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    proc = _convert(str(tmp_path / "cut.pt"), tmp_path, "--input-shape", "1,3,64,64")
    _assert_clean_refusal(proc, tmp_path, "cut.pt", "truncated or corrupt")


def test_state_dict_says_what_to_pass(tmp_path) -> None:
    model = torch.nn.Linear(4, 2)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    proc = _convert(str(tmp_path / "weights.pt"), tmp_path, "--input-shape", "1,4")
    _assert_clean_refusal(proc, tmp_path, "weights.pt", "state_dict", "package.module:factory")


def test_wrong_input_rank_torchscript(tmp_path) -> None:
    src = save_model("torchscript", "resnet", tmp_path)
    proc = _convert(src, tmp_path, "--input-shape", "1,3,64")
    _assert_clean_refusal(proc, tmp_path, "resnet.pt", "--input-shape")


def test_wrong_input_rank_exported_program(tmp_path) -> None:
    src = save_model("pt2", "resnet", tmp_path)
    proc = _convert(src, tmp_path, "--input-shape", "1,3,64")
    _assert_clean_refusal(proc, tmp_path, "resnet.pt2", "rank 4", "rank 3")


def test_pickled_module_needs_trust_flag(tmp_path) -> None:
    src = save_model("pickle", "resnet", tmp_path)
    proc = _convert(src, tmp_path, "--input-shape", "1,3,64,64")
    _assert_clean_refusal(proc, tmp_path, "resnet.pkl", "--trust-pickle")


def test_unwritable_output_directory(tmp_path) -> None:
    # /proc refuses new files even to root, where permission bits would not
    proc = run_cli("convert", "edgeexport.zoo:resnet_small", "--input-shape", "1,3,64,64",
                   "--target", "onnx", "-o", "/proc/edgeexport-out")
    _assert_clean_refusal(proc, tmp_path, "/proc", "not writable")
    assert not Path("/proc/edgeexport-out").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permission bits")
def test_read_only_directory(tmp_path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    proc = run_cli("convert", "edgeexport.zoo:resnet_small", "--input-shape", "1,3,64,64",
                   "--target", "onnx", "-o", str(ro / "out"))
    _assert_clean_refusal(proc, ro, "not writable")


def test_unknown_factory_module(tmp_path) -> None:
    proc = _convert("no_such_pkg.models:build", tmp_path, "--input-shape", "1,3,8,8")
    _assert_clean_refusal(proc, tmp_path, "no_such_pkg", "cannot import")


def test_bad_input_shape_syntax(tmp_path) -> None:
    proc = _convert("edgeexport.zoo:resnet_small", tmp_path, "--input-shape", "1,3,a,b")
    _assert_clean_refusal(proc, tmp_path, "--input-shape")


def test_debug_shows_traceback(tmp_path) -> None:
    proc = run_cli("convert", str(tmp_path / "nope.pt"), "--target", "onnx", "-o",
                   str(tmp_path / "out"), "--debug")
    assert proc.returncode == 2 and "Traceback" in proc.stderr
