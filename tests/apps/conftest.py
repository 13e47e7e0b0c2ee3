"""Fixtures for the app tests: real bundles written by `edgeexport convert`, made once per
session, and the rule that a missing toolchain fails in CI and skips elsewhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.conftest import require

RESNET = ["edgeexport.zoo:resnet_small", "--input-shape", "1,3,64,64"]
BERT = ["edgeexport.zoo:bert_tiny", "--input-shape", "input_ids=1,16:int64",
        "--input-shape", "attention_mask=1,16:int64"]

#: resnet_small's classes, for --labels ({labels} in BUNDLES is this file)
RESNET_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]
WITH_APP_KEYS = ["--preprocess", "imagenet", "--labels", "{labels}"]

#: name -> convert arguments: both .tflite targets, fp32 and int8, one input and two inputs;
#: with preprocessing and labels in the manifest, and with int8 NHWC I/O (what a camera app feeds)
BUNDLES = {
    "resnet_nnapi_fp32": RESNET + ["--target", "nnapi"],
    "resnet_rpi_int8": RESNET + ["--target", "rpi", "--quantize", "int8"],
    "bert_rpi_fp32": BERT + ["--target", "rpi"],
    "bert_nnapi_int8": BERT + ["--target", "nnapi", "--quantize", "int8"],
    "resnet_nnapi_fp32_preprocess_labels": RESNET + ["--target", "nnapi"] + WITH_APP_KEYS,
    "resnet_rpi_int8_io_nhwc": RESNET + ["--target", "rpi", "--quantize", "int8", "--int8-io",
                                         "--io-layout", "nhwc"] + WITH_APP_KEYS,
}


def missing_tool(reason: str) -> None:
    """CI must not pass a check it did not run; elsewhere the test says what is missing."""
    require(reason)


@pytest.fixture(scope="session")
def tflite_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("app-bundles")
    labels = root / "labels.txt"
    labels.write_text("\n".join(RESNET_LABELS) + "\n")
    out = {}
    for name, args in BUNDLES.items():
        args = [str(labels) if a == "{labels}" else a for a in args]
        r = run_cli("convert", *args, "-o", str(root / name), "--json")
        assert r.returncode == 0, f"{name}: {r.stderr[-2000:]}"
        out[name] = root / name
    return out


def require_commands(*names: str) -> None:
    for n in names:
        if shutil.which(n) is None:
            missing_tool(f"{n} is not installed (scripts/system-deps.sh installs it)")
