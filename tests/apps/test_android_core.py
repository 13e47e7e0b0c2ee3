"""Kotlin bundle-core, compiled with the pinned kotlinc and run with JUnit (scripts/build-android-
core.sh), on real bundles: Kotlin reads their manifests and parity tensors, runs the .tflite
through JNI in the native runner's LiteRT backend (NativeLiteRtRunner over libedgeexport_jni.so)
and computes parity statistics, which must equal report.json's LiteRT row to 1e-6 (an int8
output dequantized by Kotlin with the manifest's quantization); and on the shipped photos,
Kotlin's preprocessing must give Python's `--preprocess imagenet` tensor within 1/255. Bundles
converted with --preprocess and --labels (float NCHW, and int8 NHWC I/O) also have a photo go
through their manifest's preprocessing: the input the artifact takes, within 1/255 (float) or
one int8 code.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeexport.runtimes import native
from edgeexport.validate.bundle import read_manifest
from edgeexport.validate.manifest import Boundary, preprocessing
from tests.apps.conftest import BUNDLES, missing_tool, require_commands
from tests.apps.vectors import image_input, python_preprocess
from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "build-android-core.sh"
JARS = [Path("/usr/share/java") / j for j in ("junit4.jar", "hamcrest-core.jar",
                                              "json-android.jar")]


def _le(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr, order="C")
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()


def bundle_case(bundle: Path, folder: Path) -> dict:
    """A bundle for the Kotlin test: judged against report.json's `litert` row; with a photo
    through its manifest's preprocessing when it has one."""
    manifest = read_manifest(bundle)
    case = {"bundle": str(bundle), "runtime": "litert"}
    if manifest["preprocessing"] is not None:  # a photo as this artifact takes it, from Python
        folder.mkdir(parents=True)
        case["photo"] = bundle_photo(manifest, folder)
    return case


def bundle_photo(manifest: dict, folder: Path) -> dict:
    """The first shipped photo through the manifest's preprocessing in Python (calibration's
    --preprocess path), in the input's layout and dtype (int8 codes with --int8-io)."""
    from edgeexport.zoo.photos import load_photo, photo_paths

    pre = manifest["preprocessing"]
    b = Boundary.from_json(next(t for t in manifest["inputs"] if t["name"] == pre["input"]))
    name, path = sorted(photo_paths().items())[0]
    rgb = load_photo(path)
    tensor, _ = python_preprocess(rgb, pre["spec"], tuple(b.pytorch_shape))
    (folder / f"{name}.rgb").write_bytes(rgb.tobytes())
    (folder / f"{name}.input").write_bytes(_le(b.to_artifact(tensor)))
    return {"name": name, "width": rgb.shape[1], "height": rgb.shape[0],
            "rgb": str(folder / f"{name}.rgb"), "tensor": str(folder / f"{name}.input")}


def photo_cases(folder: Path) -> list[dict]:
    from edgeexport.zoo.photos import load_photo, photo_paths

    shape = (1, 3, 224, 224)
    b = image_input("imagenet", shape)
    cases = []
    for name, path in sorted(photo_paths().items()):
        rgb = load_photo(path)
        tensor, _ = python_preprocess(rgb, "imagenet", shape)
        (folder / f"{name}.rgb").write_bytes(rgb.tobytes())
        (folder / f"{name}.f32").write_bytes(_le(tensor.astype(np.float32)))
        cases.append({"name": name, "width": rgb.shape[1], "height": rgb.shape[0],
                      "rgb": str(folder / f"{name}.rgb"), "tensor": str(folder / f"{name}.f32"),
                      "preprocessing": preprocessing("imagenet", [b]), "input": b.to_json()})
    return cases


def jni_library() -> Path:
    """libedgeexport_jni.so, brought up to date with the native runner's host build."""
    try:
        lib = native.build("host", ncnn="cached").parent / "libedgeexport_jni.so"
    except native.NativeUnavailable as exc:
        missing_tool(str(exc))
    if not lib.exists():
        missing_tool(f"{lib} was not built: no jni.h (scripts/system-deps.sh installs "
                     "default-jdk-headless)")
    return lib


def run_core_tests(cases: Path | None = None) -> subprocess.CompletedProcess:
    require_commands("java", "npm")
    for jar in JARS:
        if not jar.exists():
            missing_tool(f"{jar} is missing (scripts/system-deps.sh installs junit4, "
                         "libhamcrest-java, libandroid-json-org-java)")
    cmd = ["nice", "-n", "10", "bash", str(SCRIPT)]
    if cases:
        cmd += ["--cases", str(cases), "--jni", str(jni_library())]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1800)


@pytest.mark.slow
def test_bundle_core_on_real_bundles(tflite_bundles: dict[str, Path], tmp_path: Path) -> None:
    bundles = [bundle_case(b, tmp_path / "photo" / name) for name, b in tflite_bundles.items()]
    photos_dir = tmp_path / "photos"
    photos_dir.mkdir()
    photos = photo_cases(photos_dir)
    assert len(photos) >= 6, "the shipped photos (edgeexport.zoo.photos) are missing"
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"bundles": bundles, "photos": photos}))

    r = run_core_tests(cases)
    print(r.stdout)  # the parity tables and photo differences, for -s and the CI log
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    m = re.search(r"OK \((\d+) tests\)", r.stdout)
    assert m and int(m.group(1)) >= 15, r.stdout[-3000:]
    # every bundle's table and every photo were printed by the Kotlin side, i.e. really checked
    for name in tflite_bundles:
        assert f"{name} (" in r.stdout
    diffs = [float(x) for x in re.findall(r"max \|kotlin - python\| = (\S+)", r.stdout)]
    assert len(diffs) == len(photos) and max(diffs) <= 1 / 255
    # the bundles converted with --preprocess/--labels: a photo through their manifest's
    # preprocessing (float NCHW, int8 NHWC) and their labels, read by Kotlin
    with_keys = [n for n, args in BUNDLES.items() if "--preprocess" in args]
    for name in with_keys:
        m = re.search(rf"{name}: photo \S+ as (\S+) (\S+) .*max \|kotlin - python\| in "
                      rf"(\S+) = (\S+); labels (\d+)", r.stdout)
        assert m, f"{name}: no photo line in {r.stdout[-3000:]}"
        dtype = read_manifest(tflite_bundles[name])["inputs"][0]["dtype"]
        assert m.group(2) == dtype and int(m.group(5)) == 10
        assert float(m.group(4)) <= (1 if dtype == "int8" else 1 / 255), m.group(0)
    assert any(read_manifest(tflite_bundles[n])["inputs"][0]["layout"] == "NHWC"
               for n in with_keys)
    # every bundle really ran through JNI; the int8-io bundle's output came back as int8 codes,
    # which Kotlin dequantized with the manifest's quantization before its statistics equalled
    # report.json's
    given = dict(re.findall(r"(\w+) \(\S+ \S+\): litert-native-jni outputs (.+)$", r.stdout,
                            re.M))
    assert set(given) == set(tflite_bundles), r.stdout[-3000:]
    assert given["resnet_rpi_int8_io_nhwc"] == "output=int8"
    assert given["resnet_nnapi_fp32"] == "output=float32"
    diff = re.search(r"JNI statistics vs report.json: max \|difference\| = (\S+)", r.stdout)
    assert diff and float(diff.group(1)) <= 1e-6, r.stdout[-3000:]
