"""The native runner (native/, C++): finds or builds `edgeexport-run-native` for this machine and
for aarch64 (run under qemu-user), runs it on a bundle and turns its JSON into parity rows.

The runner re-checks a bundle the way an app on the device would: it verifies every sha256,
loads the artifact with the platform runtime's C API and judges parity itself (native/src/stats.cpp
holds metrics.py's definitions). Its rows are runtimes of their own: `litert-native`,
`litert-native-aarch64-qemu`, `onnxruntime-native`, `onnxruntime-native-aarch64-qemu`,
`ncnn-native-vulkan`.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeexport.errors import UsageError

REPO = Path(__file__).resolve().parents[3]
EXE = "edgeexport-run-native"
#: runner exit codes (native/src/main.cpp)
EXIT_PASSED, EXIT_NOT_EXECUTED, EXIT_BAD_BUNDLE, EXIT_FAILED = 0, 1, 2, 3
#: where the aarch64 C/C++ runtime libraries of Debian's cross toolchain live
CROSS_LIBS = Path("/usr/aarch64-linux-gnu/lib")


@dataclass(frozen=True)
class NativeRuntime:
    name: str
    arch: str  # "host" or "aarch64" (run under qemu-user here)


#: artifact format -> the native runtimes that execute it
NATIVE_RUNTIMES: dict[str, tuple[NativeRuntime, ...]] = {
    "tflite": (NativeRuntime("litert-native", "host"),
               NativeRuntime("litert-native-aarch64-qemu", "aarch64")),
    "onnx": (NativeRuntime("onnxruntime-native", "host"),
             NativeRuntime("onnxruntime-native-aarch64-qemu", "aarch64")),
    "ncnn": (NativeRuntime("ncnn-native-vulkan", "host"),),
}


class NativeUnavailable(Exception):
    """The runner for an architecture cannot be found or built here (the message says why)."""


def build_dir() -> Path:
    """Where scripts/build-native.sh builds (x86_64/, aarch64/release/)."""
    return REPO / "build" / "native"


def runner_path(arch: str) -> Path:
    """Where `make native` / `make native-aarch64` put the executable."""
    env = os.environ.get("EDGEEXPORT_NATIVE_RUNNER" + ("_AARCH64" if arch == "aarch64" else ""))
    if env:
        return Path(env)
    if arch == "aarch64":
        return build_dir() / "aarch64" / "release" / EXE
    return build_dir() / "x86_64" / EXE


def build(arch: str, ncnn: str = "cached") -> Path:
    """Build (or bring up to date) the runner with scripts/build-native.sh; returns its path.
    `ncnn`: build | cached | off, whether the host build includes the ncnn backend (building
    ncnn from its sdist takes ~25 minutes once; `make native` does it)."""
    script = REPO / "scripts" / "build-native.sh"
    if not (REPO / "native" / "CMakeLists.txt").exists() or not script.exists():
        raise NativeUnavailable(f"{EXE} is not built and native/ sources are not here "
                                f"(expected at {runner_path(arch)})")
    env = {**os.environ, "PYTHON": sys.executable, "EDGEEXPORT_NATIVE_NCNN": ncnn}
    build_dir().mkdir(parents=True, exist_ok=True)
    # one build at a time (pytest-xdist workers share the build folder)
    with open(build_dir() / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(["bash", str(script), "aarch64" if arch == "aarch64" else "host"],
                              cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise NativeUnavailable(f"building {EXE} ({arch}) failed: {last}")
    return runner_path(arch)


def ensure(arch: str) -> Path:
    """The runner for `arch`, built on first use when the sources are here."""
    path = runner_path(arch)
    if path.exists():
        return path
    return build(arch)


def unavailable_reason(arch: str) -> str | None:
    """None when the runner for `arch` can run here, else why not (one sentence)."""
    if arch == "aarch64":
        if shutil.which("qemu-aarch64-static") is None:
            return "qemu-user-static is not installed (apt-get install qemu-user-static)"
        if not (CROSS_LIBS / "ld-linux-aarch64.so.1").exists():
            return ("the aarch64 C library is not installed (apt-get install "
                    "libc6-dev-arm64-cross)")
    try:
        ensure(arch)
    except NativeUnavailable as exc:
        return str(exc)
    return None


def sysroot(cpu: str) -> Path:
    """A minimal qemu `-L` root: lib/ from the cross toolchain and the ARM /proc/cpuinfo that
    LiteRT's and onnxruntime's CPU detection need (they crash on x86's)."""
    from edgeexport.runtimes.litert_qemu import cpuinfo_text

    root = build_dir() / "aarch64" / f"sysroot-{cpu}"
    (root / "proc").mkdir(parents=True, exist_ok=True)
    lib = root / "lib"
    if not lib.is_symlink():
        lib.symlink_to(CROSS_LIBS)
    info = root / "proc" / "cpuinfo"
    text = cpuinfo_text(cpu)
    if not info.exists() or info.read_text() != text:
        info.write_text(text)
    return root


def _bundle_cpu(bundle: Path, manifest: dict[str, Any]) -> str:
    """The core the rpi target was converted for (qemu emulates that one), else cortex-a72."""
    from edgeexport.runtimes.litert_qemu import QEMU_CPUS, _artifact_cpu

    if manifest.get("artifact_format") == "tflite":
        cpu = _artifact_cpu(bundle / manifest["artifact"])
        if cpu in QEMU_CPUS:
            return cpu
    return "cortex-a72"


def run(bundle: Path, rt: NativeRuntime, manifest: dict[str, Any], *, bench: int = 0,
        threads: int | None = None, timeout: int = 900) -> dict[str, Any]:
    """Run the runner on `bundle`; returns its JSON document with the row renamed to `rt.name`.
    A bad or tampered bundle raises UsageError with the runner's one line."""
    exe = ensure(rt.arch)
    cmd = [str(exe), str(bundle), "--json"]
    if bench:
        cmd += ["--bench", str(bench)]
    if threads:
        cmd += ["--threads", str(threads)]
    env = dict(os.environ)
    cpu = None
    if rt.arch == "aarch64":
        cpu = _bundle_cpu(bundle, manifest)
        cmd = ["qemu-aarch64-static", "-L", str(sysroot(cpu)), *cmd]
        env["QEMU_CPU"] = cpu
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode == EXIT_BAD_BUNDLE:
        raise UsageError(proc.stderr.strip().splitlines()[-1].removeprefix(f"{EXE}: ")
                         if proc.stderr.strip() else f"{bundle}: refused by {EXE}")
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        why = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return {"ok": False, "parity": [_crashed(rt, why[:300], manifest)]}
    row = doc["parity"][0]
    row["runtime"] = rt.name
    if rt.arch == "aarch64":
        row["device"] = f"aarch64 {cpu} under qemu-user emulation (not device speed)"
        row["details"].update({"emulated": True, "emulator": "qemu-aarch64-static", "cpu": cpu,
                               "latency_note": "latency under emulation: never a device speed"})
    row["details"]["runner"] = str(exe)
    return doc


def _crashed(rt: NativeRuntime, why: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """A runner that died without a result is a runtime failure, as check_runtime reports one."""
    return {"runtime": rt.name, "executed": True, "reason": f"failed to run: {why}",
            "device": None, "max_abs_err": None, "max_rel_err": None, "cosine": None,
            "sqnr_db": None, "top1_agreement": None, "passed": False,
            "violations": ["runtime error"], "tolerance": manifest.get("tolerances"),
            "latency_ms": None, "per_output": {}, "details": {}}


def parity_rows(bundle: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per native runtime that executes the bundle's artifact format."""
    rows = []
    for rt in NATIVE_RUNTIMES.get(manifest.get("artifact_format", ""), ()):
        reason = unavailable_reason(rt.arch)
        if reason is not None:
            rows.append({**_crashed(rt, "", manifest), "executed": False, "reason": reason,
                         "violations": []})
            continue
        rows.append(run(Path(bundle), rt, manifest)["parity"][0])
    return rows
