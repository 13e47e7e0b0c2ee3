"""The same input and options give byte-identical bundles on every target, from two separate
processes (hash seeds and set order differ between them): fp32 with `--target all`, and int8
through the TFLite and CoreML (W8A8, iOS 17) quantized emitters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeexport import profile
from tests.conftest import run_cli

MODEL = ("edgeexport.zoo:resnet_small", "--input-shape", "x=1,3,32,32")
#: timings differ between runs; the manifest's hashes of them are dropped from the comparison
TIMED = {"report.json", "report.html"}
#: the emulated parity run changes no artifact byte and is the slowest part
ENV = {"EDGEEXPORT_NO_QEMU": "1"}


def _bundle_bytes(root: Path) -> dict[str, bytes]:
    files = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not p.is_file() or p.name in TIMED:
            continue
        data = p.read_bytes()
        if p.name == "manifest.json":
            manifest = json.loads(data)
            manifest["files"] = {k: v for k, v in manifest["files"].items()
                                 if k.rsplit("/", 1)[-1] not in TIMED}
            data = json.dumps(manifest, sort_keys=True).encode()
        files[rel] = data
    return files


def _twice(tmp_path: Path, *args: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        proc = run_cli("convert", *MODEL, *args, "-o", str(out), env=ENV)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        runs.append(_bundle_bytes(out))
    return runs[0], runs[1]


def _assert_same(a: dict[str, bytes], b: dict[str, bytes]) -> None:
    assert sorted(a) == sorted(b)
    differ = [k for k in a if a[k] != b[k]]
    assert differ == [], differ


@pytest.mark.slow
def test_every_target_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    a, b = _twice(tmp_path, "--target", "all")
    _assert_same(a, b)
    for target in profile.TARGET_MODULES:  # every target wrote its artifact and manifest
        assert f"{target}/manifest.json" in a
        assert any(k.startswith(f"{target}/model.") for k in a), target
        assert any(k.startswith(f"{target}/parity/") for k in a), target


@pytest.mark.slow
@pytest.mark.parametrize("target", [("rpi",), ("coreml", "--ios", "17")],
                         ids=["rpi", "coreml-ios17"])
def test_int8_twice_gives_the_same_bytes(target: tuple[str, ...], tmp_path: Path) -> None:
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(1).standard_normal((8, 1, 3, 32, 32)).astype(np.float32))
    a, b = _twice(tmp_path, "--target", *target, "--quantize", "int8", "--calibration-data",
                  str(calib))
    _assert_same(a, b)
    assert any(k.startswith("model.") for k in a)
