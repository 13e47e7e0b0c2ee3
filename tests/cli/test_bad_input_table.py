"""Every case of bad_input_cases.CASES: exit 2, one stderr line naming the file and what to do,
no traceback, and the folder the case set up is byte for byte what it was (nothing written,
nothing deleted). In-process through cli.main (native loads are isolated in a subprocess)."""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path

import pytest

from edgeexport import cli
from tests.cli.bad_input_cases import CASES, Case


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> sha256 (or 'dir') of everything below root, hidden entries included."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_main(argv: list[str], capfd) -> tuple[int, str]:
    """cli.main in this process; its logging/warnings settings are undone afterwards."""
    with warnings.catch_warnings():
        try:
            code = cli.main(argv)
        finally:
            logging.disable(logging.NOTSET)
    return code, capfd.readouterr().err


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input(case: Case, tmp_path: Path, capfd, monkeypatch) -> None:
    monkeypatch.setenv("EDGEEXPORT_NO_QEMU", "1")
    monkeypatch.chdir(tmp_path)
    argv = case.build(tmp_path)
    before = snapshot(tmp_path)
    capfd.readouterr()
    code, err = run_main(argv, capfd)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (code, err[-2000:])
    assert len(lines) == 1, err[-3000:]
    assert "Traceback" not in err and "internal error" not in err
    for text in case.says:
        assert text.lower() in lines[0].lower(), (text, lines[0])
    assert snapshot(tmp_path) == before
