"""Optimization passes on the IR: small onnx_ir passes run by a manager that reports what changed.

`optimize(model)` runs the default pipeline that `export` and `convert` use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import onnx_ir as ir
from onnx_ir.passes import PassBase, PassManager
from onnx_ir.passes.common import CommonSubexpressionEliminationPass, TopologicalSortPass

from edgeexport.passes.batchnorm import FoldBatchNormPass
from edgeexport.passes.batchnorm_linear import FoldBatchNormIntoLinearPass
from edgeexport.passes.constant_folding import ConstantFoldingPass
from edgeexport.passes.dce import DeadCodeEliminationPass
from edgeexport.passes.gelu import FuseGeluPass
from edgeexport.passes.gemm import MatMulAddToGemmPass
from edgeexport.passes.hardswish import FuseHardSwishPass
from edgeexport.passes.layernorm import FuseLayerNormPass
from edgeexport.passes.noop import RemoveNoOpsPass
from edgeexport.passes.shapes import SimplifyShapesPass
from edgeexport.passes.silu import FuseSiluPass
from edgeexport.passes.transpose import TransposePairsPass


@dataclass
class PassReport:
    ran: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)


def default_passes() -> list[PassBase]:
    """The passes `export` runs unless --no-optimize. Order matters: shapes and constants first
    so the fusions see constants; cleanup last."""
    return [
        RemoveNoOpsPass(),
        SimplifyShapesPass(),
        ConstantFoldingPass(),
        FoldBatchNormPass(),
        FoldBatchNormIntoLinearPass(),
        TransposePairsPass(),
        MatMulAddToGemmPass(),
        FuseGeluPass(),
        FuseLayerNormPass(),
        FuseHardSwishPass(),
        FuseSiluPass(),
        CommonSubexpressionEliminationPass(),
        DeadCodeEliminationPass(),
        TopologicalSortPass(),
    ]


def optimize(model: ir.Model, passes: list[PassBase] | None = None, *,
             steps: int = 4) -> PassReport:
    """Run the passes (in place) to a fixed point (at most `steps` rounds)."""
    report = PassReport()
    passes = default_passes() if passes is None else passes
    for _ in range(steps):
        changed = False
        for p in passes:
            result = p(model)
            name = getattr(p, "name", None) or type(p).__name__
            report.ran.append(name)
            if result.modified:
                changed = True
                if name not in report.modified:
                    report.modified.append(name)
            model = result.model
        if not changed:
            break
    return report


__all__ = [
    "ConstantFoldingPass", "DeadCodeEliminationPass", "FoldBatchNormIntoLinearPass",
    "FoldBatchNormPass", "FuseGeluPass",
    "FuseHardSwishPass", "FuseLayerNormPass", "FuseSiluPass", "MatMulAddToGemmPass",
    "PassManager", "PassReport", "RemoveNoOpsPass", "SimplifyShapesPass", "TransposePairsPass",
    "default_passes", "optimize",
]
