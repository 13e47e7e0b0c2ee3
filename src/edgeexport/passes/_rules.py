"""Base class for passes built from onnxscript's pattern rewriter (a well-kept matcher), run to a
fixed point; `modified` is true only when at least one rewrite happened.
"""

from __future__ import annotations

from typing import ClassVar

import onnx_ir as ir
from onnx_ir.passes import InPlacePass, PassResult
from onnxscript.rewriter import pattern

#: a rewrite loop that never settles is a bug in a rule; stop instead of spinning
MAX_ROUNDS = 16


class RulePass(InPlacePass):
    """A named pass that applies a set of rewrite rules until none matches."""

    name: ClassVar[str] = "rules"
    commute: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def rules(self) -> list[pattern.RewriteRule]:
        raise NotImplementedError

    def call(self, model: ir.Model) -> PassResult:
        ruleset = pattern.RewriteRuleSet(self.rules(), commute=self.commute)
        self.count = 0
        for _ in range(MAX_ROUNDS):
            n = ruleset.apply_to_model(model)
            if not n:
                break
            self.count += n
        return PassResult(model, modified=self.count > 0)

