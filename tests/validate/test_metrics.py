"""Error statistics over samples and outputs: worst case for errors and cosine, and top-1
agreement as the fraction of samples that agree (a worst-sample 0 would read as "never")."""

from __future__ import annotations

import numpy as np

from edgeexport.metrics import error_stats, merge


def test_top1_over_samples_is_a_fraction_and_over_outputs_the_worst() -> None:
    want = np.array([[0.1, 0.9, 0.0]], np.float32)
    agree = error_stats(want, want + 0.01)
    flip = error_stats(want, np.array([[0.95, 0.9, 0.0]], np.float32))
    per_samples = merge([agree, agree, agree, flip], samples=True)
    assert per_samples.top1_agreement == 0.75
    assert per_samples.cosine == flip.cosine and per_samples.max_abs_err == flip.max_abs_err
    assert merge([agree, flip]).top1_agreement == 0.0  # across outputs: the worst one
