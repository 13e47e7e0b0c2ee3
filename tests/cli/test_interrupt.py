"""SIGTERM / Ctrl-C during a convert whose parity check runs LiteRT under qemu: the emulator is
ended, the staging folder removed, exit 143 / 130 with one line. After SIGKILL the emulator dies
with its parent (PR_SET_PDEATHSIG) and the next run removes the dead process's staging folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import require_runtime

REPO = Path(__file__).resolve().parents[2]


def _procs_mentioning(text: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if text in (d / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


def _start(out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "edgeexport.cli", "convert", "tests.fuzz.make_corpus:tiny",
         "--input-shape", "x=1,3,8,8", "--target", "rpi", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])})


def _wait_for_qemu(proc: subprocess.Popen, tmp: Path) -> None:
    for _ in range(1200):
        if any(pid != proc.pid for pid in _procs_mentioning(str(tmp))):
            qemu = [p for p in _procs_mentioning(str(tmp)) if p != proc.pid]
            if any(b"qemu" in Path(f"/proc/{p}/cmdline").read_bytes() for p in qemu
                   if Path(f"/proc/{p}").exists()):
                return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("qemu never started")


@pytest.fixture
def qemu_ready() -> None:
    require_runtime("litert-aarch64-qemu")


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_interrupt_removes_staging_and_children(tmp_path, qemu_ready, sig, code) -> None:
    proc = _start(tmp_path / "out")
    _wait_for_qemu(proc, tmp_path)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == [f"edgeexport: error: interrupted ({signal.Signals(sig).name})"], err
    assert list(tmp_path.iterdir()) == []  # no staging, no bundle, no parent made
    assert _procs_mentioning(str(tmp_path)) == []


@pytest.mark.qemu
@pytest.mark.slow
def test_sigkill_leaves_no_emulator_and_next_run_cleans_up(tmp_path, qemu_ready) -> None:
    proc = _start(tmp_path / "out")
    _wait_for_qemu(proc, tmp_path)
    proc.kill()
    proc.communicate(timeout=60)
    for _ in range(100):
        if not _procs_mentioning(str(tmp_path)):
            break
        time.sleep(0.1)
    assert _procs_mentioning(str(tmp_path)) == []
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == [".out.staging"]
    env = {**os.environ, "EDGEEXPORT_NO_QEMU": "1"}
    again = subprocess.run(
        [sys.executable, "-m", "edgeexport.cli", "convert", "tests.fuzz.make_corpus:tiny",
         "--input-shape", "x=1,3,8,8", "--target", "rpi", "-o", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=REPO,
        env={**env, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])})
    assert again.returncode == 0, again.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
