"""`validate` and `bench` check a bundle against its manifest before running anything: every
sha256 in `files`, no unlisted file, and every path (files keys, artifact, ir, parity, ONNX
external data) inside the bundle. Each refusal: exit 2, one line naming the file."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.cli.test_bad_input import _assert_clean_refusal
from tests.cli.test_external_data import external_model
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "resnet"
    proc = run_cli("convert", "edgeexport.zoo:resnet_small", "--input-shape", "1,3,64,64",
                   "--target", "onnx", "-o", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def _copy(bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "work" / "bundle"
    shutil.copytree(bundle, dst)
    return dst


def _manifest(b: Path) -> dict:
    return json.loads((b / "manifest.json").read_text())


def _write_manifest(b: Path, manifest: dict, rehash: str | None = None) -> None:
    if rehash is not None:
        manifest["files"][rehash] = hashlib.sha256((b / rehash).read_bytes()).hexdigest()
    (b / "manifest.json").write_text(json.dumps(manifest))


def _validate(b: Path):
    return run_cli("validate", str(b))


def test_untouched_bundle_validates(bundle: Path, tmp_path: Path) -> None:
    b = _copy(bundle, tmp_path)
    proc = _validate(b)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_tampered_weights_are_refused(bundle: Path, tmp_path: Path) -> None:
    b = _copy(bundle, tmp_path)
    model = onnx.load(b / "model.onnx")
    weight = next(t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT)
    arr = onnx.numpy_helper.to_array(weight).copy()
    arr[...] = 1e25
    weight.CopyFrom(onnx.numpy_helper.from_array(arr, weight.name))
    onnx.save(model, b / "model.onnx")
    for command in ("validate", "bench"):
        proc = run_cli(command, str(b))
        _assert_clean_refusal(proc, tmp_path, "model.onnx", "sha256")


def test_missing_and_unlisted_files_are_refused(bundle: Path, tmp_path: Path) -> None:
    b = _copy(bundle, tmp_path)
    parity = next(iter(sorted((b / "parity").iterdir())))
    parity.unlink()
    _assert_clean_refusal(_validate(b), tmp_path, parity.name, "missing")
    b = _copy(bundle, tmp_path / "2")
    (b / "extra.onnx").write_bytes((b / "model.onnx").read_bytes())
    _assert_clean_refusal(_validate(b), tmp_path, "extra.onnx", "not listed")


def test_a_bundle_opened_on_a_desktop_still_validates(bundle: Path, tmp_path: Path) -> None:
    """Finder's .DS_Store (and AppleDouble ._ files, Explorer's Thumbs.db) are never read: a
    bundle copied through a Mac is still the one its manifest lists; anything else is not."""
    b = _copy(bundle, tmp_path)
    for junk in (".DS_Store", "parity/.DS_Store", "._model.onnx", "Thumbs.db"):
        (b / junk).write_bytes(b"\x00\x00\x00\x01Bud1")
    proc = _validate(b)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (b / "DS_Store.onnx").write_bytes(b"\x00")
    _assert_clean_refusal(_validate(b), tmp_path, "DS_Store.onnx", "not listed")


@pytest.mark.parametrize("key", ["artifact", "ir", "parity", "files"])
@pytest.mark.parametrize("how", ["absolute", "dotdot"])
def test_manifest_path_outside_the_bundle(key: str, how: str, bundle: Path,
                                          tmp_path: Path) -> None:
    b = _copy(bundle, tmp_path)
    outside = b.parent / "outside.onnx"  # a working model, with its hash, outside the bundle
    shutil.copy(b / "model.onnx", outside)
    rel = str(outside) if how == "absolute" else "../outside.onnx"
    manifest = _manifest(b)
    if key in ("artifact", "ir"):
        manifest[key] = rel
    elif key == "parity":
        manifest["parity"][0]["path"] = rel
    manifest["files"][rel] = hashlib.sha256(outside.read_bytes()).hexdigest()
    _write_manifest(b, manifest)
    _assert_clean_refusal(_validate(b), tmp_path, "manifest.json", rel)


def test_symlink_out_of_the_bundle(bundle: Path, tmp_path: Path) -> None:
    b = _copy(bundle, tmp_path)
    outside = b.parent / "outside.onnx"
    shutil.move(b / "model.onnx", outside)
    (b / "model.onnx").symlink_to(outside)
    _assert_clean_refusal(_validate(b), tmp_path, "model.onnx", "outside")


def test_artifact_external_data_outside_the_bundle(bundle: Path, tmp_path: Path) -> None:
    """The artifact's hash is right (it was rehashed) but it reads a file outside."""
    b = _copy(bundle, tmp_path)
    (b.parent / "secret.bin").write_bytes(b"s" * 64)
    external_model(b / "model.onnx", "../secret.bin")
    _write_manifest(b, _manifest(b), rehash="model.onnx")
    _assert_clean_refusal(_validate(b), tmp_path, "model.onnx", "../secret.bin")


def test_broken_manifest_is_one_line(bundle: Path, tmp_path: Path) -> None:
    b = _copy(bundle, tmp_path)
    (b / "manifest.json").write_text("{not json")
    _assert_clean_refusal(_validate(b), tmp_path, "manifest.json", "json")


def test_mlpackage_item_outside_the_package(tmp_path: Path) -> None:
    """coremltools follows Manifest.json's item paths out of the package: run and validate
    refuse them (the bundle is rehashed, so the path is what is refused)."""
    out = tmp_path / "cm"
    proc = run_cli("convert", "edgeexport.zoo:resnet_small", "--input-shape", "1,3,64,64",
                   "--target", "coreml", "-o", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    pkg = out / "model.mlpackage"
    spec = next((pkg / "Data").rglob("model.mlmodel"))
    shutil.move(spec, tmp_path / "outside.mlmodel")  # a working spec, outside the bundle
    index = json.loads((pkg / "Manifest.json").read_text())
    item = next(e for e in index["itemInfoEntries"].values() if e["path"].endswith(".mlmodel"))
    item["path"] = "../../../outside.mlmodel"  # from cm/model.mlpackage/Data/
    (pkg / "Manifest.json").write_text(json.dumps(index))
    manifest = _manifest(out)
    del manifest["files"][spec.relative_to(out).as_posix()]
    _write_manifest(out, manifest, rehash="model.mlpackage/Manifest.json")
    _assert_clean_refusal(_validate(out), tmp_path, "Manifest.json", "outside.mlmodel")
    parity = next(e for e in manifest["parity"] if e["kind"] == "input")
    x = np.fromfile(out / parity["path"], dtype="<f4").reshape(parity["shape"])
    np.save(tmp_path / "x.npy", x)
    proc = run_cli("run", str(pkg), "--input", f"{parity['tensor']}={tmp_path / 'x.npy'}")
    _assert_clean_refusal(proc, tmp_path, "Manifest.json", "outside.mlmodel")
