"""`edgeexport app android|ios`: the written project holds every file its build needs, the bundle
byte for byte, the app's name, labels and preprocessing; wrong targets and non-empty folders are
refused with exit 2. (Building it needs Android Studio / Xcode: see android/ and ios/README.md.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeexport.ir import sha256_file
from edgeexport.validate.bundle import read_manifest
from edgeexport.validate.manifest import errors
from tests.apps.conftest import RESNET
from tests.conftest import REPO, run_cli

ANDROID_FILES = [
    "settings.gradle.kts", "build.gradle.kts", "gradle.properties",
    "gradle/wrapper/gradle-wrapper.properties", "app/build.gradle.kts",
    "app/src/main/AndroidManifest.xml", "app/src/main/res/values/strings.xml",
    "app/src/main/java/io/edgeexport/parity/MainActivity.kt",
    "app/src/main/java/io/edgeexport/parity/LiteRtRunner.kt",
    "app/src/main/java/io/edgeexport/parity/AppBundle.kt",
    "app/src/androidTest/java/io/edgeexport/parity/OnDeviceParityTest.kt",
    "bundle-core/build.gradle.kts", "bundle-core/src/test/vectors/statistics.json",
    "app/src/main/assets/app.json",
]
IOS_FILES = [
    "EdgeExportBundle/Package.swift",
    "EdgeExportBundle/Tests/EdgeExportBundleTests/VectorsTests.swift",
    "EdgeExportBundle/Tests/EdgeExportBundleTests/vectors/preprocessing.json",
    "EdgeExportParity.swiftpm/Package.swift", "EdgeExportParity.swiftpm/ParityApp.swift",
    "EdgeExportParity.swiftpm/ContentView.swift", "EdgeExportParity.swiftpm/AppModel.swift",
    "EdgeExportParity.swiftpm/Resources/app.json",
]


def _assert_bundle_inside(bundle: Path, inside: Path) -> None:
    """Every file the app reads is there unchanged (sha256 as in the manifest)."""
    manifest = read_manifest(bundle)
    assert (inside / "manifest.json").read_bytes() == (bundle / "manifest.json").read_bytes()
    for rel, sha in manifest["files"].items():
        if rel in ("ir.onnx", "report.html"):
            assert not (inside / rel).exists()  # host-side files stay out of the app
            continue
        assert sha256_file(inside / rel) == sha, rel


def _assert_complete(project: Path, required: list[str], template: Path) -> None:
    for rel in required:
        assert (project / rel).is_file(), f"missing {rel}"
    # every source file of the template is in the project (none left behind)
    for src in template.rglob("*"):
        rel = src.relative_to(template)
        if src.is_file() and src.suffix in (".kt", ".kts", ".swift", ".xml"):
            assert (project / rel).is_file(), f"template file {rel} not copied"
    for f in project.rglob("*"):
        if f.is_file() and f.suffix in (".kt", ".kts", ".swift", ".xml", ".json", ".properties"):
            assert "TODO" not in f.read_text(errors="replace"), f


@pytest.fixture(scope="module")
def mobilenet_int8_nnapi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgeexport.zoo.photos import photo_paths

    root = tmp_path_factory.mktemp("mnv2")
    photos = root / "photos"
    photos.mkdir()
    for name, path in photo_paths().items():
        (photos / f"{name}{path.suffix}").symlink_to(path)
    out = root / "bundle"
    r = run_cli("convert", "edgeexport.zoo:mobilenet_v2_pretrained", "--input-shape",
                "x=1,3,224,224", "--target", "nnapi", "--quantize", "int8", "--calibration-data",
                str(photos), "--preprocess", "imagenet", "-o", str(out), "--json", timeout=1800)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


@pytest.mark.slow
def test_android_app_from_mobilenet_int8_nnapi(mobilenet_int8_nnapi: Path, tmp_path: Path) -> None:
    from edgeexport.zoo.photos import imagenet_labels

    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(imagenet_labels()) + "\n")
    app = tmp_path / "myapp"
    r = run_cli("app", "android", str(mobilenet_int8_nnapi), "-o", str(app), "--labels",
                str(labels), "--preprocess", "imagenet")
    assert r.returncode == 0, r.stderr
    _assert_complete(app, ANDROID_FILES, REPO / "android")
    assets = app / "app/src/main/assets"
    _assert_bundle_inside(mobilenet_int8_nnapi, assets / "bundle")
    config = json.loads((assets / "app.json").read_text())
    assert config["name"] == "Mobilenet V2 Pretrained"
    # the bundle was converted with --preprocess imagenet: the manifest's own is what the app
    # reads, --preprocess given to `app` is not written again
    assert config["preprocessing"] is None
    assert read_manifest(mobilenet_int8_nnapi)["preprocessing"]["resize"]["shorter_side"] == 256
    out = read_manifest(mobilenet_int8_nnapi)["outputs"][0]["name"]
    assert config["labels"] == {"path": "labels.txt", "count": 1000, "output": out, "axis": -1}
    assert (assets / "labels.txt").read_text().splitlines()[:2] == imagenet_labels()[:2]
    assert len((assets / "labels.txt").read_text().splitlines()) == 1000
    assert 'applicationId = "io.edgeexport.parity.mobilenetv2pretrained"' in (
        app / "app/build.gradle.kts").read_text()
    assert "Mobilenet V2 Pretrained" in (app / "app/src/main/res/values/strings.xml").read_text()
    # a .tflite bundle is not for iOS
    r = run_cli("app", "ios", str(mobilenet_int8_nnapi), "-o", str(tmp_path / "ios"))
    assert r.returncode == 2 and "edgeexport app android" in r.stderr
    assert not (tmp_path / "ios").exists()
    # the core in the project is the one scripts/build-android-core.sh compiles and tests
    for src in (REPO / "android/bundle-core/src").rglob("*.kt"):
        rel = src.relative_to(REPO / "android")
        assert (app / rel).read_bytes() == src.read_bytes(), rel


@pytest.fixture(scope="module")
def coreml_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("coreml") / "bundle"
    r = run_cli("convert", *RESNET, "--target", "coreml", "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def test_ios_app_from_coreml_bundle(coreml_bundle: Path, tmp_path: Path) -> None:
    app = tmp_path / "myapp"
    app.mkdir()  # an empty folder is fine
    r = run_cli("app", "ios", str(coreml_bundle), "-o", str(app), "--name", 'Res "Net"',
                "--preprocess", "resize=72,crop=64,mean=0.5/0.5/0.5,std=0.25/0.25/0.25")
    assert r.returncode == 0, r.stderr
    _assert_complete(app, IOS_FILES, REPO / "ios")
    res = app / "EdgeExportParity.swiftpm/Resources"
    _assert_bundle_inside(coreml_bundle, res / "bundle")
    assert (res / "bundle/model.mlpackage/Manifest.json").is_file()
    package = (app / "EdgeExportParity.swiftpm/Package.swift").read_text()
    assert 'name: "Res \\"Net\\"",' in package
    assert 'bundleIdentifier: "io.edgeexport.parity.resnet"' in package
    config = json.loads((res / "app.json").read_text())
    manifest = read_manifest(coreml_bundle)
    assert manifest["preprocessing"] is None and config["labels"] is None
    pre = config["preprocessing"]  # in the contract's form, as convert --preprocess writes it
    assert pre["crop"] == {"height": 64, "width": 64, "position": "center"}
    assert pre["resize"] == {"shorter_side": 72, "interpolation": "bilinear"}
    assert pre["value_range"] == [[-2.0, 2.0]] * 3 and pre["input"] == manifest["inputs"][0]["name"]
    assert pre["layout"] == manifest["inputs"][0]["layout"]
    assert errors(manifest | {"preprocessing": pre}) == []
    assert manifest["compute_units"]  # what the app loads the model with


def test_app_labels_in_the_contract_form(coreml_bundle: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class {i}" for i in range(10)) + "\n")
    r = run_cli("app", "ios", str(coreml_bundle), "-o", str(tmp_path / "app"), "--labels",
                str(labels))
    assert r.returncode == 0, r.stderr
    res = tmp_path / "app/EdgeExportParity.swiftpm/Resources"
    config = json.loads((res / "app.json").read_text())
    manifest = read_manifest(coreml_bundle)
    assert config["labels"] == {"path": "labels.txt", "count": 10,
                                "output": manifest["outputs"][0]["name"], "axis": -1}
    assert errors(manifest | {"labels": config["labels"]}) == []
    assert (res / "labels.txt").read_text().splitlines()[9] == "class 9"

    labels.write_text("a\nb\nc\n")  # resnet_small has 10 classes
    r = run_cli("app", "ios", str(coreml_bundle), "-o", str(tmp_path / "app3"), "--labels",
                str(labels))
    assert r.returncode == 2 and "3 labels, but no output has 3 classes" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "app3").exists()


def test_wrong_target_and_busy_folder_exit_2(coreml_bundle: Path, tmp_path: Path) -> None:
    r = run_cli("app", "android", str(coreml_bundle), "-o", str(tmp_path / "a"))
    assert r.returncode == 2
    assert "target is 'coreml'" in r.stderr and "edgeexport app ios" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "a").exists()

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep me")
    r = run_cli("app", "ios", str(coreml_bundle), "-o", str(busy))
    assert r.returncode == 2 and "not an empty folder" in r.stderr
    assert [p.name for p in busy.iterdir()] == ["mine.txt"]
    assert (busy / "mine.txt").read_text() == "keep me"

    r = run_cli("app", "ios", str(tmp_path / "nothing"), "-o", str(tmp_path / "b"))
    assert r.returncode == 2 and "not a bundle folder" in r.stderr
