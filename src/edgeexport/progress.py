"""Progress on a terminal, silence elsewhere (pipes, CI, --json).

One status line on stderr, rewritten in place as the pipeline moves through its stages.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

STAGES = ("export", "passes", "quantize", "emit", "validate")


class StageProgress:
    """Callable as progress(stage, detail); a no-op unless enabled and stderr is a terminal."""

    def __init__(self, enabled: bool, total: int = len(STAGES), stream: TextIO | None = None
                 ) -> None:
        self._stream = stream or sys.stderr
        self._on = enabled and self._stream.isatty()
        self._total, self._step, self._start, self._width = total, 0, time.monotonic(), 0

    def __call__(self, stage: str, detail: str) -> None:
        if not self._on:
            return
        self._step = min(self._step + 1, self._total)
        filled = round(20 * (self._step - 1) / self._total)
        line = (f"[{'#' * filled}{'.' * (20 - filled)}] {self._step}/{self._total} "
                f"{stage}: {detail}"[:100] + f"  {time.monotonic() - self._start:5.1f}s")
        self._write("\r" + line.ljust(self._width))
        self._width = len(line)

    def close(self) -> None:
        if self._on and self._width:
            self._write("\r" + " " * self._width + "\r")
            self._width = 0

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()
