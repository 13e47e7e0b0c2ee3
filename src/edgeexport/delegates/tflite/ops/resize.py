"""Resize -> RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR on channels-last tensors, for the
coordinate modes TFLite implements (PyTorch's interpolate defaults among them).
"""

from __future__ import annotations

import onnx_ir as ir
from ai_edge_litert import schema_py_generated as fb

from edgeexport.delegates.tflite import layout as L
from edgeexport.delegates.tflite.context import EmitContext
from edgeexport.delegates.tflite.registry import REGISTRY


def _s(node: ir.Node, name: str, default: str) -> str:
    a = node.attributes.get(name)
    return a.as_string() if a is not None else default


def resize_mode(node: ir.Node) -> tuple[str, bool, bool] | str:
    """(TFLite op, align_corners, half_pixel_centers), or the reason it has no TFLite form."""
    mode = _s(node, "mode", "nearest")
    ctm = _s(node, "coordinate_transformation_mode", "half_pixel")
    aa = node.attributes.get("antialias")
    if aa is not None and aa.as_int():
        return "antialias"
    if mode == "linear":
        if ctm in ("half_pixel", "pytorch_half_pixel"):
            return ("RESIZE_BILINEAR", False, True)
        if ctm == "align_corners":
            return ("RESIZE_BILINEAR", True, False)
        if ctm == "asymmetric":
            return ("RESIZE_BILINEAR", False, False)
        return f"linear with coordinate_transformation_mode '{ctm}'"
    if mode == "nearest":
        nm = _s(node, "nearest_mode", "round_prefer_floor")
        if ctm == "asymmetric" and nm == "floor":
            return ("RESIZE_NEAREST_NEIGHBOR", False, False)
        if ctm == "align_corners" and nm == "round_prefer_ceil":
            return ("RESIZE_NEAREST_NEIGHBOR", True, False)
        if ctm in ("half_pixel", "pytorch_half_pixel") and nm == "round_prefer_ceil":
            return ("RESIZE_NEAREST_NEIGHBOR", False, True)
        return f"nearest with '{ctm}' coordinates and nearest_mode '{nm}'"
    return f"mode '{mode}'"


def check_resize(node: ir.Node, ctx: object) -> str | None:
    x, out = node.inputs[0], node.outputs[0]
    if x.shape is None or len(x.shape) != 4 or out.shape is None:
        return "only 4-D inputs with static shapes"
    if list(x.shape)[:2] != list(out.shape)[:2]:
        return "resizing the batch or channel axis"
    m = resize_mode(node)
    return m if isinstance(m, str) else None


@REGISTRY.op("Resize", check=check_resize,
             conditions="4-D, spatial axes only; bilinear or nearest with TFLite coordinates")
def emit_resize(node: ir.Node, ctx: EmitContext) -> None:
    op, align, half = resize_mode(node)  # type: ignore[misc]
    nhwc = L.channels_last(4)
    xin = ctx.input(node.inputs[0], nhwc)
    out = node.outputs[0]
    size = list(ctx.shape(out)[2:])
    y = ctx.output(out, nhwc)
    opt = fb.ResizeBilinearOptionsT() if op == "RESIZE_BILINEAR" else \
        fb.ResizeNearestNeighborOptionsT()
    opt.alignCorners, opt.halfPixelCenters = align, half
    ctx.fb.op(op, [xin, ctx.int32(size, f"size{size}")], [y], opt)
