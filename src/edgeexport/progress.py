"""Progress on a terminal, silence elsewhere (pipes, CI, --json).

One status line on stderr, rewritten in place: the stage (k/N), its sub-step and the elapsed time.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Callable, TextIO

STAGES = ("export", "passes", "quantize", "emit", "validate")
BAR = 10  # characters: the rest of the line is for the stage's own text

#: a sub-step callback handed down to the code of one stage: detail text -> None
Step = Callable[[str], None]


def no_step(detail: str) -> None:
    """The Step of code run without a display."""


def runtime_step(progress: Callable[[str, str], None], runtime: str) -> Step:
    """Announce one runtime's parity run under "validate"; its sub-steps go under its name."""
    progress("validate", runtime)
    return lambda detail: progress("validate", f"{runtime}: {detail}")


class StageProgress:
    """Callable as progress(stage, detail): a new stage moves the bar, the same stage again only
    changes the detail (sub-steps). A no-op unless enabled and stderr is a terminal.

    A timer thread redraws the line every `interval` seconds, so the elapsed time ticks while a
    long step (quantization, emulated validation) gives no news of its own.
    """

    def __init__(self, enabled: bool, total: int | None = None, stream: TextIO | None = None,
                 stages: tuple[str, ...] = STAGES, interval: float = 0.5) -> None:
        stream = stream or sys.stderr
        self._on = enabled and _isatty(stream)
        self._stages = stages[:total] if total else stages
        self._stage, self._detail, self._step = "", "", 0
        self._start, self._width = time.monotonic(), 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stream = stream
        if self._on:
            # a copy of the terminal's fd: native code run meanwhile may point fd 2 at a file
            # to capture its own log (runtimes.base.native_stderr), the display must not go there
            try:
                self._stream = os.fdopen(os.dup(stream.fileno()), "w", closefd=True)
            except (OSError, ValueError, AttributeError):
                pass
            self._thread = threading.Thread(target=self._tick, args=(interval,), daemon=True)
            self._thread.start()

    def __call__(self, stage: str, detail: str) -> None:
        if not self._on:
            return
        with self._lock:
            if stage != self._stage:
                self._stage = stage
                self._step = (self._stages.index(stage) + 1 if stage in self._stages
                              else min(self._step + 1, len(self._stages)))
            self._detail = detail
            self._draw()

    def step(self, stage: str) -> Step:
        """A Step for the code of `stage`: each call shows a new sub-step detail."""
        if not self._on:
            return no_step
        return lambda detail: self(stage, detail)

    def close(self) -> None:
        if not self._on:
            return
        self._stop.set()
        self._thread.join()
        with self._lock:
            if self._width:
                self._write("\r" + " " * self._width + "\r")
                self._width = 0
            if self._stream is not sys.stderr and self._stream is not sys.__stderr__:
                self._stream.close()
            self._on = False

    def _tick(self, interval: float) -> None:
        while not self._stop.wait(interval):
            with self._lock:
                if self._stage and self._on:
                    self._draw()

    def _draw(self) -> None:
        total = len(self._stages)
        filled = round(BAR * (self._step - 1) / total)
        clock = f"  {time.monotonic() - self._start:6.1f}s"
        room = max(20, _columns(self._stream) - len(clock) - 1)
        line = (f"[{'#' * filled}{'.' * (BAR - filled)}] {self._step}/{total} "
                f"{self._stage}: {self._detail}")[:room] + clock
        self._write("\r" + line.ljust(self._width))
        self._width = len(line)

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):  # the terminal went away: stop drawing
            self._on = False


def _columns(stream: TextIO) -> int:
    """The display terminal's width (stdout may be a pipe while stderr is the terminal)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or 100
    except (OSError, ValueError, AttributeError):
        return 100


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
