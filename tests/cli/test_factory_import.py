"""`package.module:factory`: only a Python function or nn.Module class is called (once), it must
build an nn.Module, and the current directory is searched for modules only with
--allow-cwd-import (a planted onnxruntime.py next to the user is never imported without it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_bad_input import _assert_clean_refusal
from tests.conftest import run_cli


def _convert(model: str, cwd: Path, *extra: str):
    return run_cli("convert", model, "--input-shape", "1,4", "--target", "onnx", "-o",
                   str(cwd / "out"), *extra, cwd=cwd)


@pytest.mark.parametrize("factory", ["os:getcwd", "sys:exit", "os:abort"])
def test_builtins_are_refused_before_the_call(factory: str, tmp_path: Path) -> None:
    proc = _convert(factory, tmp_path)
    _assert_clean_refusal(proc, tmp_path, factory, "builtin", "python function")


def test_class_that_is_not_a_module_is_refused(tmp_path: Path) -> None:
    proc = _convert("subprocess:Popen", tmp_path)
    _assert_clean_refusal(proc, tmp_path, "subprocess:Popen", "not an nn.Module")


FACTORIES = '''
import torch
from pathlib import Path

def build():
    with open(Path(__file__).with_name("calls.txt"), "a") as f:
        f.write("called\\n")
    return torch.nn.Linear(4, 2)

def number():
    return 42

def needs_args(width):
    return torch.nn.Linear(width, 2)

def exits():
    raise SystemExit(0)
'''


def test_cwd_module_needs_the_flag_and_is_called_once(tmp_path: Path) -> None:
    (tmp_path / "mymodels.py").write_text(FACTORIES)
    proc = _convert("mymodels:build", tmp_path)
    _assert_clean_refusal(proc, tmp_path, "mymodels", "--allow-cwd-import")
    assert not (tmp_path / "calls.txt").exists()
    proc = _convert("mymodels:build", tmp_path, "--allow-cwd-import")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "calls.txt").read_text().splitlines() == ["called"]


@pytest.mark.parametrize("name, words", [("number", ["returned a int", "nn.Module"]),
                                         ("needs_args", ["required arguments"]),
                                         ("exits", ["factory failed", "SystemExit"])])
def test_factory_that_does_not_build_a_module(name: str, words: list[str],
                                              tmp_path: Path) -> None:
    (tmp_path / "mymodels.py").write_text(FACTORIES)
    proc = _convert(f"mymodels:{name}", tmp_path, "--allow-cwd-import")
    _assert_clean_refusal(proc, tmp_path, f"mymodels:{name}", *words)


PLANTED = '''
from pathlib import Path
Path(__file__).with_name("PLANTED_RAN").write_text("imported")
raise ImportError("planted")
'''


def test_planted_module_in_cwd_is_not_imported(tmp_path: Path) -> None:
    (tmp_path / "onnxruntime.py").write_text(PLANTED)
    proc = run_cli("convert", "edgeexport.zoo:resnet_small", "--input-shape", "1,3,64,64",
                   "--target", "onnx", "-o", str(tmp_path / "out"), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    parity = {p["runtime"]: p for p in json.loads(proc.stdout)["result"]["report"]["parity"]}
    assert parity["onnxruntime"]["executed"] and parity["onnxruntime"]["passed"]
    assert not (tmp_path / "PLANTED_RAN").exists()
    # the same folder with the flag does import it: the check above is live
    proc = run_cli("convert", "edgeexport.zoo:resnet_small", "--input-shape", "1,3,64,64",
                   "--target", "onnx", "-o", str(tmp_path / "out2"), "--json",
                   "--allow-cwd-import", cwd=tmp_path)
    assert (tmp_path / "PLANTED_RAN").exists()
