"""CoreML itself (coremltools predict) on the artifacts: macOS only. Off macOS the test is
skipped, also in CI: CoreML cannot exist there, so no install could make it run. On a Mac it
compares CoreML, the MIL interpreter and PyTorch on the same package, and a missing coremltools
native module fails it in CI like any missing runtime.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeexport.delegates import load_target
from edgeexport.runtimes import get
from edgeexport.validate import TOLERANCES
from edgeexport.metrics import error_stats
from tests.conftest import require_runtime


@pytest.mark.macos
@pytest.mark.skipif(sys.platform != "darwin",
                    reason="CoreML predict exists only on macOS (Apple's CoreML framework)")
@pytest.mark.parametrize("target,precision", [("coreml", "fp16"), ("metal", "fp16"),
                                              ("coreml", "fp32")])
def test_coreml_predict_matches_pytorch_and_the_interpreter(target: str, precision: str,
                                                            tmp_path: Path) -> None:
    from tests.delegates.test_coreml_models import exported

    require_runtime("coreml")
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
