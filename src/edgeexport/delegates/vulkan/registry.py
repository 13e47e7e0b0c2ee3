"""The op table of the vulkan target: the one OpRegistry that every op family module under
`ops/` registers into (check + emitter per op), imported by the target and `edgeexport targets`.
"""

from __future__ import annotations

from edgeexport.delegates.registry import OpRegistry

REGISTRY = OpRegistry("vulkan")


def load_ops() -> OpRegistry:
    """Import every op family module so that their registrations are in REGISTRY."""
    from edgeexport.delegates.vulkan import ops  # noqa: F401  (registers on import)

    return REGISTRY
