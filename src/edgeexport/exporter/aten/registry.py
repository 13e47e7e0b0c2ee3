"""One registration per ATen overload: the function that lowers an FX node of that op to IR nodes.

A lowering reads its arguments through the Context, appends IR nodes, and returns the IR value
(or tuple of values) of the FX node; it raises NotLowerable when an argument combination is
outside what it maps faithfully.
"""

from __future__ import annotations

from typing import Any, Callable

Lowering = Callable[..., Any]

LOWERINGS: dict[Any, Lowering] = {}


def lowers(*targets: Any) -> Callable[[Lowering], Lowering]:
    """Register a lowering for OpOverloads (or OpOverloadPackets: every overload of them)."""

    def register(fn: Lowering) -> Lowering:
        for target in targets:
            overloads = ([getattr(target, o) for o in target.overloads()]
                         if hasattr(target, "overloads") else [target])
            for ov in overloads:
                if ov in LOWERINGS:
                    raise ValueError(f"{ov} already has a lowering ({LOWERINGS[ov].__name__})")
                LOWERINGS[ov] = fn
        return fn

    return register
