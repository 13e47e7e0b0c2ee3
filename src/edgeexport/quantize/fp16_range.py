"""Calibration-free range analysis for fp16 artifacts: run the float IR on the parity inputs
(onnxruntime, every value kept) and find the values fp16 cannot hold: overflow, divisors that
flush to zero.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import onnx_ir as ir

from edgeexport.quantize.observe import run_observed

#: fp16's largest finite value is 65504; the op producing a value rounds once more, and the
#: next op (a sum, a product) grows it, so values past 60000 are treated as overflowing
FP16_SAFE = 60000.0
#: |x| from here on (and inf) is a masking constant (torch.finfo(float32).min added to attention
#: scores), which fp16 saturates to -inf on purpose and softmax turns into 0: not an overflow
MASK_LIKE = 1e30
#: the smallest fp16 subnormal (2^-24): a divisor above 0 in float32 but below this is 0 in fp16
FP16_TINY = 2.0 ** -24


@dataclass
class Fp16Hazard:
    value: str
    op: str
    node: str
    #: largest |x| seen, or for a divisor its smallest nonzero |x|
    magnitude: float
    why: str

    def to_json(self) -> dict:
        return asdict(self)


def fp16_hazards(model: ir.Model, samples: list[dict[str, np.ndarray]]) -> list[Fp16Hazard]:
    """The float values of `model` that overflow fp16 on `samples` (|x| > FP16_SAFE), and the
    divisors (Div's second input, Reciprocal's input) that fp16 flushes to zero."""
    producers: dict[str, ir.Node] = {}
    for node in model.graph:
        for v in node.outputs:
            if v is not None and v.name and v.dtype == ir.DataType.FLOAT:
                producers[v.name] = node
    divisors = {n.inputs[1 if n.op_type == "Div" else 0].name for n in model.graph
                if n.op_type in ("Div", "Reciprocal") and n.inputs[-1] is not None}
    names = sorted(producers)
    if not names:
        return []
    big = dict.fromkeys(names, 0.0)
    tiny = dict.fromkeys(n for n in names if n in divisors)

    def visit(outs: dict[str, np.ndarray]) -> None:
        for name, x in outs.items():
            a = np.abs(np.asarray(x, np.float64))
            a = a[a < MASK_LIKE]  # (NaN compares False: dropped too)
            if a.size:
                big[name] = max(big[name], float(a.max()))
                if name in tiny and (a > 0).any():
                    m = float(a[a > 0].min())
                    tiny[name] = m if tiny[name] is None else min(tiny[name], m)

    run_observed(model, samples, names, visit)
    out = [Fp16Hazard(n, producers[n].op_type, producers[n].name or "", big[n],
                      f"|x| reaches {big[n]:.3g} > {FP16_SAFE:g} (fp16 max 65504)")
           for n in names if big[n] > FP16_SAFE]
    out += [Fp16Hazard(n, producers[n].op_type, producers[n].name or "", m,
                       f"divisor |x| down to {m:.3g} < {FP16_TINY:.3g}: 0 in fp16, the "
                       "division gives inf")
            for n, m in tiny.items() if m is not None and m < FP16_TINY]
    return out
