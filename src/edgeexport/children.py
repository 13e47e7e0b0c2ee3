"""Child processes edgeexport starts (qemu, isolated native loads and captures): tracked, so
Ctrl-C and SIGTERM end them, and tied to our life, so even SIGKILL leaves none running.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from typing import Any

#: child processes still running: ended when the command is interrupted
_CHILDREN: set[subprocess.Popen] = set()


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGKILL when the parent dies, so even a
    SIGKILLed edgeexport leaves no emulator or loader running (Linux only; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def spawn(cmd: list[str], **kwargs: Any) -> subprocess.Popen:
    """subprocess.Popen for a helper process, tracked so `end_children` can stop it."""
    proc = subprocess.Popen(cmd, preexec_fn=_die_with_parent, **kwargs)
    _CHILDREN.add(proc)
    return proc


def forget_child(proc: subprocess.Popen) -> None:
    _CHILDREN.discard(proc)


def end_children(grace_s: float = 2.0) -> None:
    """Terminate every tracked child still running (Ctrl-C, SIGTERM), then kill the stubborn."""
    for proc in list(_CHILDREN):
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.terminate()
    for proc in list(_CHILDREN):
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                proc.kill()
            proc.wait()
        _CHILDREN.discard(proc)


def python_child(args: list[str], timeout: float) -> tuple[int | None, str, str]:
    """Run `python ARGS` (this interpreter, this edgeexport) as a tracked child; returns (exit
    code, or -SIGNAL, or None when it did not finish in `timeout` seconds; stdout; stderr)."""
    import os
    from pathlib import Path

    pkg_root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [pkg_root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    proc = spawn([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                 text=True, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None, "", ""
    finally:
        forget_child(proc)
    return proc.returncode, out, err
