"""Clip-aware cross-layer scaling (after Nagel et al. 2019, "Data-free quantization"): a
float-graph rewrite, exact on the calibration data, that makes small channels of a ReLU/ReLU6
output fill the tensor's per-tensor int8 range.

A link is a Conv whose only reader is a Relu or Clip(0, M) whose readers all absorb a positive
per-input-channel factor: a depthwise Conv (multiplier 1), a Conv (group 1), or a spatial
ReduceMean -> Reshape/Flatten -> Gemm. Output channel c of the Conv (weights and bias) is
multiplied by s_c >= 1 and the readers' input channel c divided by it. Relu commutes with any
positive factor; Clip(0, M) only while s_c x (channel c's largest value) <= M, so s_c comes
from the channel maxima observed on the calibration data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import onnx_ir as ir

from edgeexport.ir import initializer_array
from edgeexport.quantize.rewrite import Builder

#: no channel is scaled by more than this (its readers' weights shrink by as much)
MAX_SCALE = 32.0
#: ... and no more than this when a full Conv/Gemm reads it: a depthwise reader's weights are
#: quantized per channel, so 1/s costs it nothing, but a full reader shares one weight scale
#: per output over all input channels, and a channel whose weights shrink by s loses as many
#: of its weight levels (MobileNetV2 on the photos: 2 keeps every top-1 with min cosine 0.9953;
#: 3 and 4 reach 0.9956-0.9964 but flip the near-tie photos; 8 gives 0.9947, 32 0.9923)
MAX_SCALE_FULL_READER = 2.0
#: a Clip(0, M) channel is scaled to at most this fraction of M on the calibration data
HEADROOM = 0.5


@dataclass
class Link:
    producer: ir.Node  # Conv with constant weights (and bias)
    activation: ir.Node  # Relu or Clip(0, bound)
    bound: float  # Clip's max; inf for Relu
    readers: list[tuple[ir.Node, str]]  # (node, "depthwise" | "conv" | "gemm")
    channels: int

    @property
    def value(self) -> ir.Value:
        """The activation's output, whose per-channel maxima choose the factors."""
        return self.activation.outputs[0]


def _const(node: ir.Node, idx: int) -> np.ndarray | None:
    if idx >= len(node.inputs) or node.inputs[idx] is None:
        return None
    return initializer_array(node.inputs[idx])


def _activation_bound(node: ir.Node) -> float | None:
    """Relu -> inf; Clip(0, M) with constant bounds -> M; anything else None."""
    if node.op_type == "Relu":
        return float("inf")
    if node.op_type != "Clip":
        return None
    lo, hi = _const(node, 1), _const(node, 2)
    if (len(node.inputs) > 1 and node.inputs[1] is not None and lo is None) or \
            (len(node.inputs) > 2 and node.inputs[2] is not None and hi is None):
        return None
    if lo is None or float(lo) != 0.0:
        return None  # a negative floor (or none) would not commute with the factor
    return float("inf") if hi is None else float(hi)


def _conv_ok(node: ir.Node) -> bool:
    w = _const(node, 1)
    bias_ok = len(node.inputs) < 3 or node.inputs[2] is None or _const(node, 2) is not None
    return node.op_type == "Conv" and w is not None and w.ndim >= 3 and bias_ok


def _reader_kind(node: ir.Node, idx: int, channels: int) -> tuple[ir.Node, str] | None:
    if idx != 0:
        return None
    if node.op_type == "Conv" and _conv_ok(node):
        w = _const(node, 1)
        group = node.attributes.get_int("group", 1)
        if group == 1 and w.shape[1] == channels:
            return node, "conv"
        if group == channels and w.shape[0] == channels and w.shape[1] == 1:
            return node, "depthwise"
        return None
    if node.op_type == "ReduceMean":
        # spatial mean, then [N, C, 1, 1] -> [N, C], then a Gemm reading the channels
        axes = node.attributes.get_ints("axes", None)
        if axes is None:
            arr = _const(node, 1)
            axes = None if arr is None else [int(a) for a in arr.ravel()]
        x = node.inputs[0]
        rank = len(x.shape) if x is not None and x.shape is not None else 0
        if rank < 3 or not axes or any(a % rank in (0, 1) for a in axes) or \
                node.attributes.get_int("keepdims", 1) != 1:
            return None
        uses = node.outputs[0].uses()
        if len(uses) != 1 or uses[0].node.op_type not in ("Reshape", "Flatten"):
            return None
        flat = uses[0].node.outputs[0]
        if flat.shape is None or len(flat.shape) != 2 or flat.shape[1] != channels:
            return None
        gemm_uses = flat.uses()
        if len(gemm_uses) != 1 or gemm_uses[0].idx != 0:
            return None
        gemm = gemm_uses[0].node
        if gemm.op_type != "Gemm" or gemm.attributes.get_int("transA", 0) or \
                _const(gemm, 1) is None:
            return None
        w = _const(gemm, 1)
        if w.ndim != 2 or w.shape[1 if gemm.attributes.get_int("transB", 0) else 0] != channels:
            return None
        return gemm, "gemm"
    return None


