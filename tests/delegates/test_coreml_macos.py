"""CoreML itself (coremltools predict) on the artifacts: macOS only. Here, off macOS, the test is
skipped with the reason the coreml runtime gives; on a Mac it compares CoreML, the MIL
interpreter and PyTorch on the same package.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from edgeexport.delegates import load_target
from edgeexport.runtimes import get
from edgeexport.validate import TOLERANCES
from edgeexport.metrics import error_stats

_REASON = get("coreml").unavailable_reason()


@pytest.mark.macos
@pytest.mark.skipif(_REASON is not None, reason=_REASON or "")
@pytest.mark.parametrize("target,precision", [("coreml", "fp16"), ("metal", "fp16"),
                                              ("coreml", "fp32")])
def test_coreml_predict_matches_pytorch_and_the_interpreter(target: str, precision: str,
                                                            tmp_path: Path) -> None:
    from tests.delegates.test_coreml_models import exported

    result, samples, expected = exported("resnet_small")
    artifact = load_target(target).emit(result.model, tmp_path,
                                        argparse.Namespace(precision=precision))
    coreml = get("coreml").load(artifact.path)
    interp = get("mil-interpreter").load(artifact.path)
    tol = TOLERANCES[precision]
    for feeds, want in zip(samples, expected):
        got, ours = coreml.run(feeds), interp.run(feeds)
        for name, ref in want.items():
            assert not tol.violations(error_stats(ref, got[name])), name
            assert error_stats(ours[name], got[name]).cosine >= 0.999
    assert np.isfinite(list(coreml.run(samples[0]).values())[0]).all()
