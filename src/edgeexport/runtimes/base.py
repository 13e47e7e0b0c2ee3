"""The runtime interface: something that executes an artifact (or the IR) on inputs.

A runtime that cannot run here says so with a reason; it never pretends to have run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

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
