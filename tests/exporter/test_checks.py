"""exporter.checks accepts the ONNX files edgeexport itself writes (the IR of every test-sized zoo
model, float and int8 QDQ) and a TorchScript archive that converts is captured as before."""

from __future__ import annotations

import copy

import onnx
import pytest

from edgeexport import ir as eir
from edgeexport.exporter.checks import check_onnx
from tests.conftest import zoo_parity_case


@pytest.mark.parametrize("name", ["resnet_small", "vit_tiny", "bert_tiny", "mobilevit_xxs_like"])
@pytest.mark.parametrize("scheme", [None, "int8"])
def test_check_onnx_accepts_our_ir(name: str, scheme: str | None) -> None:
    result = zoo_parity_case(name)[0]
    model = result.model
    if scheme:
        from edgeexport import quantize

        result = copy.copy(result)
        result.model = model = quantize.clone(model)
        quantize.apply(result, scheme, None, calibration_method="minmax", quiet=True)
    check_onnx(onnx.load_model_from_string(eir.to_bytes(model)), name)
