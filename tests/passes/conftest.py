"""Fixtures for the pass tests: real models exported once per session."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest


@pytest.fixture(scope="session")
def real_models() -> dict[str, tuple[ir.Model, dict[str, np.ndarray]]]:
    """A CNN and a BERT-style encoder exported by our exporter, with sample inputs."""
    from edgeexport.exporter import export, parse_input_spec

    out = {}
    for name, model, specs in [
        ("cnn", "edgeexport.zoo:resnet_small", ["1,3,64,64"]),
        ("bert", "edgeexport.zoo:bert_tiny", ["input_ids=1,16:int64",
                                                "attention_mask=1,16:int64"]),
    ]:
        r = export(model, input_specs=[parse_input_spec(s) for s in specs])
        out[name] = (r.model, {s.name: a for s, a in zip(r.inputs, r.sample)})
    return out
