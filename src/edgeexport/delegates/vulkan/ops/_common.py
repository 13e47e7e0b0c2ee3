"""Helpers shared by the vulkan op emitters: attributes, constants and shape checks."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.registry import all_checks
from edgeexport.delegates.vulkan.context import VIRTUAL_OK, const_array, expressible


def attr_int(node: ir.Node, name: str, default: int) -> int:
    a = node.attributes.get(name)
    return default if a is None else int(a.value)


def attr_float(node: ir.Node, name: str, default: float) -> float:
    a = node.attributes.get(name)
    return default if a is None else float(a.value)


def attr_str(node: ir.Node, name: str, default: str) -> str:
    a = node.attributes.get(name)
    return default if a is None else str(a.value)


def attr_ints(node: ir.Node, name: str, default: list[int] | None = None) -> list[int] | None:
    a = node.attributes.get(name)
    return default if a is None else [int(x) for x in a.value]


def shape_of(value: ir.Value | None) -> tuple[int, ...] | None:
    """Static shape or None (unknown or dynamic)."""
    if value is None or value.shape is None:
        return None
    if not all(isinstance(d, int) for d in value.shape):
        return None
    return tuple(value.shape)


def input_const(node: ir.Node, index: int) -> np.ndarray | None:
    if index >= len(node.inputs):
        return None
    return const_array(node.inputs[index])


def check_static(node: ir.Node) -> str | None:
    """Every input and output has a static shape; outputs fit an ncnn blob (except for the
    reshapes and transposes that may pass through more axes, see context.VIRTUAL_OK)."""
    for v in list(node.inputs) + list(node.outputs):
        if v is None:
            continue
        shape = shape_of(v)
        if shape is None:
            return f"'{v.name}' has no static shape (ncnn models are built for fixed shapes)"
        if v in node.outputs and node.op_type not in VIRTUAL_OK:
            reason = expressible(shape)
            if reason:
                return reason
    return None


check_all = all_checks  # the registry's combinator, under the name this package uses


def static(node: ir.Node, ctx: object) -> str | None:
    return check_static(node)
