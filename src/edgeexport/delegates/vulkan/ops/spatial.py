"""Resize -> ncnn Interp (nearest, bilinear, bicubic over H and W of NCHW) and Pad -> ncnn
Padding (constant, edge, reflect on the blob's innermost three axes).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.vulkan.context import EmitContext
from edgeexport.delegates.vulkan.ops._common import (attr_float, attr_str, check_all,
                                                    input_const, shape_of, static)
from edgeexport.delegates.vulkan.registry import REGISTRY

_MODES = {"nearest": 1, "linear": 2, "cubic": 3}


def _check_resize(node: ir.Node, ctx: object) -> str | None:
    i, o = shape_of(node.inputs[0]), shape_of(node.outputs[0])
    if i is None or o is None or len(i) != 4 or i[0] != 1 or i[:2] != o[:2]:
        return "only H/W resizing of an NCHW tensor with batch 1 is mapped"
    mode = attr_str(node, "mode", "nearest")
    ctm = attr_str(node, "coordinate_transformation_mode", "half_pixel")
    if mode == "nearest":
        if ctm != "asymmetric" or attr_str(node, "nearest_mode", "round_prefer_floor") != "floor":
            return "nearest resize must be asymmetric/floor (PyTorch's 'nearest')"
    elif mode in ("linear", "cubic"):
        if ctm not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
            return f"{mode} resize with {ctm} coordinates is not mapped"
        if mode == "cubic" and attr_float(node, "cubic_coeff_a", -0.75) != -0.75:
            return "cubic resize needs cubic_coeff_a = -0.75"
    else:
        return f"resize mode {mode} is not mapped"
    if node.attributes.get("antialias") is not None and int(node.attributes["antialias"].value):
        return "antialiased resize is not mapped"
    return None


@REGISTRY.op("Resize", check=check_all(static, _check_resize),
             conditions="NCHW H/W; nearest (floor) / bilinear / bicubic")
def emit_resize(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    n, c, h, w = x.shape
    oh, ow = node.outputs[0].shape[2:]
    xin = ctx.as_ncnn_shape(x, (c, h, w), node.name + "_chw")
    align = int(attr_str(node, "coordinate_transformation_mode", "") == "align_corners")
    params = {0: _MODES[attr_str(node, "mode", "nearest")], 3: int(oh), 4: int(ow), 6: align}
    ctx.emit(node, "Interp", [xin], params, kept=(1, 2, 3))


def _pads(node: ir.Node) -> np.ndarray | None:
    pads = input_const(node, 1)
    if pads is None:
        return None
    shape = shape_of(node.inputs[0])
    r = len(shape)
    axes = input_const(node, 3) if len(node.inputs) > 3 and node.inputs[3] is not None \
        else np.arange(r)
    full = np.zeros(2 * r, np.int64)
    for k, a in enumerate(axes):
        full[int(a) % r] = pads[k]
        full[int(a) % r + r] = pads[k + len(axes)]
    return full


def _check_pad(node: ir.Node, ctx: object) -> str | None:
    pads = _pads(node)
    if pads is None:
        return "pads must be constant"
    if np.any(pads < 0):
        return "negative pads (cropping) are not mapped"
    if attr_str(node, "mode", "constant") not in ("constant", "edge", "reflect"):
        return "pad mode must be constant, edge or reflect"
    if len(node.inputs) > 2 and node.inputs[2] is not None and input_const(node, 2) is None:
        return "pad value must be constant"
    shape = shape_of(node.inputs[0])
    r = len(shape)
    padded = [a for a in range(r) if pads[a] or pads[a + r]]
    if any(a < r - 3 for a in padded):
        return "only the innermost three axes can be padded"
    return None


@REGISTRY.op("Pad", check=check_all(static, _check_pad),
             conditions="constant pads on the innermost three axes")
def emit_pad(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    r = len(x.shape)
    pads = _pads(node)
    # give ncnn the innermost three axes (its c/h/w) so that front/top/left name them
    keep = tuple(range(max(0, r - 3), r)) if r >= 3 else tuple(range(r))
    if any(x.shape[a] != 1 for a in range(r) if a not in keep):
        keep = tuple(sorted(set(keep) | set(x.kept)))
    xin = ctx.as_ncnn_shape(x, tuple(x.shape[a] for a in keep), node.name + "_view")
    before = {a: int(pads[a]) for a in range(r)}
    after = {a: int(pads[a + r]) for a in range(r)}
    names = {len(keep) - 1: (2, 3), len(keep) - 2: (0, 1), len(keep) - 3: (7, 8)}
    params: dict[int, object] = {}
    for j, a in enumerate(keep):
        if j in names:
            params[names[j][0]], params[names[j][1]] = before[a], after[a]
    mode = attr_str(node, "mode", "constant")
    params[4] = {"constant": 0, "edge": 1, "reflect": 2}[mode]
    value = input_const(node, 2) if len(node.inputs) > 2 and node.inputs[2] is not None else None
    params[5] = float(value) if value is not None else 0.0
    ctx.emit(node, "Padding", [xin], params, kept=keep)
