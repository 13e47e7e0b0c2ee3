"""Element rearrangements -> ncnn Tile (Tile, and Expand as a tile of the broadcast axes),
PixelShuffle (DepthToSpace) and Reorg (SpaceToDepth).
"""

from __future__ import annotations

import onnx_ir as ir

from edgeexport.delegates.vulkan.context import Blob, EmitContext, default_kept
from edgeexport.delegates.vulkan.ops._common import (attr_int, attr_str, check_all, input_const,
                                                    shape_of, static)
from edgeexport.delegates.vulkan.registry import REGISTRY


def _check_const_input(node: ir.Node, ctx: object) -> str | None:
    return None if input_const(node, 1) is not None else f"{node.op_type} needs a constant shape"


def _tile(node: ir.Node, ctx: EmitContext, x: Blob, padded: tuple[int, ...]) -> None:
    """Tile a tensor (viewed with the output's rank) up to the output's shape."""
    out_shape = tuple(node.outputs[0].shape)
    kept = default_kept(out_shape)
    view = tuple(padded[a] for a in kept)
    name = ctx.as_ncnn_shape(x, view, node.name + "_view")
    repeats = [out_shape[a] // padded[a] for a in kept]
    if all(r == 1 for r in repeats):
        ctx.reshaped_as(node.outputs[0], Blob(name, kept, out_shape))
        return
    ctx.emit(node, "Tile", [name], {2: repeats}, kept=kept)


@REGISTRY.op("Tile", check=check_all(static, _check_const_input), conditions="constant repeats")
def emit_tile(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    _tile(node, ctx, x, x.shape)


@REGISTRY.op("Expand", check=check_all(static, _check_const_input), conditions="constant shape")
def emit_expand(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    r = len(node.outputs[0].shape)
    _tile(node, ctx, x, (1,) * (r - len(x.shape)) + tuple(x.shape))


def _check_nchw(node: ir.Node, ctx: object) -> str | None:
    shape = shape_of(node.inputs[0])
    if shape is None or len(shape) != 4 or shape[0] != 1:
        return "only NCHW input with batch 1 is mapped"
    return None


@REGISTRY.op("DepthToSpace", "SpaceToDepth", check=check_all(static, _check_nchw),
             conditions="NCHW, batch 1")
def emit_depth_space(node: ir.Node, ctx: EmitContext) -> None:
    x = ctx.blob(node.inputs[0])
    xin = ctx.as_ncnn_shape(x, tuple(x.shape[1:]), node.name + "_chw")
    block = attr_int(node, "blocksize", 1)
    if node.op_type == "DepthToSpace":
        # ncnn mode 0 takes channels as (outc, bh, bw) = ONNX CRD; mode 1 (bh, bw, outc) = DCR
        mode = 0 if attr_str(node, "mode", "DCR") == "CRD" else 1
        ctx.emit(node, "PixelShuffle", [xin], {0: block, 1: mode}, kept=(1, 2, 3))
    else:  # ONNX SpaceToDepth orders channels (bh, bw, c): ncnn Reorg mode 1
        ctx.emit(node, "Reorg", [xin], {0: block, 1: 1}, kept=(1, 2, 3))
