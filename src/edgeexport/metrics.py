"""Error statistics between an expected tensor (PyTorch) and an actual one (a runtime), and the
tolerances that decide pass/fail per precision.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np


@dataclass
class ErrorStats:
    max_abs_err: float
    #: max |expected - actual| divided by the range of `expected` (max - min; max|x| if constant)
    max_rel_err: float
    cosine: float
    sqnr_db: float
    #: fraction of rows whose argmax over the last axis agrees (None when the last axis is 1)
    top1_agreement: float | None

    def to_json(self) -> dict:
        return {k: _finite(v) for k, v in asdict(self).items()}


def _finite(v: float | None) -> float | str | None:
    if v is None or np.isfinite(v):
        return v
    return "inf" if v > 0 else ("-inf" if v < 0 else "nan")


def error_stats(expected: np.ndarray, actual: np.ndarray) -> ErrorStats:
    """Compare two tensors of the same shape (actual is cast to float64 first)."""
    e = np.asarray(expected)
    a = np.asarray(actual)
    if e.shape != a.shape:
        if e.size == a.size:
            a = a.reshape(e.shape)
        else:
            raise ValueError(f"shape mismatch: expected {e.shape}, got {a.shape}")
    if e.dtype == np.bool_ or a.dtype == np.bool_:
        e, a = e.astype(np.float64), a.astype(np.float64)
    e = e.astype(np.float64)
    a = a.astype(np.float64)
    diff = np.abs(e - a)
    max_abs = float(diff.max()) if diff.size else 0.0
    span = float(e.max() - e.min()) if e.size else 0.0
    if span == 0.0:
        span = float(np.abs(e).max()) if e.size else 0.0
    max_rel = max_abs / span if span > 0 else (0.0 if max_abs == 0 else float("inf"))
    ne, na = float(np.linalg.norm(e)), float(np.linalg.norm(a))
    if ne == 0.0 and na == 0.0:
        cosine = 1.0
    elif ne == 0.0 or na == 0.0:
        cosine = 0.0
    else:
        cosine = float(np.dot(e.ravel(), a.ravel()) / (ne * na))
    noise = float(np.sum((e - a) ** 2))
    signal = float(np.sum(e ** 2))
    sqnr = float("inf") if noise == 0 else (10 * np.log10(signal / noise) if signal > 0
                                            else float("-inf"))
    top1 = None
    if e.ndim >= 1 and e.shape[-1] > 1 and e.size:
        top1 = float(np.mean(e.reshape(-1, e.shape[-1]).argmax(-1)
                             == a.reshape(-1, a.shape[-1]).argmax(-1)))
    return ErrorStats(max_abs, max_rel, cosine, sqnr, top1)


@dataclass(frozen=True)
class Tolerance:
    """What 'computes the same' means for one precision. Every bound set must hold."""

    name: str
    max_rel_err: float | None = None
    min_cosine: float | None = None
    min_top1_agreement: float | None = None
    #: top-1 agreement judges only outputs of at most this rank: [batch, classes] logits (or
    #: [classes]). A segmentation map, a box regression or hidden states flip their argmax on
    #: one near-tied position while the tensor is right, so they are judged by the other bounds.
    #: None (bundles written before this field): top-1 judges every output, as it did.
    top1_max_rank: int | None = None
    #: which bound set max_rel_err/min_cosine: "fixed" (the precision's own), "noise floor"
    #: (k x PyTorch's own float64-vs-float32 error on the parity inputs, see widen_to_noise) or
    #: "fp16 noise floor" (k x PyTorch's float16-vs-float64 error, for an fp16 artifact; also
    #: sets min_top1_agreement when fp16 noise near-ties classifier rows, see validate.noise)
    bound: str | None = None

    def judges_top1(self, rank: int) -> bool:
        """Whether top-1 agreement judges an output of this rank."""
        return self.min_top1_agreement is not None and (self.top1_max_rank is None
                                                        or rank <= self.top1_max_rank)

    def violations(self, stats: ErrorStats) -> list[str]:
        out = []
        if self.max_rel_err is not None and not stats.max_rel_err <= self.max_rel_err:
            out.append(f"max_rel_err {stats.max_rel_err:.3g} > {self.max_rel_err:g}")
        if self.min_cosine is not None and not stats.cosine >= self.min_cosine:
            out.append(f"cosine {stats.cosine:.6f} < {self.min_cosine:g}")
        if (self.min_top1_agreement is not None and stats.top1_agreement is not None
                and not stats.top1_agreement >= self.min_top1_agreement):
            out.append(f"top-1 agreement {stats.top1_agreement:.3f} < {self.min_top1_agreement:g}")
        return out

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


#: Per precision of the artifact. fp32: 1e-4 of the output range (accumulation order differs
#: between runtimes); fp16 and int8 are judged by direction (cosine) and decisions (top-1).
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance("fp32", max_rel_err=1e-4, min_cosine=0.99999),
    "fp16": Tolerance("fp16", min_cosine=0.999, min_top1_agreement=1.0, top1_max_rank=2),
    "int8": Tolerance("int8", min_cosine=0.99),
    "dynamic-int8": Tolerance("dynamic-int8", min_cosine=0.99),
}


def merge(stats: list[ErrorStats], *, samples: bool = False) -> ErrorStats:
    """Worst case over several outputs, or over the samples of one output (`samples=True`):
    top-1 agreement is then the fraction of samples that agree, not the worst sample's 0 or 1."""
    tops = [s.top1_agreement for s in stats if s.top1_agreement is not None]
    top1 = (float(np.mean(tops)) if samples else min(tops)) if tops else None
    return ErrorStats(
        max(s.max_abs_err for s in stats), max(s.max_rel_err for s in stats),
        min(s.cosine for s in stats), min(s.sqnr_db for s in stats), top1)


