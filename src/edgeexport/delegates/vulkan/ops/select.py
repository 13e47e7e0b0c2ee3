"""Where -> ncnn BinaryOps: ncnn has no select layer, so Where(c, a, b) = a * c + b * (1 - c)
with c as 0/1 floats; a constant condition folds into a mask and a constant addend.

The blend is exact for finite values (x * 1 = x, x * 0 = 0, y + 0 = y). A constant operand is
never multiplied by the mask (where(c, 0, b) is precomputed), so causal masks filled with
-inf or float32's lowest value are exact; a non-finite value in the unselected *computed*
operand turns into NaN (0 * inf), where ONNX would drop it; with a computed condition, constant
infinities are stored as the storage precision's extremes (float16's with fp16 storage: an
attention mask's -inf fill becomes -65504, which softmax still maps to 0).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgeexport.delegates.vulkan.context import EmitContext, const_array, default_kept
from edgeexport.delegates.vulkan.ops._common import check_all, static
from edgeexport.delegates.vulkan.ops.elementwise import ADD, MUL, RSUB, _SWAPPED
from edgeexport.delegates.vulkan.registry import REGISTRY


def _check_where(node: ir.Node, ctx: object) -> str | None:
    cond, a, b = node.inputs
    if all(const_array(v) is not None for v in node.inputs):
        return "all operands are constant (constant folding should have removed it)"
    for v in (a, b):
        if v.dtype is not None and v.dtype not in (ir.DataType.FLOAT, ir.DataType.FLOAT16):
            return f"Where of {v.dtype.name} values: ncnn blobs are float"
    return None


def _finite(c: np.ndarray, fp16: bool) -> np.ndarray:
    """Infinities as the largest finite values of the blob storage: fp16 storage would turn
    float32's extremes back into infinities (and inf * 0 into NaN)."""
    lim = np.finfo(np.float16 if fp16 else np.float32)
    c = np.nan_to_num(np.asarray(c, np.float32), nan=0.0, posinf=lim.max, neginf=lim.min)
    return np.asarray(np.clip(c, lim.min, lim.max), np.float32)


class _Blend:
    """Operands of one Where in the output's rank and ncnn layout."""

    def __init__(self, node: ir.Node, ctx: EmitContext) -> None:
        self.node, self.ctx = node, ctx
        self.shape = tuple(node.outputs[0].shape)
        self.kept = default_kept(self.shape)
        self.want = tuple(self.shape[a] for a in self.kept)
        self.count = 0

    def view(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        full = (1,) * (len(self.shape) - len(shape)) + tuple(shape)
        return tuple(full[a] for a in self.kept)

    def operand(self, v: ir.Value | np.ndarray) -> tuple[str, tuple[int, ...]]:
        """A blob name and its view for a runtime value or a constant array."""
        if isinstance(v, np.ndarray):
            view = self.view(v.shape)
            return self.ctx.constant_blob(f"{self.node.name}_c", v.astype(np.float32), view), view
        view = self.view(tuple(v.shape))
        blob = self.ctx.as_ncnn_shape(self.ctx.blob(v), view, f"{self.node.name}_in")
        return blob, view

    def binary(self, op: int, x: tuple[str, tuple[int, ...]], y: tuple[str, tuple[int, ...]],
               last: bool = False) -> tuple[str, tuple[int, ...]]:
        if x[1] != self.want and y[1] == self.want:  # the broadcast operand goes second
            x, y, op = y, x, _SWAPPED[op]
        view = tuple(max(p, q) for p, q in zip(x[1], y[1]))
        if last:
            self.ctx.emit(self.node, "BinaryOp", [x[0], y[0]], {0: op}, kept=self.kept)
            return self.ctx.blobs[self.node.outputs[0].name].name, view
        self.count += 1
        name = self.ctx.unique(f"{self.node.outputs[0].name}_w{self.count}")
        self.ctx.add("BinaryOp", f"{self.node.name}_w{self.count}", [x[0], y[0]], [name],
                     {0: op})
        return name, view


@REGISTRY.op("Where", check=check_all(static, _check_where),
             conditions="float values (a blend of BinaryOps; see ops/select.py)")
def emit_where(node: ir.Node, ctx: EmitContext) -> None:
    cond, a, b = node.inputs
    bl = _Blend(node, ctx)
    c, ca, cb = const_array(cond), const_array(a), const_array(b)
    if c is not None:
        mask = c.astype(bool)
        if ca is None and cb is None:  # a * m + b * (1 - m)
            am = bl.binary(MUL, bl.operand(a), bl.operand(mask.astype(np.float32)))
            bm = bl.binary(MUL, bl.operand(b), bl.operand((~mask).astype(np.float32)))
            bl.binary(ADD, am, bm, last=True)
            return
        # one operand constant: runtime * its mask + where(c, a, b) with the runtime one zeroed
        keep, v = (mask, a) if ca is None else (~mask, b)
        rest = np.where(mask, 0 if ca is None else ca, 0 if cb is None else cb)
        vm = bl.binary(MUL, bl.operand(v), bl.operand(keep.astype(np.float32)))
        bl.binary(ADD, vm, bl.operand(np.asarray(rest, np.float32)), last=True)
        return
    # runtime condition: ncnn holds it as 0.0 / 1.0
    cv = bl.operand(cond)
    inv = ctx.unique(f"{node.outputs[0].name}_not")
    ctx.add("BinaryOp", f"{node.name}_not", [cv[0]], [inv], {0: RSUB, 1: 1, 2: 1.0})
    # constants are multiplied by the mask here: infinities become float32's extremes
    am = bl.binary(MUL, bl.operand(a if ca is None else _finite(ca, ctx.fp16)), cv)
    bm = bl.binary(MUL, bl.operand(b if cb is None else _finite(cb, ctx.fp16)), (inv, cv[1]))
    bl.binary(ADD, am, bm, last=True)
