"""The progress line shows on a terminal and nowhere else."""

from __future__ import annotations

import os
import pty
import subprocess
import sys


def _convert_with_stderr_on_pty(tmp_path, *extra: str) -> str:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeexport.cli", "convert", "edgeexport.zoo:vit_tiny",
         "--input-shape", "1,3,32,32", "--target", "onnx", "-o", str(tmp_path / "o"), *extra],
        stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=300)
    os.close(master)
    assert proc.returncode == 0
    return b"".join(chunks).decode(errors="replace")


def test_progress_on_terminal(tmp_path) -> None:
    text = _convert_with_stderr_on_pty(tmp_path)
    assert "export:" in text and "validate:" in text and "\r" in text


def test_no_progress_in_json_mode(tmp_path) -> None:
    assert _convert_with_stderr_on_pty(tmp_path, "--json").strip() == ""
