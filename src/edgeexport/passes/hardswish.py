"""Recognise HardSigmoid (Clip(x + 3, 0, 6) / 6) and HardSwish (x * HardSigmoid(x)) written
out elementwise, as MobileNetV3-style code does, into the single edge-profile ops.
"""

from __future__ import annotations

from onnxscript.rewriter.rules import common as rules

from edgeexport.passes._rules import RulePass


class FuseHardSwishPass(RulePass):
    name = "fuse-hardswish"
    commute = True

    def rules(self) -> list:
        return list(rules.fuse_hardswish_rules().rules)