#: A runtime is judged against max(fixed bound, NOISE_K x the model's own noise floor): PyTorch's
#: float64-vs-float32 error on the same inputs. Another runtime's float32 kernels (other
#: accumulation orders, folded BatchNorm, fused ops) perturb each op by rounding errors of the
#: same size as PyTorch's own, and an ill-conditioned net amplifies either alike; 10x leaves room
#: for that spread (measured on tests/validate/test_noise_floor.py's net: runtimes at 1-4x the
#: floor) while an artifact with a wrong weight is orders of magnitude above it.
NOISE_K = 10.0


#: The lowest cosine an fp16 artifact is ever held to, however unstable PyTorch's own fp16 output
#: is: the int8 bound. A model whose fp16 output is further off than int8 may be is not judged
#: "right" by fp16 parity at all (its verdict then rests on --samples or --precision fp32), and a
#: widened bound must not let a wrong artifact through (a flipped weight sign: cosine << 0.99).
FP16_LOWEST_COSINE = 0.99
#: With an fp16 floor measured, an fp16 artifact is also held to max_rel_err <= max(this, k x
#: PyTorch's own fp16 max_rel_err): cosine alone passes an output scaled by a constant (ncnn-vulkan
#: averaged HF EfficientNet's zero-padded pooler 1.6x off at cosine 1 - 1e-12). Not tighter than
#: the cosine bound: ncnn-vulkan accumulates in fp16 (PyTorch's half kernels in float32), which
#: reached max_rel_err 0.014 at 1 - cosine 4.8e-4 on MobileBERT's small-range pooled output
#: (PyTorch half: 4e-4); an output at the cosine bound (1e-3) sits near 0.02.
FP16_MIN_REL_ERR = 0.05


def widen_to_noise(tol: Tolerance, floor: ErrorStats, *, lowest_cosine: float = 0.0,
                   name: str = "noise floor") -> Tolerance:
    """The tolerance a runtime is held to given the model's float noise floor (`floor`: worst
    over outputs of float32 (or float16) vs float64 PyTorch). max_rel_err becomes
    max(fixed, k x floor); 1 - cosine grows with the square of the relative error
    (1 - cos ~ |e|^2 / 2|x|^2), so the cosine bound allows k^2 x the floor's 1 - cosine: the same
    k x error, never below `lowest_cosine`. `bound` says which won (`name` when the floor did).
    """
    rel, cos, widened = tol.max_rel_err, tol.min_cosine, False
    if rel is not None and NOISE_K * floor.max_rel_err > rel:
        rel, widened = float(f"{NOISE_K * floor.max_rel_err:.3g}"), True
    if cos is not None:
        by_floor = max(lowest_cosine, 1.0 - NOISE_K ** 2 * (1.0 - floor.cosine))
        if by_floor < cos:
            cos, widened = float(f"{by_floor:.6g}"), True
    return replace(tol, max_rel_err=rel, min_cosine=cos, bound=name if widened else "fixed")
