"""The progress line shows on a terminal and nowhere else."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time

import pytest


def _stderr_on_pty(*args: str, codes: tuple[int, ...] = (0,)) -> list[tuple[float, bytes]]:
    """What `edgeexport ARGS` writes on a terminal stderr, as (arrival time, bytes) chunks."""
    master, slave = pty.openpty()
    # a 160-column terminal: the status line is cut to the terminal's width
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "edgeexport.cli", *args],
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
        chunks.append((time.monotonic(), data))
    proc.wait(timeout=600)
    os.close(master)
    assert proc.returncode in codes, b"".join(c for _, c in chunks).decode(errors="replace")
    return chunks


def _convert_with_stderr_on_pty(tmp_path, *extra: str) -> str:
    chunks = _stderr_on_pty("convert", "edgeexport.zoo:vit_tiny", "--input-shape", "1,3,32,32",
                            "--target", "onnx", "-o", str(tmp_path / "o"), *extra)
    return b"".join(c for _, c in chunks).decode(errors="replace")


def _lines(chunks: list[tuple[float, bytes]]) -> list[tuple[float, str]]:
    """Each redraw of the status line with the time it arrived (a line split over two reads
    counts when its last part arrives)."""
    lines, text = [], ""
    for t, data in chunks:
        text += data.decode(errors="replace")
        *done, text = text.split("\r")
        lines += [(t, line.strip()) for line in done if line.strip()]
    return lines + ([(chunks[-1][0], text.strip())] if text.strip() else [])


@pytest.mark.slow
def test_int8_convert_shows_every_stage_and_quantize_steps(tmp_path) -> None:
    chunks = _stderr_on_pty("convert", "edgeexport.zoo:vit_tiny", "--input-shape", "1,3,32,32",
                            "--target", "onnx", "--quantize", "int8", "-o", str(tmp_path / "o"),
                            codes=(0, 3))  # (int8 everywhere may miss the tolerance: not tested here)
    lines = _lines(chunks)
    texts = [line for _, line in lines]
    assert any(re.search(r"3/5 quantize: calibration sample \d+/\d+", t) for t in texts)
    assert any("3/5 quantize: range search" in t for t in texts)
    assert any("5/5 validate: onnxruntime" in t for t in texts)
    assert any(re.search(r"5/5 validate: onnxruntime: sample 1/\d+", t) for t in texts)
    # the text changes while work runs: the elapsed time ticks between a stage's own news
    still = [b[0] - a[0] for a, b in zip(lines, lines[1:]) if b[1] != a[1]]
    assert max(still) < 5.0, still
    assert len(set(texts)) > 10


def test_quantize_command_shows_progress(tmp_path) -> None:
    from tests.conftest import run_cli

    model = tmp_path / "m.onnx"
    assert run_cli("export", "edgeexport.zoo:vit_tiny", "--input-shape", "1,3,32,32",
                   "-o", str(model)).returncode == 0
    texts = [t for _, t in _lines(_stderr_on_pty("quantize", str(model), "--scheme", "int8",
                                                 "-o", str(tmp_path / "q.onnx")))]
    assert any("3/3 quantize: calibration sample" in t for t in texts)
    assert any("3/3 quantize: per-layer error vs float" in t for t in texts)


def test_progress_on_terminal(tmp_path) -> None:
    text = _convert_with_stderr_on_pty(tmp_path)
    assert "export:" in text and "validate:" in text and "\r" in text


def test_no_progress_in_json_mode(tmp_path) -> None:
    assert _convert_with_stderr_on_pty(tmp_path, "--json").strip() == ""


@pytest.mark.slow
def test_emulated_validation_shows_its_estimate_and_keeps_to_the_cap(tmp_path) -> None:
    import json

    import numpy as np

    from tests.conftest import require_runtime, run_cli

    require_runtime("litert-aarch64-qemu")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((3, 1, 3, 32, 32), np.float32))
    out = tmp_path / "b"
    texts = [t for _, t in _lines(_stderr_on_pty(
        "convert", "edgeexport.zoo:vit_tiny", "--input-shape", "1,3,32,32", "--target", "rpi",
        "--samples", str(tmp_path / "x.npy"), "--emulated-samples", "2", "-o", str(out)))]
    assert any(re.search(r"litert-aarch64-qemu: sample 2/2 \(emulated [\d.]+ s each, all 4: "
                         r"~\d+ s, capped at 2\)", t) for t in texts), texts
    report = json.loads((out / "report.json").read_text())
    row = {p["runtime"]: p for p in report["parity"]}["litert-aarch64-qemu"]
    cap = row["details"]["emulation_cap"]
    assert (cap["samples_checked"], cap["samples_total"], cap["max_samples"]) == (2, 4, 2)
    assert any("2 of 4 samples under emulation" in w["text"] for w in report["warnings"])
    # a seconds cap smaller than one sample still checks the first one, and says so
    proc = run_cli("validate", str(out), "--max-emulated-seconds", "0.001", "--json")
    assert proc.returncode == 0 and proc.stderr == ""
    doc = json.loads(proc.stdout)
    row = {p["runtime"]: p for p in doc["result"]["parity"]}["litert-aarch64-qemu"]
    assert row["details"]["emulation_cap"]["samples_checked"] == 1
    assert row["details"]["emulation_cap"]["max_seconds"] == 0.001
    assert any("1 of 4 samples" in w for w in doc["warnings"])
    table = run_cli("validate", str(out), "--emulated-samples", "3").stdout
    assert "(emulated: 3/4 samples" in table and "at most 3" in table
