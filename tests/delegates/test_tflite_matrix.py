"""The acceptance matrix: ResNet-, ViT-, MobileViT-style nets and a BERT-style encoder to nnapi and
rpi in fp32, fp16 and int8 (dynamic int8 for the encoder), with edgeexport.quantize, parity on
LiteRT x86 against PyTorch (and on litert-aarch64-qemu for rpi, marked qemu).
"""

from __future__ import annotations

import argparse
import copy

import pytest

from edgeexport import passes
from edgeexport.delegates import load_target
from edgeexport.exporter import export, parse_input_spec
from edgeexport.validate import TOLERANCES, check_runtime
from tests.conftest import MODELS, require_runtime

pytestmark = pytest.mark.slow
_CACHE: dict[str, object] = {}


def prepared(name: str, scheme: str):
    key = f"{name}/{scheme}"
    if key not in _CACHE:
        if name not in _CACHE:
            factory, shapes = MODELS[name]
            _CACHE[name] = export(factory, input_specs=[parse_input_spec(s) for s in shapes])
            passes.optimize(_CACHE[name].model)
        base = _CACHE[name]
        if scheme == "fp32":
            _CACHE[key] = base
        else:
            from edgeexport import quantize

            result = copy.copy(base)
            result.model = quantize.clone(base.model)
            quantize.apply(result, scheme, None, quiet=True)
            _CACHE[key] = result
    return _CACHE[key]


def _scheme(name: str, precision: str) -> str:
    if precision == "int8":
        return "dynamic-int8" if name == "bert" else "int8"
    return precision


@pytest.mark.parametrize("name", ["resnet", "vit", "mobilevit", "bert"])
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_convert_matrix(name: str, precision: str, tmp_path) -> None:
    scheme = _scheme(name, precision)
    result = prepared(name, scheme)
    samples = [{s.name: a for s, a in zip(result.inputs, result.sample)}]
    out_names = [v.name for v in result.model.graph.outputs]
    expected = [dict(zip(out_names, _CACHE[name].expected))]
    for target_name in ("nnapi", "rpi"):
        target = load_target(target_name)
        opts = argparse.Namespace(precision=None, quantize=None if scheme == "fp32" else scheme,
                                  android_api=29, cpu="cortex-a72")
        art = target.emit(result.model, tmp_path, opts)
        tol = TOLERANCES[scheme]
        parity = check_runtime("litert", art.path, samples, expected, tol, timing_runs=0)
        assert parity.executed and parity.passed, (target_name, scheme, parity.violations)
        if scheme == "fp32":
            assert parity.stats.max_rel_err <= 1e-4


@pytest.mark.qemu
@pytest.mark.parametrize("name", ["vit", "bert"])
def test_rpi_transformers_under_qemu(name: str, tmp_path) -> None:
    require_runtime("litert-aarch64-qemu")
    result = prepared(name, "fp32")
    samples = [{s.name: a for s, a in zip(result.inputs, result.sample)}]
    expected = [dict(zip([v.name for v in result.model.graph.outputs], result.expected))]
    art = load_target("rpi").emit(result.model, tmp_path, argparse.Namespace(cpu="cortex-a76"))
    parity = check_runtime("litert-aarch64-qemu", art.path, samples, expected,
                           TOLERANCES["fp32"], timing_runs=0)
    assert parity.executed and parity.passed, parity.violations
