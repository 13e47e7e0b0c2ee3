"""Sliding-window geometry shared by Conv, ConvTranspose and the pools: output sizes, auto_pad,
and for each kernel tap the output region it reaches and the strided input slice it reads.

Iterating over taps (9 for a 3x3 kernel), each one a vectorized slice over batch, channels and
space, is how the window ops stay loop-free over elements without padded copies of the input.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np


@dataclass(frozen=True)
class Window:
    """Geometry of one window op on one input shape (spatial axes only)."""

    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]

    def taps(self) -> Iterator[tuple[tuple[int, ...], tuple[slice, ...], tuple[slice, ...]]]:
        """(tap, output region, input slice) for every tap that reads at least one input element.

        Output position o reads input o * stride + tap * dilation - pad_begin along each axis.
        """
        for tap in itertools.product(*(range(k) for k in self.kernel)):
            ranges = [_tap_range(n_in, n_out, s, t * d - p) for n_in, n_out, s, t, d, p in zip(
                self.inputs, self.outputs, self.strides, tap, self.dilations, self.pads_begin)]
            if all(r is not None for r in ranges):
                yield tap, tuple(r[0] for r in ranges), tuple(r[1] for r in ranges)

    def valid_counts(self, include_pad: bool) -> list[np.ndarray]:
        """Per axis, per output position: how many taps land inside the input (or, with
        include_pad, inside input plus explicit pads). The count over all axes is the product."""
        counts = []
        for n_in, n_out, s, k, d, pb, pe in zip(self.inputs, self.outputs, self.strides,
                                                 self.kernel, self.dilations, self.pads_begin,
                                                 self.pads_end):
            lo, hi = (-pb, n_in + pe) if include_pad else (0, n_in)
            pos = np.arange(n_out)[:, None] * s + np.arange(k)[None, :] * d - pb
            counts.append(((pos >= lo) & (pos < hi)).sum(axis=1))
        return counts


def _tap_range(n_in: int, n_out: int, stride: int, offset: int) -> tuple[slice, slice] | None:
    first = max(0, -(offset // stride))  # ceil(-offset / stride)
    stop = min(n_out, (n_in - 1 - offset) // stride + 1)
    if stop <= first:
        return None
    start_in = first * stride + offset
    return slice(first, stop), slice(start_in, start_in + (stop - first - 1) * stride + 1, stride)


def window(inputs: Sequence[int], kernel: Sequence[int], *, strides: Sequence[int] | None,
           dilations: Sequence[int] | None, pads: Sequence[int] | None, auto_pad: str,
           ceil_mode: bool = False) -> Window:
    """Output size and padding of a Conv or pool, following the ONNX spec (and, for ceil_mode,
    the rule that the last window must start inside the input or the begin padding)."""
    rank = len(inputs)
    strides = tuple(strides or (1,) * rank)
    dilations = tuple(dilations or (1,) * rank)
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        outputs = [math.ceil(n / s) for n, s in zip(inputs, strides)]
        total = [max(0, (o - 1) * s + e - n) for o, s, e, n in zip(outputs, strides, extent, inputs)]
        # the odd pixel goes at the end for SAME_UPPER, at the beginning for SAME_LOWER
        begin = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total]
        end = [t - b for t, b in zip(total, begin)]
    elif auto_pad in ("NOTSET", "VALID", ""):
        begin = list(pads[:rank]) if pads and auto_pad != "VALID" else [0] * rank
        end = list(pads[rank:]) if pads and auto_pad != "VALID" else [0] * rank
        rounding = math.ceil if ceil_mode else math.floor
        outputs = [rounding((n + b + e - x) / s) + 1
                   for n, b, e, x, s in zip(inputs, begin, end, extent, strides)]
        if ceil_mode:
            outputs = [o - 1 if (o - 1) * s >= n + b else o
                       for o, s, n, b in zip(outputs, strides, inputs, begin)]
    else:
        raise ValueError(f"auto_pad {auto_pad!r} is not NOTSET, SAME_UPPER, SAME_LOWER or VALID")
    return Window(tuple(inputs), tuple(max(o, 0) for o in outputs), tuple(kernel), strides,
                  dilations, tuple(begin), tuple(end))
