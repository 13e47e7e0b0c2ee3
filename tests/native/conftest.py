"""Fixtures for the native runner's tests: the runner built for the host and for aarch64, and
bundles converted by the real CLI from small zoo models (once per session)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeexport.runtimes import native
from tests.conftest import MODELS, run_cli
from tests.conftest import require as _require

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(reason: str | None) -> None:
    """Skip with `reason` here, fail in CI: there the native runner must run."""
    if reason is None:
        return
    _require(f"the native runner cannot run: {reason}")


@pytest.fixture(scope="session")
def runner_host() -> Path:
    try:  # brings the build up to date; ncnn only when `make native` has built it
        return native.build("host", ncnn="cached")
    except native.NativeUnavailable as exc:
        require(str(exc))
        raise


@pytest.fixture(scope="session")
def runner_aarch64() -> Path:
    require(native.unavailable_reason("aarch64"))
    try:
        return native.build("aarch64")
    except native.NativeUnavailable as exc:
        require(str(exc))
        raise


@pytest.fixture(scope="session")
def convert(tmp_path_factory):
    """convert(model, target, *extra) -> bundle folder written by `edgeexport convert`."""
    root = tmp_path_factory.mktemp("native-bundles")

    @functools.lru_cache(maxsize=None)
    def make(model: str, target: str, *extra: str) -> Path:
        factory, shapes = MODELS[model]
        # a file argument (--calibration-data PATH) names the bundle by its file name
        out = root / "_".join((model, target) + tuple(Path(e).name.strip("-") for e in extra))
        args = ["convert", factory, "--target", target, "-o", str(out), *extra]
        for s in shapes:
            args += ["--input-shape", s]
        proc = run_cli(*args)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return out

    return make


@pytest.fixture(scope="session")
def photo_calibration(tmp_path_factory) -> str:
    """--calibration-data for resnet_small: 8 crops of the shipped photos at 64x64
    (edgeexport.zoo.photos), so int8 parity is judged on real-ish activations."""
    from edgeexport.zoo.photos import calibration_crops

    path = tmp_path_factory.mktemp("calibration") / "photos64.npy"
    np.save(path, calibration_crops(8, size=64))
    return str(path)


def run_runner(exe: Path, bundle: Path, *args: str, qemu_cpu: str | None = None
               ) -> subprocess.CompletedProcess:
    cmd = [str(exe), str(bundle), *args]
    env = dict(os.environ)
    if qemu_cpu:
        cmd = ["qemu-aarch64-static", "-L", str(native.sysroot(qemu_cpu)), *cmd]
        env["QEMU_CPU"] = qemu_cpu
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


def python_rows(bundle: Path) -> dict[str, dict[str, Any]]:
    """The Python runtimes' parity rows that `convert` wrote to report.json, by runtime."""
    report = json.loads((bundle / "report.json").read_text())
    return {p["runtime"]: p for p in report["parity"]}


def python_check(bundle: Path, runtime: str) -> dict[str, Any]:
    """A Python runtime's parity row on the bundle (for targets whose convert does not run it:
    nnapi's .tflite is not checked under qemu by convert)."""
    from edgeexport.validate import Tolerance, check_runtime
    from edgeexport.validate.bundle import load_parity_tensors, read_manifest

    manifest = read_manifest(bundle)
    samples, expected = load_parity_tensors(bundle, manifest)
    row = check_runtime(runtime, bundle / manifest["artifact"], samples, expected,
                        Tolerance(**manifest["tolerances"]), timing_runs=0).to_json()
    require(None if row["executed"] else row["reason"])
    return row


ORT_SCRIPT = r'''
import json, sys
import numpy as np
import onnxruntime as ort
bundle, out = sys.argv[1], sys.argv[2]
m = json.load(open(bundle + "/manifest.json"))
opts = ort.SessionOptions()
opts.log_severity_level = 3
s = ort.InferenceSession(bundle + "/" + m["artifact"], opts, providers=["CPUExecutionProvider"])
feeds = {}
for e in m["parity"]:
    if e["kind"] == "input":
        a = np.fromfile(bundle + "/" + e["path"], dtype=np.dtype(e["dtype"]).newbyteorder("<"))
        feeds.setdefault(e["sample"], {})[e["tensor"]] = a.reshape(e["shape"]).astype(e["dtype"])
names = [o.name for o in s.get_outputs()]
res = {}
for i in sorted(feeds):
    for n, v in zip(names, s.run(names, feeds[i])):
        res["%d/%s" % (i, n)] = v
np.savez(out, **res)
'''


def python_onnxruntime_aarch64(bundle: Path, tmp: Path) -> float:
    """max_abs_err of the onnxruntime aarch64 wheel's Python API under qemu on the bundle's
    samples (edgeexport has no such Python runtime; this is its reference for the native one),
    computed with metrics.py."""
    from edgeexport.metrics import error_stats, merge
    from edgeexport.runtimes.litert_qemu import build_rootfs, cache_dir
    from edgeexport.validate.bundle import load_parity_tensors, read_manifest

    import importlib.metadata

    root = build_rootfs()
    version = importlib.metadata.version("onnxruntime")
    site = cache_dir().parent / f"aarch64-onnxruntime-{version}-py3.11"
    if not (site / "onnxruntime").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(site),
                        "--platform", "manylinux_2_27_aarch64", "--platform",
                        "manylinux_2_28_aarch64", "--platform", "manylinux2014_aarch64",
                        "--python-version", "3.11", "--only-binary=:all:", "--no-deps",
                        f"onnxruntime=={version}"], check=True, capture_output=True)
    fs = root / "fs"
    (fs / "proc" / "cpuinfo").write_text((root / "cpuinfo-cortex-a72").read_text())
    script = tmp / "ort_run.py"
    script.write_text(ORT_SCRIPT)
    out = tmp / "ort_out.npz"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{fs / 'site'}:{site}", "LANG": "C.UTF-8",
           "QEMU_CPU": "cortex-a72", "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run(["qemu-aarch64-static", "-L", str(fs), str(fs / "usr/bin/python3.11"),
                    str(script), str(bundle.resolve()), str(out)], check=True, env=env,
                   capture_output=True, timeout=900)
    manifest = read_manifest(bundle)
    _, expected = load_parity_tensors(bundle, manifest)
    got = np.load(out)
    per_output: dict[str, list] = {}
    for i, want in enumerate(expected):
        for name, ref in want.items():
            per_output.setdefault(name, []).append(error_stats(ref, got[f"{i}/{name}"]))
    return merge([merge(v, samples=True) for v in per_output.values()]).max_abs_err
