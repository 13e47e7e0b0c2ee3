"""The runtime interface: something that executes an artifact (or the IR) on inputs.

A runtime that cannot run here says so with a reason; it never pretends to have run.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterator

import numpy as np


class Session(ABC):
    """A loaded model ready to run. `device` names where it really ran (e.g. 'llvmpipe', 'cpu')."""

    device: str = "cpu"
    #: free-form facts about the run for the report (delegate used, threads, emulation, ...)
    details: dict[str, Any]

    @abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs by the IR's output names."""

    def run_all(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every intermediate tensor it can expose, by IR value name (for per-layer parity)."""
        raise NotImplementedError(f"{type(self).__name__} cannot expose intermediate tensors")


class Runtime(ABC):
    """A named runtime. Subclasses register themselves in edgeexport.runtimes.RUNTIMES."""

    name: str = ""
    #: artifact formats it can execute ('onnx', 'tflite', 'ncnn', 'mlpackage')
    formats: tuple[str, ...] = ()

    @abstractmethod
    def unavailable_reason(self) -> str | None:
        """None when it can run on this machine, else the reason in one sentence."""

    @abstractmethod
    def load(self, path: Path, **options: Any) -> Session:
        """Load an artifact file (or folder)."""


@contextlib.contextmanager
def native_stderr(sink: list[str]) -> Iterator[None]:
    """Capture what native libraries print on file descriptor 2 (LiteRT's "Created TensorFlow Lite
    XNNPACK delegate" and the like) into `sink`, so that the command's stderr stays one line
    and a session can report the native log in its details."""
    import sys
    import tempfile

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreters): leave it alone
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode(errors="replace").strip()
            if text:
                sink.append(text)
