"""`-o`: a folder of the user's files is never touched, a previous bundle is replaced only with
--force, missing parents are created, a symlinked -o keeps its link, and staging folders left
by a killed process are cleaned up by the next run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli.test_bad_input_table import run_main, snapshot

TINY = ["convert", "tests.fuzz.make_corpus:tiny", "--input-shape", "x=1,3,8,8", "--target", "onnx"]


def _user_folder(path: Path) -> None:
    (path / "sub").mkdir(parents=True)
    (path / "labels.txt").write_text("cat\ndog\n")
    (path / "sub" / "other.bin").write_bytes(os.urandom(64))


def test_user_folder_is_untouched(tmp_path, capfd) -> None:
    out = tmp_path / "mine"
    _user_folder(out)
    before = snapshot(tmp_path)
    for extra in ([], ["--force"]):
        code, err = run_main([*TINY, "-o", str(out), *extra], capfd)
        assert code == 2 and "labels.txt" in err and "never replaced" in err, err
        assert snapshot(tmp_path) == before


def test_previous_bundle_needs_force(tmp_path, capfd) -> None:
    out = tmp_path / "b"
    assert run_main([*TINY, "-o", str(out)], capfd)[0] == 0
    first = json.loads((out / "manifest.json").read_text())
    code, err = run_main([*TINY, "-o", str(out)], capfd)
    assert code == 2 and "--force" in err
    (out / "report.json").write_text("{}")  # changed by hand: listed, so still ours
    assert run_main([*TINY, "-o", str(out), "--force"], capfd)[0] == 0
    assert set(json.loads((out / "manifest.json").read_text())["files"]) == set(first["files"])
    assert json.loads((out / "report.json").read_text()) != {}  # the new report replaced it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no staging, no .old


def test_missing_parents_are_created(tmp_path, capfd) -> None:
    out = tmp_path / "a" / "b" / "out"
    assert run_main([*TINY, "-o", str(out)], capfd)[0] == 0
    assert (out / "manifest.json").exists()


def test_failed_convert_removes_the_parents_it_made(tmp_path, capfd) -> None:
    bad = tmp_path / "nan.npy"
    import numpy as np

    np.save(bad, np.full((2, 3, 8, 8), np.nan, np.float32))
    code, _ = run_main([*TINY, "--samples", str(bad), "-o", str(tmp_path / "a" / "out")], capfd)
    assert code == 2 and not (tmp_path / "a").exists()


def test_symlinked_output_keeps_its_link(tmp_path, capfd) -> None:
    real, link = tmp_path / "real", tmp_path / "link"
    real.mkdir()
    link.symlink_to(real)
    assert run_main([*TINY, "-o", str(link)], capfd)[0] == 0
    assert run_main([*TINY, "-o", str(link), "--force"], capfd)[0] == 0
    assert link.is_symlink() and (link / "manifest.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_staging_of_a_dead_process_is_removed(tmp_path, capfd) -> None:
    dead = 2**22 + 12345  # above the default pid_max: never a live process
    stale = tmp_path / f".out.staging-{dead}-abc"
    stale.mkdir()
    (stale / "model.onnx").write_bytes(b"partial")
    assert run_main([*TINY, "-o", str(tmp_path / "out")], capfd)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_target_all_refuses_a_user_folder(tmp_path, capfd) -> None:
    out = tmp_path / "all"
    _user_folder(out)
    before = snapshot(tmp_path)
    code, err = run_main(["convert", "tests.fuzz.make_corpus:tiny", "--input-shape",
                          "x=1,3,8,8", "--target", "all", "-o", str(out), "--force"], capfd)
    assert code == 2 and "labels.txt" in err and "<target>" in err
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_target_all_again_needs_force_and_keeps_a_user_report(tmp_path, capfd) -> None:
    out = tmp_path / "all"
    argv = ["convert", "tests.fuzz.make_corpus:tiny", "--input-shape", "x=1,3,8,8", "--target",
            "all", "-o", str(out)]
    assert run_main(argv, capfd)[0] == 0
    assert json.loads((out / "report.json").read_text())["passed"]
    code, err = run_main(argv, capfd)
    assert code == 2 and "--force" in err
    assert run_main([*argv, "--force"], capfd)[0] == 0
    (out / "report.json").write_text('{"mine": 1}')  # not a combined report: the user's file
    before = snapshot(tmp_path)
    code, err = run_main([*argv, "--force"], capfd)
    assert code == 2 and "report.json" in err and snapshot(tmp_path) == before