def find_links(model: ir.Model) -> list[Link]:
    graph = model.graph
    outputs = {id(v) for v in graph.outputs}
    links = []
    for node in graph:
        if not _conv_ok(node) or len(node.outputs) != 1:
            continue
        out = node.outputs[0]
        uses = out.uses()
        if len(uses) != 1 or id(out) in outputs or uses[0].idx != 0:
            continue
        act = uses[0].node
        bound = _activation_bound(act)
        if bound is None or id(act.outputs[0]) in outputs:
            continue
        channels = _const(node, 1).shape[0]
        readers = [_reader_kind(u.node, u.idx, channels) for u in act.outputs[0].uses()]
        if not readers or any(r is None for r in readers):
            continue
        links.append(Link(node, act, bound, readers, channels))
    return links


def factors(link: Link, channel_max: np.ndarray, max_scale: float = MAX_SCALE) -> np.ndarray:
    """s_c >= 1 bringing each channel's maximum up to the tensor's, never past HEADROOM x the
    Clip bound (so data a little beyond the calibration set stays exact; channels that reach
    the bound keep 1), never beyond `max_scale`, and never beyond MAX_SCALE_FULL_READER when a
    full Conv/Gemm reads the channels."""
    m = np.asarray(channel_max, np.float64)
    top = float(m.max()) if m.size else 0.0
    if not top > 0:
        return np.ones(link.channels)
    s = np.where(m > 0, top / np.maximum(m, 1e-30), 1.0)
    if np.isfinite(link.bound):
        s = np.minimum(s, np.where(m > 0, HEADROOM * link.bound / np.maximum(m, 1e-30), 1.0))
    if any(kind != "depthwise" for _, kind in link.readers):
        max_scale = min(max_scale, MAX_SCALE_FULL_READER)
    return np.clip(s, 1.0, max_scale)


def _set_const(node: ir.Node, idx: int, arr: np.ndarray) -> None:
    """Replace a constant input in place, or with a new initializer when it is shared."""
    old = node.inputs[idx]
    arr = arr.astype(initializer_array(old).dtype)
    if len(old.uses()) == 1 and not old.is_graph_input() and old.const_value is not None:
        old.const_value = ir.tensor(arr, name=old.name)
        return
    node.replace_input_with(idx, Builder(node.graph).const(f"{old.name}_scaled", arr))


def scale_link(link: Link, s: np.ndarray) -> None:
    """Channel c of the link's activation becomes s_c times larger; readers undo it."""
    s = np.asarray(s, np.float64)
    p = link.producer
    w = initializer_array(p.inputs[1]).astype(np.float64)
    _set_const(p, 1, w * s.reshape(-1, *[1] * (w.ndim - 1)))
    b = _const(p, 2)
    if b is not None:
        _set_const(p, 2, b.astype(np.float64) * s)
    for node, kind in link.readers:
        w = initializer_array(node.inputs[1]).astype(np.float64)
        if kind == "depthwise":
            w = w / s.reshape(-1, *[1] * (w.ndim - 1))
        elif kind == "conv":
            w = w / s.reshape(1, -1, *[1] * (w.ndim - 2))
        else:  # gemm: input channel is axis 1 of B^T, axis 0 of B
            w = w / (s[None, :] if node.attributes.get_int("transB", 0) else s[:, None])
        _set_const(node, 1, w)


def channel_maxima(model: ir.Model, samples: list[dict[str, np.ndarray]], names: list[str]
                   ) -> dict[str, np.ndarray]:
    """Each named value's largest value per axis-1 channel over the samples."""
    from edgeexport.quantize.observe import run_observed

    seen: dict[str, np.ndarray] = {}

    def visit(outs: dict[str, np.ndarray]) -> None:
        for n, a in outs.items():
            m = a.max(axis=tuple(i for i in range(a.ndim) if i != 1))
            seen[n] = m if n not in seen else np.maximum(seen[n], m)

    run_observed(model, samples, names, visit)
    return seen


def apply(model: ir.Model, samples: list[dict[str, np.ndarray]],
          max_scale: float = MAX_SCALE,
          maxima: Callable[[ir.Model, list, list[str]], dict] = channel_maxima,
          applied: dict[str, np.ndarray] | None = None) -> dict:
    """Scale every link of `model` in place (exact in float on `samples`). Returns counts;
    `applied` receives activation value name -> its factors. One pass over `samples`."""
    links = find_links(model)
    if not links:
        return {"links": 0, "channels_scaled": 0}
    seen = maxima(model, samples, [link.value.name for link in links])
    scaled = channels = 0
    largest = 1.0
    for link in links:
        s = factors(link, seen[link.value.name], max_scale)
        if np.allclose(s, 1.0):
            continue
        scale_link(link, s)
        if applied is not None:
            applied[link.value.name] = s
        scaled += 1
        channels += int(np.sum(s > 1.0))
        largest = max(largest, float(s.max()))
    return {"links": scaled, "channels_scaled": channels, "max_factor": round(largest, 2)}


__all__ = ["Link", "apply", "channel_maxima", "factors", "find_links", "scale_link"]
