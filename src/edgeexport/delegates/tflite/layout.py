"""Layouts as permutations: a TFLite tensor holds `transpose(logical IR tensor, perm)`.

Convolutions want channels-last; every other op either follows the layout of its input (remapping
its axes) or asks for the logical layout, so transposes only appear where a layout really changes.
"""

from __future__ import annotations

from typing import Sequence

Perm = tuple[int, ...]


def identity(rank: int) -> Perm:
    return tuple(range(rank))


def channels_last(rank: int) -> Perm:
    """NCHW -> NHWC for rank 4 (NCW -> NWC for rank 3, NCDHW -> NDHWC for rank 5)."""
    return (0, *range(2, rank), 1) if rank >= 3 else identity(rank)


def is_identity(perm: Sequence[int]) -> bool:
    return all(i == p for i, p in enumerate(perm))


def inverse(perm: Sequence[int]) -> Perm:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def physical_shape(shape: Sequence[int], perm: Sequence[int]) -> list[int]:
    return [int(shape[p]) for p in perm]


def relative(src: Sequence[int], dst: Sequence[int]) -> Perm:
    """The TRANSPOSE perm that turns a tensor stored with `src` into one stored with `dst`."""
    pos = inverse(src)  # logical axis -> physical axis in src
    return tuple(pos[d] for d in dst)


def after_transpose(layout: Sequence[int], onnx_perm: Sequence[int]) -> Perm:
    """Layout of Transpose(x, onnx_perm)'s output when x is stored with `layout` and the data is
    not moved: physical axis j holds input axis layout[j], which is output axis inv(perm)[...]."""
    inv = inverse(onnx_perm)
    return tuple(inv[a] for a in layout)


def same_memory_order(shape: Sequence[int], perm: Sequence[int]) -> bool:
    """True when storing with `perm` only moves size-1 axes, so the bytes equal the logical
    tensor's and a RESHAPE (not a TRANSPOSE) changes the layout."""
    moved = [p for p in perm if shape[p] != 1]
    return moved == sorted(moved)


def physical_axis(axis: int, layout: Sequence[int]) -> int:
    """Where logical axis `axis` (may be negative) lives in a tensor stored with `layout`."""
    axis = axis % len(layout)
    return inverse(layout)[axis]


def drop_axes(layout: Sequence[int], removed: Sequence[int]) -> Perm:
    """Layout after the logical axes `removed` disappear (a reduction without keepdims)."""
    removed = set(a % len(layout) for a in removed)
    kept = [a for a in layout if a not in removed]
    order = sorted(kept)
    return tuple(order.index(a) for a in kept)
