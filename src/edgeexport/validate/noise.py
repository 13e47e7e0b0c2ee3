"""The model's own float noise floor: its PyTorch program run in float64 against float32 on the
parity inputs. Runtimes are judged against it (metrics.widen_to_noise) when it exceeds the
fixed bound.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from edgeexport.errors import first_line
from edgeexport.metrics import ErrorStats, Tolerance, error_stats, merge, widen_to_noise


@dataclass
class NoiseFloor:
    """report.json `noise_floor`: per output, float64 vs float32 PyTorch (max_rel_err, cosine);
    `unavailable` says why it was not measured (the fixed bound then applies)."""

    per_output: dict[str, ErrorStats] = field(default_factory=dict)
    unavailable: str | None = None

    @property
    def worst(self) -> ErrorStats | None:
        return merge(list(self.per_output.values())) if self.per_output else None

    def to_json(self, tolerance: Tolerance) -> dict[str, Any]:
        return {
            "what": "PyTorch float64 vs float32 on the parity inputs (worst sample)",
            "per_output": {k: {"max_rel_err": s.to_json()["max_rel_err"],
                               "cosine": s.to_json()["cosine"]}
                           for k, s in self.per_output.items()},
            "unavailable": self.unavailable,
            "bound": tolerance.bound or "fixed",
            "max_rel_err": tolerance.max_rel_err, "min_cosine": tolerance.min_cosine,
        }


def measure(eager: Callable[..., Any] | None, feeds: list[list[np.ndarray]],
            expected: list[dict[str, np.ndarray]]) -> NoiseFloor:
    """Run a float64 copy of `eager` on `feeds` (the float32 inputs PyTorch was given, in input
    order) and compare with `expected` (its float32 outputs, by name, in output order)."""
    if eager is None:
        return NoiseFloor(unavailable="no PyTorch program (an ONNX source): fixed bound")
    import torch

    from edgeexport.exporter.capture import flatten_outputs, quiet_torch, torch_inputs

    try:
        module = copy.deepcopy(eager)
        module = module.double() if hasattr(module, "double") else module
        per_output: dict[str, list[ErrorStats]] = {}
        with torch.no_grad(), quiet_torch():
            for arrays, want in zip(feeds, expected):
                args = torch_inputs([a.astype(np.float64) if a.dtype == np.float32 else a
                                     for a in arrays])
                got = [t.detach().cpu().numpy() for t in flatten_outputs(module(*args))]
                for (name, ref), f64 in zip(want.items(), got):
                    if np.issubdtype(ref.dtype, np.floating) and f64.dtype == np.float64:
                        per_output.setdefault(name, []).append(error_stats(f64, ref))
    except Exception as exc:  # a program that cannot run in float64 (float32-only kernels)
        return NoiseFloor(unavailable=f"cannot run in float64 ({first_line(exc)}): fixed bound")
    if not per_output:
        return NoiseFloor(unavailable="no float64 output to compare: fixed bound")
    return NoiseFloor({k: merge(v) for k, v in per_output.items()})


def judge_with(tolerance: Tolerance, floor: NoiseFloor, fp32: Tolerance) -> tuple[Tolerance,
                                                                                 str | None]:
    """The tolerance runtimes are held to, and a warning when float32 PyTorch itself is unstable
    on the parity inputs (its own error above the fp32 bound `fp32`)."""
    worst = floor.worst
    if worst is None:
        return tolerance, None
    judged = widen_to_noise(tolerance, worst)
    if not fp32.violations(worst):
        return judged, None
    name = max(floor.per_output, key=lambda k: floor.per_output[k].max_rel_err)
    s = floor.per_output[name]
    return judged, (f"the model's own float32 output '{name}' is unstable on the parity inputs "
                    f"(PyTorch float32 vs float64: max_rel_err {s.max_rel_err:.3g}, cosine "
                    f"{s.cosine:.6f}): the model is ill-conditioned there (random-normal inputs "
                    "drive real BatchNorm statistics out of range), so runtimes are judged "
                    f"against its noise floor (bound {judged.bound}); pass --samples with real "
                    "inputs for a verdict that can show the artifact is right")
