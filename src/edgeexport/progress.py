"""Progress on a terminal, silence elsewhere (pipes, CI, --json)."""

from __future__ import annotations

import sys
from typing import Any

STAGES = ("export", "passes", "quantize", "emit", "validate")


class StageProgress:
    """A bar over the pipeline's stages; a no-op unless stderr is a terminal and enabled."""

    def __init__(self, enabled: bool, total: int = len(STAGES)) -> None:
        self._bar: Any = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, file=sys.stderr, leave=False,
                             bar_format="{desc:<40} {bar:20} {n_fmt}/{total_fmt} [{elapsed}]")

    def __call__(self, stage: str, detail: str) -> None:
        if self._bar is not None:
            if self._bar.desc:
                self._bar.update(1)
            self._bar.set_description_str(f"{stage}: {detail}"[:40])

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
