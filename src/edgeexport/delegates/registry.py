"""One registration per (target, op): the check that says whether a node can be taken, and why
not, together with the emitter that takes it.

    REGISTRY = OpRegistry("vulkan")

    @REGISTRY.op("Conv", check=check_conv, conditions="2-D, dilation 1 when depthwise")
    def emit_conv(node, ctx): ...

A duplicate registration is an error, the decorator returns the function unchanged, and the
support status that `edgeexport targets` prints is derived from these entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import onnx_ir as ir

from edgeexport import profile

#: A check returns None when the node can be taken, else the reason in the words users see.
Check = Callable[[ir.Node, Any], "str | None"]
Emitter = Callable[..., Any]


def all_checks(*checks: Check) -> Check:
    """One check made of several: the first reason wins (the user sees one reason per node)."""
    def check(node: ir.Node, ctx: Any) -> str | None:
        for c in checks:
            reason = c(node, ctx)
            if reason:
                return reason
        return None
    return check


@dataclass(frozen=True)
class OpRule:
    op_type: str
    emit: Emitter
    check: Check | None
    conditions: str

    def why_not(self, node: ir.Node, ctx: Any = None) -> str | None:
        return self.check(node, ctx) if self.check is not None else None


class OpRegistry:
    """The op table of one target (or one artifact format shared by several targets)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._rules: dict[str, OpRule] = {}

    def op(self, *op_types: str, check: Check | None = None,
           conditions: str = "") -> Callable[[Emitter], Emitter]:
        if not op_types:
            raise ValueError("register at least one op type")

        def register(fn: Emitter) -> Emitter:
            for op_type in op_types:
                if profile.spec(op_type) is None:
                    raise ValueError(f"{self.target}: {op_type} is not in the edge profile; "
                                     "add it to edgeexport.profile first")
                if op_type in self._rules:
                    prev = self._rules[op_type].emit
                    raise ValueError(f"{self.target}: {op_type} registered twice "
                                     f"({prev.__module__}.{prev.__qualname__} and "
                                     f"{fn.__module__}.{fn.__qualname__})")
                self._rules[op_type] = OpRule(op_type, fn, check, conditions)
            return fn

        return register

    def rule(self, op_type: str) -> OpRule | None:
        return self._rules.get(op_type)

    def __contains__(self, op_type: str) -> bool:
        return op_type in self._rules

    def __iter__(self) -> Iterator[OpRule]:
        return iter(self._rules.values())

    def why_not(self, node: ir.Node, ctx: Any = None) -> str | None:
        """None when this target takes the node, else the reason (same words everywhere)."""
        if node.domain not in ("", "ai.onnx"):
            return f"custom-domain op {node.domain}::{node.op_type} has no {self.target} mapping"
        rule = self._rules.get(node.op_type)
        if rule is None:
            return f"{node.op_type} has no {self.target} mapping"
        return rule.why_not(node, ctx)

    def support_status(self, op_type: str) -> str:
        rule = self._rules.get(op_type)
        if rule is None:
            return "no"
        if rule.check is not None or rule.conditions:
            return "conditional" + (f": {rule.conditions}" if rule.conditions else "")
        return "yes"


def supported_by(op: str, *, besides: str | None = None) -> list[str]:
    """Targets whose registry takes `op` (for the unsupported-op message), other than `besides`."""
    try:
        matrix = profile.support_matrix().get(op, {})
    except Exception:  # a half-written delegate elsewhere must not hide this error
        return []
    return [t for t, status in matrix.items() if status != "no" and t != besides]
