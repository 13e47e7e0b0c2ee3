"""Fixtures for the app tests: real bundles written by `edgeexport convert`, made once per
session, and the rule that a missing toolchain fails in CI and skips elsewhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require, run_cli

RESNET = ["edgeexport.zoo:resnet_small", "--input-shape", "1,3,64,64"]
BERT = ["edgeexport.zoo:bert_tiny", "--input-shape", "input_ids=1,16:int64",
        "--input-shape", "attention_mask=1,16:int64"]

#: resnet_small's classes, for --labels ({labels} in BUNDLES is this file)
RESNET_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]
WITH_APP_KEYS = ["--preprocess", "imagenet", "--labels", "{labels}"]

#: int8 calibration ({calib}: written by the tflite_bundles fixture): crops of the shipped photos
#: for resnet_small, token ids with padded attention masks for bert_tiny. Random calibration
#: would leave the verdict "unverified" (exit 3).
INT8 = ["--quantize", "int8", "--calibration-data", "{calib}"]

#: name -> convert arguments: both .tflite targets, fp32 and int8, one input and two inputs;
#: with preprocessing and labels in the manifest, and with int8 NHWC I/O (what a camera app feeds)
BUNDLES = {
    "resnet_nnapi_fp32": RESNET + ["--target", "nnapi"],
    "resnet_rpi_int8": RESNET + ["--target", "rpi"] + INT8,
    "bert_rpi_fp32": BERT + ["--target", "rpi"],
    "bert_nnapi_int8": BERT + ["--target", "nnapi"] + INT8,
    "resnet_nnapi_fp32_preprocess_labels": RESNET + ["--target", "nnapi"] + WITH_APP_KEYS,
    "resnet_rpi_int8_io_nhwc": RESNET + ["--target", "rpi"] + INT8 + [
        "--int8-io", "--io-layout", "nhwc"] + WITH_APP_KEYS,
}


def write_calibration(root: Path) -> dict[str, Path]:
    """Calibration files by model: resnet_small (8 photo crops, 1x3x64x64 each) and bert_tiny
    (8 token-id rows of 16 with attention masks padded from position 10..15)."""
    from edgeexport.zoo.photos import calibration_crops

    paths = {"edgeexport.zoo:resnet_small": root / "photos64.npy",
             "edgeexport.zoo:bert_tiny": root / "tokens16.npz"}
    np.save(paths["edgeexport.zoo:resnet_small"], calibration_crops(8, size=64))
    rng = np.random.default_rng(0)
    mask = np.ones((8, 16), np.int64)
    for i in range(8):
        mask[i, 10 + i % 6:] = 0
    np.savez(paths["edgeexport.zoo:bert_tiny"], attention_mask=mask,
             input_ids=rng.integers(0, 1000, (8, 16)).astype(np.int64))
    return paths


def missing_tool(reason: str) -> None:
    """CI must not pass a check it did not run; elsewhere the test says what is missing."""
    require(reason)


@pytest.fixture(scope="session")
def tflite_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("app-bundles")
    labels = root / "labels.txt"
    labels.write_text("\n".join(RESNET_LABELS) + "\n")
    calibration = write_calibration(root)
    out = {}
    for name, args in BUNDLES.items():
        fill = {"{labels}": str(labels), "{calib}": str(calibration[args[0]])}
        args = [fill.get(a, a) for a in args]
        r = run_cli("convert", *args, "-o", str(root / name), "--json")
        assert r.returncode == 0, f"{name}: {r.stderr[-2000:]}"
        out[name] = root / name
    return out


def require_commands(*names: str) -> None:
    for n in names:
        if shutil.which(n) is None:
            missing_tool(f"{n} is not installed (scripts/system-deps.sh installs it)")
