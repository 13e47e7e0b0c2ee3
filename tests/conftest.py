"""Shared fixtures: model files in every format the exporter reads, and runtime helpers."""

from __future__ import annotations

import functools
import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeexport.zoo import EXAMPLES

REPO = Path(__file__).resolve().parents[1]

#: CI sets CI=true (.ci/run does too): there a test whose runtime or data is missing FAILS
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(reason: str | None) -> None:
    """Go on when `reason` is None; else skip the test (or the module) saying why, except in CI,
    where it fails: CI must not pass without executing the runtimes it claims to test. The
    only skips left outside this are listed in tests/test_ci_skips.py, each with its reason."""
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true and this test cannot run: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_runtime(name: str) -> None:
    """The runtime `name` (edgeexport.runtimes) must be able to run here."""
    from edgeexport.runtimes import get

    require(get(name).unavailable_reason())


def require_vulkan() -> None:
    """ncnn must see a Vulkan device (else ncnn-vulkan quietly runs on the CPU)."""
    require_runtime("ncnn-vulkan")
    from edgeexport.runtimes.ncnn import vulkan_devices

    require(None if vulkan_devices() else
            "no Vulkan device (scripts/system-deps.sh installs Mesa's lavapipe)")


def require_module(name: str) -> Any:
    """`pytest.importorskip` that fails in CI: the module, imported."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        require(f"{name} is not installed ({exc}); `make test` installs it")

# short name -> ("edgeexport.zoo:factory", --input-shape values), from the zoo's one table
MODELS = {short: (f"edgeexport.zoo:{name}", shapes) for short, (name, shapes) in EXAMPLES.items()}


def build(name: str):
    """(nn.Module, example inputs as torch tensors) for a MODELS entry."""
    import importlib

    import torch

    from edgeexport.exporter import parse_input_spec, sample_inputs

    factory, shapes = MODELS[name]
    mod, _, fn = factory.partition(":")
    model = getattr(importlib.import_module(mod), fn)()
    specs = [parse_input_spec(s) for s in shapes]
    arrays = sample_inputs(specs, int_high={"input_ids": 1000})
    return model, tuple(torch.from_numpy(a) for a in arrays)


def save_model(kind: str, name: str, folder: Path) -> str:
    """Write model `name` in format `kind`; returns the MODEL argument for the exporter."""
    import torch

    if kind == "factory":
        return MODELS[name][0]
    model, example = build(name)
    path = folder / f"{name}.{ {'torchscript': 'pt', 'pt2': 'pt2', 'pickle': 'pkl'}[kind] }"
    if kind == "torchscript":
        torch.jit.save(torch.jit.trace(model, example), path)
    elif kind == "pt2":
        torch.export.save(torch.export.export(model, example), path)
    elif kind == "pickle":
        torch.save(model, path)
    return str(path)


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None,
            timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess (what users run)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "edgeexport.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=full_env, timeout=timeout)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _seeded_global_generators() -> None:
    """Every test starts from the same torch and numpy global generators, so a test draws the
    same random inputs whichever tests pytest-xdist ran before it on the same worker."""
    import torch

    torch.manual_seed(0)
    np.random.seed(0)


#: zoo factory -> --input-shape values used by the per-target model tests
ZOO_SHAPES = dict(EXAMPLES.values())
MOBILENET = "mobilenet_v2_pretrained"


@functools.lru_cache(maxsize=None)
def zoo_parity_case(name: str) -> tuple:
    """(ExportResult after the default passes, parity samples, PyTorch's outputs on them) for a
    zoo model; MobileNetV2's samples include the 8 real photos. Cached per process: callers that
    change the model (quantize) must work on `quantize.clone(result.model)`."""
    from edgeexport.exporter import parse_input_spec
    from edgeexport.exporter.capture import run_eager
    from edgeexport.pipeline import ConvertOptions, Timer, export_and_optimize

    shapes = ZOO_SHAPES[name]
    opts = ConvertOptions(target="onnx", input_specs=[parse_input_spec(s) for s in shapes])
    result, _ = export_and_optimize(f"edgeexport.zoo:{name}", opts, Timer())
    in_names = [s.name for s in result.inputs]
    out_names = [v.name for v in result.model.graph.outputs]
    samples = [dict(zip(in_names, result.sample))]
    if name == MOBILENET:
        from edgeexport.zoo.photos import photo_batch

        samples += [{in_names[0]: p[None]} for p in photo_batch()[1]]
    expected = [dict(zip(out_names, run_eager(result.eager, result.inputs,
                                              [s[n] for n in in_names], name)))
                for s in samples]
    return result, samples, expected
