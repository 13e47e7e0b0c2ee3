"""The structural checks of user artifacts accept everything edgeexport emits (zoo models as
.tflite fp32/fp16/int8/dynamic-int8 and ncnn fp32/fp16), and `run` through the isolated child
gives the same outputs as the runtime in this process."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import pytest

from edgeexport.delegates import load_target
from edgeexport.delegates.tflite import emit_model
from edgeexport.delegates.tflite.verify import verify as verify_tflite
from edgeexport.delegates.vulkan.verify import verify as verify_ncnn
from edgeexport.runtimes import get
from edgeexport.runtimes.isolate import run_isolated
from tests.conftest import zoo_parity_case

ZOO = ["resnet_small", "vit_tiny", "bert_tiny", "mobilevit_xxs_like"]


def _quantized(name: str, scheme: str):
    from edgeexport import quantize

    result = copy.copy(zoo_parity_case(name)[0])
    result.model = quantize.clone(result.model)
    quantize.apply(result, scheme, None, calibration_method="minmax", quiet=True)
    return result.model


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("scheme", ["fp32", "fp16", "int8", "dynamic-int8"])
def test_tflite_check_accepts_what_we_emit(name: str, scheme: str, tmp_path: Path) -> None:
    result = zoo_parity_case(name)[0]
    model = (_quantized(name, scheme) if scheme in ("int8", "dynamic-int8") else result.model)
    path = tmp_path / "m.tflite"
    path.write_bytes(emit_model(model, "fp16" if scheme == "fp16" else "fp32").data)
    inputs = verify_tflite(path)
    assert [i.name for i in inputs] and all(min(i.shape) > 0 for i in inputs)


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_ncnn_check_accepts_what_we_emit(name: str, precision: str, tmp_path: Path) -> None:
    model = zoo_parity_case(name)[0].model
    artifact = load_target("vulkan").emit(model, tmp_path, argparse.Namespace(precision=precision))
    blobs = verify_ncnn(artifact.path)
    assert blobs


def test_isolated_run_matches_in_process(tmp_path: Path) -> None:
    result, samples, _ = zoo_parity_case("resnet_small")
    path = tmp_path / "m.tflite"
    path.write_bytes(emit_model(result.model).data)
    got, facts = run_isolated("litert", path, samples[0])
    want = get("litert").load(path).run(samples[0])
    assert facts["device"] == "cpu" and list(got) == list(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
