"""Helpers for the pass tests: run a model on the reference runtime (onnxruntime until the
reference runtime is importable) and compare outputs before and after a pass."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgeexport import ir as eir
from edgeexport.metrics import error_stats

#: the issue's bound: a pass must not change outputs by more than 1e-6 of their range
REL_TOL = 1e-6


def run_model(model: ir.Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    try:
        from edgeexport.runtimes import reference
        run = reference.run
    except (ImportError, AttributeError):
        run = None
    if run is not None:
        return run(model, feeds)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(eir.to_bytes(model), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def random_feeds(model: ir.Model, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for v in model.graph.inputs:
        if v.name in model.graph.initializers:
            continue
        dtype = eir.np_dtype(v.dtype)
        shape = [int(d) for d in v.shape]
        feeds[v.name] = (rng.integers(0, 100, shape).astype(dtype) if dtype.kind == "i"
                         else rng.standard_normal(shape).astype(dtype))
    return feeds


def clone(model: ir.Model) -> ir.Model:
    return ir.serde.deserialize_model(ir.serde.serialize_model(model))


def text_model(text: str, seed: int = 0, **weights: tuple[int, ...]) -> ir.Model:
    """An IR model from ONNX text; `weights` name -> shape become random initializers."""
    rng = np.random.default_rng(seed)
    inits = [ir.tensor(rng.standard_normal(shape).astype(np.float32) * 0.5 + 0.1 * (i + 1),
                       name=name) for i, (name, shape) in enumerate(weights.items())]
    from onnx_ir.passes.common import ShapeInferencePass

    model = ir.from_onnx_text(text, initializers=inits)
    # exported models carry types and shapes on every value; give the text models theirs
    return ShapeInferencePass()(model).model


def check_pass(pass_obj, model: ir.Model, *, expect_change: bool | None, feeds=None) -> ir.Model:
    """Run a pass; assert outputs unchanged (<= 1e-6 rel), `modified` honest, idempotence."""
    feeds = feeds or random_feeds(model)
    before = run_model(clone(model), feeds)
    result = pass_obj(model)
    if expect_change is not None:
        assert result.modified == expect_change, (type(pass_obj).__name__, eir.op_types(model))
    after = run_model(result.model, feeds)
    for name, want in before.items():
        stats = error_stats(want, after[name])
        assert stats.max_rel_err <= REL_TOL, (name, stats)
    again = pass_obj(result.model)
    assert not again.modified, "a second run must find nothing to do"
    return result.model


