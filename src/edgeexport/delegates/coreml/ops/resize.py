"""Resize of the last two axes (NCHW): nearest with integer scales -> upsample_nearest_neighbor
(asymmetric, floor), linear -> upsample_bilinear (align_corners / half-pixel / asymmetric).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport import ir as eir
from edgeexport.delegates.coreml.context import (
    REGISTRY, EmitContext, attr, options_of, static_shape,
)

_LINEAR_MODES = {"half_pixel": (False, True), "pytorch_half_pixel": (False, True),
                 "align_corners": (True, False), "asymmetric": (False, False)}


def _scales(node: ir.Node) -> tuple[float, float] | None:
    """(height, width) scale factors, from `scales` or from `sizes` and the input shape."""
    x, shape = node.inputs[0], static_shape(node.inputs[0])
    scales = eir.initializer_array(node.inputs[2]) if len(node.inputs) > 2 and \
        node.inputs[2] is not None else None
    sizes = eir.initializer_array(node.inputs[3]) if len(node.inputs) > 3 and \
        node.inputs[3] is not None else None
    if x.shape is None or len(x.shape) != 4:
        return None
    if scales is not None and scales.size == 4:
        if not np.allclose(scales[:2], 1):
            return None
        return float(scales[2]), float(scales[3])
    if sizes is not None and sizes.size == 4 and shape is not None:
        if list(sizes[:2]) != shape[:2]:
            return None
        return sizes[2] / shape[2], sizes[3] / shape[3]
    return None


def _check_resize(node: ir.Node, ctx: Any) -> str | None:
    if attr(node, "axes", None) is not None or attr(node, "antialias", 0):
        return "Resize with axes or antialias has no CoreML mapping"
    scales = _scales(node)
    if scales is None:
        return "Resize needs a 4-D input and constant scales/sizes of H and W only for CoreML"
    mode = attr(node, "mode", "nearest")
    coords = attr(node, "coordinate_transformation_mode", "half_pixel")
    if mode == "nearest":
        if coords != "asymmetric" or attr(node, "nearest_mode", "round_prefer_floor") != "floor":
            return "nearest Resize maps to CoreML only as asymmetric + floor (PyTorch 'nearest')"
        if any(s != int(s) for s in scales):
            return "nearest Resize needs integer scales for CoreML"
        return None
    if mode == "linear":
        if coords not in _LINEAR_MODES:
            return f"linear Resize with {coords} coordinates has no CoreML mapping"
        align, half = _LINEAR_MODES[coords]
        # before iOS 16 upsample_bilinear has no half_pixel_centers: it samples half-pixel
        # centers exactly when align_corners is false (the MIL definition)
        if half != (not align) and options_of(ctx).ios < 16:
            return f"linear Resize with {coords} coordinates needs iOS 16 (--ios 16)"
        return None
    return f"{mode} Resize has no CoreML mapping"


@REGISTRY.op("Resize", check=_check_resize,
             conditions="4-D, H/W only; nearest = asymmetric floor with integer scales; linear")
def emit_resize(node: ir.Node, ctx: EmitContext) -> None:
    sh, sw = _scales(node)
    x, out = ctx.get(node.inputs[0]), node.outputs[0]
    if attr(node, "mode", "nearest") == "nearest":
        var = ctx.mb.upsample_nearest_neighbor(x=x, scale_factor_height=int(sh),
                                               scale_factor_width=int(sw), name=ctx.name(out))
    else:
        align, half = _LINEAR_MODES[attr(node, "coordinate_transformation_mode", "half_pixel")]
        kwargs: dict[str, Any] = {"align_corners": align}
        if ctx.ios >= 16:
            kwargs["half_pixel_centers"] = half
        var = ctx.mb.upsample_bilinear(x=x, scale_factor_height=float(sh),
                                       scale_factor_width=float(sw), name=ctx.name(out),
                                       **kwargs)
    ctx.set(out, var)
