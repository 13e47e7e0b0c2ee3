"""Fuzzing each loader through the real CLI (see fuzz.py) for EDGEEXPORT_FUZZ_SECONDS per loader
(default 3 in the suite; EDGEEXPORT_FUZZ_SECONDS=60 for the long run), and every input a fuzz
run ever kept (tests/fuzz/regressions/) replayed: exit 0/2/3, no traceback, crash or hang."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.fuzz.fuzz import CASE_TIMEOUT, LOADERS, REGRESSIONS, Worker, fuzz, judge, replay_argv

SECONDS = float(os.environ.get("EDGEEXPORT_FUZZ_SECONDS", "3"))


@pytest.mark.slow
@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_fuzz_loader(loader: str, tmp_path: Path) -> None:
    stats = fuzz(loader, SECONDS, seed=int(os.environ.get("EDGEEXPORT_FUZZ_SEED", "0")),
                 keep=tmp_path)
    print(stats.line())
    kept = sorted(p.name for p in tmp_path.iterdir())
    if kept and os.environ.get("EDGEEXPORT_FUZZ_KEEP"):  # record them as regression cases
        for name in kept:
            shutil.copytree(tmp_path / name, REGRESSIONS / name, dirs_exist_ok=True)
    assert stats.failures == [], (stats.line(), stats.failures[:5], kept)
    assert stats.tried >= 1


def test_regressions_stay_fixed() -> None:
    cases = sorted(p for p in REGRESSIONS.iterdir() if p.is_dir())
    assert cases, "the regression folder is empty"
    worker = Worker()
    try:
        for case in cases:
            kind, code, err = worker.run(replay_argv(case), CASE_TIMEOUT)
            assert judge(kind, code, err) is None, (case.name, kind, code, err[-500:])
            assert code == 2, (case.name, code, err[-500:])  # every kept input is corrupt
            if kind != "ok":
                worker.close()
                worker = Worker()
    finally:
        worker.close()
