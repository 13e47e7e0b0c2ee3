"""Calibration data loading: .npy / .npz / image folders, and clear errors (exit 2)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeexport.errors import UsageError
from edgeexport.exporter.inputs import InputSpec
from edgeexport.quantize import calibration

SPEC = [InputSpec("x", (1, 3, 8, 8), np.dtype(np.float32))]


def test_npy_new_axis_and_batch_axis(tmp_path):
    a = np.random.default_rng(0).standard_normal((5, 1, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", a[:, 0])
    for f in ("a.npy", "b.npy"):
        cs = calibration.load(str(tmp_path / f), SPEC)
        assert len(cs.samples) == 5 and cs.samples[2]["x"].shape == (1, 3, 8, 8)
        assert np.array_equal(cs.samples[2]["x"], a[2])
        assert not cs.warnings


def test_npz_per_input(tmp_path):
    specs = [InputSpec("ids", (1, 4), np.dtype(np.int64)),
             InputSpec("mask", (1, 4), np.dtype(np.int64))]
    np.savez(tmp_path / "c.npz", ids=np.ones((3, 4), np.int64), mask=np.ones((3, 1, 4), np.int64))
    cs = calibration.load(str(tmp_path / "c.npz"), specs)
    assert len(cs.samples) == 3 and cs.samples[0]["mask"].shape == (1, 4)


def test_random_is_loud():
    cs = calibration.load(None, SPEC)
    assert cs.source == "random" and "RANDOM" in cs.warnings[0]


@pytest.mark.parametrize("make, words", [
    (lambda p: np.save(p / "d.npy", np.zeros((4, 3, 9, 9), np.float32)) or p / "d.npy",
     "does not fit input"),
    (lambda p: np.save(p / "d.npy", np.zeros((4, 3, 8, 8), np.int32)) or p / "d.npy", "dtype"),
    (lambda p: np.savez(p / "d.npz", y=np.zeros((4, 3, 8, 8), np.float32)) or p / "d.npz",
     "no array for input"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no images"),
    (lambda p: ((p / "bad.npy").write_bytes(b"not numpy"), p / "bad.npy")[1], "cannot read"),
    (lambda p: p / "missing.npy", "not found"),
])
def test_bad_data_is_a_usage_error(tmp_path, make, words):
    path = make(tmp_path)
    with pytest.raises(UsageError, match=words) as err:
        calibration.load(str(path), SPEC)
    assert err.value.exit_code == 2


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png")
    with pytest.raises(UsageError, match="--preprocess"):
        calibration.load(str(tmp_path), SPEC)
    cs = calibration.load(str(tmp_path), SPEC, preprocess="resize=8,crop=8,mean=0.5/0.5/0.5,"
                                                          "std=0.25/0.25/0.25,layout=nchw")
    assert len(cs.samples) == 3 and cs.samples[0]["x"].shape == (1, 3, 8, 8)
    (tmp_path / "3.jpg").write_bytes(b"garbage")
    with pytest.raises(UsageError, match="cannot read image"):
        calibration.load(str(tmp_path), SPEC, preprocess="imagenet")
