"""Every pass, and the default pipeline, keeps a real CNN's and a BERT encoder's outputs."""

from __future__ import annotations

import pytest
from ._helpers import check_pass, clone

from edgeexport import passes


@pytest.mark.parametrize("model_name", ["cnn", "bert"])
@pytest.mark.parametrize("pass_cls", [type(p) for p in passes.default_passes()
                                      if hasattr(p, "name")], ids=lambda c: c.name)
def test_pass_on_real_model(real_models, model_name, pass_cls):
    model, feeds = real_models[model_name]
    model = clone(model)
    # the exporter's output is already canonical: the pass may or may not find work, but must
    # keep outputs and be idempotent
    check_pass(pass_cls(), model, expect_change=None, feeds=feeds)


@pytest.mark.parametrize("model_name", ["cnn", "bert"])
def test_default_pipeline_keeps_outputs(real_models, model_name):
    from ._helpers import REL_TOL, run_model

    from edgeexport.metrics import error_stats

    model, feeds = real_models[model_name]
    model = clone(model)
    before = run_model(clone(model), feeds)
    report = passes.optimize(model)
    after = run_model(model, feeds)
    for name, want in before.items():
        assert error_stats(want, after[name]).max_rel_err <= REL_TOL
    assert not passes.optimize(model).modified, "the pipeline reaches a fixed point"
    assert report.ran
