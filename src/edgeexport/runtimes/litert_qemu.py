"""LiteRT's aarch64 wheel run under qemu-user (qemu-aarch64-static) in a cached Debian rootfs:
the same interpreter a Raspberry Pi runs, executed here. Emulated latency is never device speed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from edgeexport.children import forget_child, spawn
from edgeexport.runtimes.base import Runtime, Session

SUITE = "bookworm"  # Debian 12: python3.11, the Python the x86 venv's wheels are built for
PY = "3.11"
MIRROR = os.environ.get("EDGEEXPORT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
#: qemu CPU model per --cpu of the rpi target (XNNPACK picks its kernels from the CPU features)
QEMU_CPUS = {"cortex-a72": "cortex-a72", "cortex-a76": "cortex-a76"}
_CPUINFO = {  # what the guest reads at /proc/cpuinfo (onnxruntime/cpuinfo crash on x86's)
    "cortex-a72": ("fp asimd evtstrm crc32 cpuid", "0xd08"),
    "cortex-a76": ("fp asimd evtstrm crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop "
                   "asimddp", "0xd0b"),
}
_LOCK = threading.Lock()

RUNNER = r'''
import json, sys, time
import numpy as np
from ai_edge_litert.interpreter import Interpreter
it = Interpreter(model_path=sys.argv[1], num_threads=1)
it.allocate_tensors()
ins = it.get_input_details()
outs = it.get_output_details()
print(json.dumps({"ready": True, "inputs": [d["name"] for d in ins],
                  "outputs": [d["name"] for d in outs]}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    data = np.load(req["in"])
    for i, d in enumerate(ins):
        it.set_tensor(d["index"], np.asarray(data["in%d" % i], dtype=d["dtype"], order="C"))
    t = time.perf_counter()
    it.invoke()
    ms = (time.perf_counter() - t) * 1000
    np.savez(req["out"], **{"out%d" % i: it.get_tensor(d["index"]) for i, d in enumerate(outs)})
    print(json.dumps({"ok": True, "ms": ms}), flush=True)
'''


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edgeexport" / f"aarch64-{SUITE}-py{PY}"


def litert_version() -> str:
    from importlib.metadata import version

    return version("ai-edge-litert")


def rootfs_ready(root: Path | None = None) -> bool:
    root = root or cache_dir()
    marker = root / "READY"
    return marker.exists() and json.loads(marker.read_text()).get("litert") == litert_version()


def _run(cmd: list[str], log: Path, **kw: Any) -> None:
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT, **kw)


def build_rootfs(root: Path | None = None, quiet: bool = True) -> Path:
    """Build (or reuse) the rootfs: debootstrap first stage, debs unpacked, wheels installed."""
    root = root or cache_dir()
    if rootfs_ready(root):
        return root
    root.mkdir(parents=True, exist_ok=True)
    log = root.parent / (root.name + ".log")
    log.write_text("")
    fs = root / "fs"
    if fs.exists():
        shutil.rmtree(fs)
    # --foreign: only download and extract; the second stage would need to run aarch64 code as
    # root, which a plain unpack of every .deb makes unnecessary for running one python
    _run(["debootstrap", "--foreign", "--arch=arm64", "--variant=minbase",
          "--include=python3", SUITE, str(fs), MIRROR], log)
    for deb in sorted((fs / "var/cache/apt/archives").glob("*.deb")):
        _run(["dpkg-deb", "-x", str(deb), str(fs)], log)
    site = fs / "site"
    pip = [sys.executable, "-m", "pip"]
    _run(pip + ["install", "--quiet", "--target", str(site), "--platform",
                "manylinux_2_27_aarch64", "--platform", "manylinux_2_28_aarch64",
                "--platform", "manylinux2014_aarch64", "--python-version", PY,
                "--only-binary=:all:", f"ai-edge-litert=={litert_version()}", "numpy"], log)
    (fs / "proc").mkdir(exist_ok=True)
    for cpu, (features, part) in _CPUINFO.items():
        (root / f"cpuinfo-{cpu}").write_text(_cpuinfo(features, part))
    (root / "runner.py").write_text(RUNNER)
    (root / "READY").write_text(json.dumps({"litert": litert_version(), "suite": SUITE}))
    return root


def cpuinfo_text(cpu: str) -> str:
    """What an emulated `cpu` (a key of QEMU_CPUS) shows at /proc/cpuinfo."""
    return _cpuinfo(*_CPUINFO[cpu])


def _cpuinfo(features: str, part: str) -> str:
    cores = []
    for i in range(4):
        cores.append(f"processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: {features}\n"
                     f"CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\n"
                     f"CPU part\t: {part}\nCPU revision\t: 3\n")
    return "\n".join(cores) + "\n"


class QemuSession(Session):
    """One emulated python process per loaded model, fed through a pipe (start-up is slow)."""

    def __init__(self, path: Path, root: Path, cpu: str) -> None:
        fs = root / "fs"
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(fs / "site"),
               "PYTHONDONTWRITEBYTECODE": "1", "QEMU_CPU": QEMU_CPUS[cpu], "LANG": "C.UTF-8"}
        self._tmp = tempfile.TemporaryDirectory(prefix="edgeexport-qemu-")
        # the guest's /proc/cpuinfo (qemu looks paths up under -L first) is one file for every
        # --cpu: it is written and read (XNNPACK picks its kernels while the interpreter is
        # built, before the hello) under a lock held across processes, else a cortex-a76
        # cpuinfo read by a cortex-a72 guest ends in SIGILL (seen with two pytest workers)
        import fcntl

        with open(root / "cpuinfo.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            shutil.copyfile(root / f"cpuinfo-{cpu}", fs / "proc" / "cpuinfo")
            self._proc = spawn(
                ["qemu-aarch64-static", "-L", str(fs), str(fs / "usr/bin/python3.11"),
                 str(root / "runner.py"), os.fspath(Path(path).resolve())],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, env=env)
            hello = self._read()
        self._inputs, self._outputs = hello["inputs"], hello["outputs"]
        # int8 outputs (--int8-io) come back as real values, as from the x86 LiteRT session
        from edgeexport.delegates.tflite.signature import io_tensors

        self._out_quant = {t["name"]: t["quantization"]
                           for t in io_tensors(Path(path).read_bytes())["outputs"]}
        self.device = f"aarch64 {cpu} under qemu-user emulation (not device speed)"
        self.details = {"emulated": True, "emulator": "qemu-aarch64-static", "cpu": cpu,
                        "rootfs": str(root), "litert": litert_version(),
                        "latency_note": "latency under emulation, 60-130x slower than the "
                                        "device: never a device speed",
                        "emulated_invoke_ms": []}

    def _read(self) -> dict[str, Any]:
        line = self._proc.stdout.readline() if self._proc.stdout else ""
        if not line:
            err = self._proc.stderr.read() if self._proc.stderr else ""
            raise RuntimeError("aarch64 LiteRT under qemu exited: "
                               + (err.strip().splitlines() or ["no output"])[-1])
        return json.loads(line)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        fin = os.path.join(self._tmp.name, "in.npz")
        fout = os.path.join(self._tmp.name, "out.npz")
        np.savez(fin, **{f"in{i}": feeds[n] for i, n in enumerate(self._inputs)})
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"in": fin, "out": fout}) + "\n")
        self._proc.stdin.flush()
        reply = self._read()
        self.details["emulated_invoke_ms"].append(round(reply["ms"], 2))
        with np.load(fout) as data:
            from edgeexport.delegates.tflite.signature import dequantize

            return {n: dequantize(data[f"out{i}"], self._out_quant.get(n))
                    for i, n in enumerate(self._outputs)}

    def close(self) -> None:
        if self._proc.poll() is None:
            if self._proc.stdin:
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        forget_child(self._proc)
        self._tmp.cleanup()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class LiteRtQemuRuntime(Runtime):
    name = "litert-aarch64-qemu"
    formats = ("tflite",)

    def unavailable_reason(self) -> str | None:
        if os.environ.get("EDGEEXPORT_NO_QEMU"):
            return "disabled by EDGEEXPORT_NO_QEMU"
        if shutil.which("qemu-aarch64-static") is None:
            return "qemu-user-static is not installed (apt-get install qemu-user-static)"
        if rootfs_ready():
            return None
        if shutil.which("debootstrap") is None or shutil.which("dpkg-deb") is None:
            return (f"no aarch64 rootfs at {cache_dir()} and debootstrap is not installed "
                    "(apt-get install debootstrap)")
        with _LOCK:
            try:
                build_rootfs()
            except (subprocess.CalledProcessError, OSError) as exc:
                log = cache_dir().parent / (cache_dir().name + ".log")
                return f"aarch64 rootfs build failed ({exc}); see {log}"
        return None

    def load(self, path: Path, **options: Any) -> Session:
        cpu = options.get("cpu") or _artifact_cpu(Path(path)) or "cortex-a72"
        return QemuSession(Path(path), cache_dir(), cpu)


def _artifact_cpu(path: Path) -> str | None:
    """The --cpu the rpi target recorded in the artifact, so the emulated core matches it."""
    from edgeexport.delegates.tflite.writer import read_metadata

    try:
        cpu = read_metadata(path.read_bytes()).get("edgeexport.cpu")
    except Exception:
        return None
    return cpu.decode() if cpu else None


def main() -> int:
    """`python -m edgeexport.runtimes.litert_qemu`: build the cached rootfs (CI prebuilds it)."""
    reason = LiteRtQemuRuntime().unavailable_reason()
    print(f"litert-aarch64-qemu: {'ready at ' + str(cache_dir()) if reason is None else reason}")
    return 0 if reason is None else 1


if __name__ == "__main__":
    sys.exit(main())
