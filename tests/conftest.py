"""Shared fixtures: model files in every format the exporter reads, and runtime helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

# name -> (factory, input specs for --input-shape, example tensors builder)
MODELS = {
    "mobilenet_v2": ("edgeexport.zoo:mobilenet_v2_pretrained", ["x=1,3,224,224"]),
    "resnet": ("edgeexport.zoo:resnet_small", ["x=1,3,64,64"]),
    "vit": ("edgeexport.zoo:vit_tiny", ["x=1,3,32,32"]),
    "mobilevit": ("edgeexport.zoo:mobilevit_xxs_like", ["x=1,3,64,64"]),
    "bert": ("edgeexport.zoo:bert_tiny", ["input_ids=1,16:int64", "attention_mask=1,16:int64"]),
}


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
