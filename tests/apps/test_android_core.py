"""Kotlin bundle-core, compiled with the pinned kotlinc and run with JUnit (scripts/build-android-
core.sh), on real bundles: Kotlin reads their manifests and parity tensors and computes parity
statistics, which must equal report.json's to 1e-6; and on the shipped photos, Kotlin's
preprocessing must give Python's `--preprocess imagenet` tensor within 1/255.

Pre-JNI step: the JVM cannot run the .tflite yet (the native runner's JNI bridge is not wired),
so the actual outputs are LiteRT's (ai_edge_litert, the runtime report.json was made with),
computed here and saved as .bin files that the Kotlin test replays.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeexport import runtimes
from edgeexport.validate.bundle import load_parity_tensors, read_manifest
from tests.apps.conftest import missing_tool, require_commands
from tests.apps.vectors import manifest_preprocessing, python_preprocess
from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "build-android-core.sh"
JARS = [Path("/usr/share/java") / j for j in ("junit4.jar", "hamcrest-core.jar",
                                              "json-android.jar")]


def _le(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr, order="C")
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()


def record_litert(bundle: Path, folder: Path) -> dict:
    """Run the bundle's parity inputs through LiteRT and save what it fed and returned."""
    manifest = read_manifest(bundle)
    samples, _ = load_parity_tensors(bundle, manifest)
    session = runtimes.get("litert").load(bundle / manifest["artifact"])
    folder.mkdir(parents=True)
    recorded = []
    for i, feeds in enumerate(samples):
        outs = session.run(feeds)
        entry: dict = {"inputs": {}, "outputs": {}}
        for name, arr in feeds.items():
            p = folder / f"sample{i}_input_{name}.bin"
            p.write_bytes(_le(arr))
            entry["inputs"][name] = str(p)
        for name, arr in outs.items():
            p = folder / f"sample{i}_output_{name}.bin"
            p.write_bytes(_le(arr))
            entry["outputs"][name] = {"path": str(p), "shape": list(np.shape(arr)),
                                      "dtype": np.asarray(arr).dtype.name}
        recorded.append(entry)
    return {"bundle": str(bundle), "runtime": "litert", "samples": recorded}


def photo_cases(folder: Path) -> list[dict]:
    from edgeexport.zoo.photos import load_photo, photo_paths

    shape = (1, 3, 224, 224)
    cases = []
    for name, path in sorted(photo_paths().items()):
        rgb = load_photo(path)
        tensor, _ = python_preprocess(rgb, "imagenet", shape)
        (folder / f"{name}.rgb").write_bytes(rgb.tobytes())
        (folder / f"{name}.f32").write_bytes(_le(tensor.astype(np.float32)))
        cases.append({"name": name, "width": rgb.shape[1], "height": rgb.shape[0],
                      "rgb": str(folder / f"{name}.rgb"), "tensor": str(folder / f"{name}.f32"),
                      "preprocessing": manifest_preprocessing("imagenet"),
                      "input": {"shape": list(shape), "layout": "NCHW"}})
    return cases


def run_core_tests(cases: Path | None = None) -> subprocess.CompletedProcess:
    require_commands("java", "npm")
    for jar in JARS:
        if not jar.exists():
            missing_tool(f"{jar} is missing (scripts/system-deps.sh installs junit4, "
                         "libhamcrest-java, libandroid-json-org-java)")
    cmd = ["nice", "-n", "10", "bash", str(SCRIPT)] + (["--cases", str(cases)] if cases else [])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1800)


@pytest.mark.slow
def test_bundle_core_on_real_bundles(tflite_bundles: dict[str, Path], tmp_path: Path) -> None:
    bundles = [record_litert(b, tmp_path / "litert" / name) for name, b in tflite_bundles.items()]
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
