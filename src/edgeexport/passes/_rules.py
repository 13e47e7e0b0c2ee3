"""Base class for passes built from onnxscript's pattern rewriter (a well-kept matcher), run to a
fixed point; `modified` is true only when at least one rewrite happened.
"""

from __future__ import annotations

from typing import ClassVar

import onnx_ir as ir
from onnx_ir.passes import InPlacePass, PassResult
from onnxscript.rewriter import pattern

from edgeexport.ir import iter_nodes

#: a rewrite loop that never settles is a bug in a rule; stop instead of spinning
MAX_ROUNDS = 16


class RulePass(InPlacePass):
    """A named pass that applies a set of rewrite rules until none matches."""

    name: ClassVar[str] = "rules"
    commute: ClassVar[bool] = True
    #: op types of which every rule needs at least one in the graph; the matcher tries each rule
    #: at each node, so a graph without any of them skips the pass (empty: always run)
    anchors: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def rules(self) -> list[pattern.RewriteRule]:
        raise NotImplementedError

    def call(self, model: ir.Model) -> PassResult:
        self.count = 0
        if self.anchors and not any(n.op_type in self.anchors for n in iter_nodes(model.graph)):
            return PassResult(model, modified=False)
        ruleset = pattern.RewriteRuleSet(self.rules(), commute=self.commute)
        self.count = 0
        for _ in range(MAX_ROUNDS):
            n = ruleset.apply_to_model(model)
            if not n:
                break
            self.count += n
        return PassResult(model, modified=self.count > 0)

