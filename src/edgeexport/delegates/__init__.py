"""Delegates: one package per target, each with its op registry and its emitter."""

from __future__ import annotations

import importlib
import importlib.util

from edgeexport import profile
from edgeexport.delegates.base import Artifact, Coverage, Fallback, Target
from edgeexport.errors import UsageError

__all__ = ["Artifact", "Coverage", "Fallback", "Target", "load_target", "target_names"]


def target_names() -> list[str]:
    """Targets whose delegate package is installed in this tree, in the documented order."""
    names = []
    for name, module in profile.TARGET_MODULES.items():
        if importlib.util.find_spec(module) is not None:
            names.append(name)
    return names


def load_target(name: str) -> Target:
    """The Target object of a target name (imports its delegate package)."""
    module = profile.TARGET_MODULES.get(name)
    if module is None:
        raise UsageError(f"unknown target '{name}'; choose one of: "
                         f"{', '.join(profile.TARGET_MODULES)}")
    return importlib.import_module(module).TARGET
