"""Helpers for the quantization tests: export zoo models, run IR on onnxruntime."""

from __future__ import annotations

import types

import numpy as np
import onnx_ir as ir

from edgeexport import ir as eir


def exported(model: str, *specs: str):
    from edgeexport import passes
    from edgeexport.exporter import export, parse_input_spec

    r = export(model, input_specs=[parse_input_spec(s) for s in specs])
    passes.optimize(r.model)
    return r


def fresh(result) -> types.SimpleNamespace:
    from edgeexport.quantize import clone

    return types.SimpleNamespace(model=clone(result.model), inputs=result.inputs,
                                 sample=result.sample)


def run_ort(model: ir.Model, feeds_list: list[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
    import onnxruntime as ort

    s = ort.InferenceSession(eir.to_bytes(model), providers=["CPUExecutionProvider"])
    names = {i.name for i in s.get_inputs()}
    return [s.run(None, {k: v for k, v in f.items() if k in names}) for f in feeds_list]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
