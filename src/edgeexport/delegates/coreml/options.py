"""Command-line options of the coreml and metal targets and their reading into `Options`.

Both targets share one set of flags (--ios, --coreml-image-*); metal differs in compute units only.
"""

from __future__ import annotations

import argparse
from typing import Any

from edgeexport.delegates.coreml.context import Options
from edgeexport.errors import UsageError

IOS_VERSIONS = (15, 16, 17, 18)
DEFAULT_IOS = 16
DEFAULT_PRECISION = "fp16"


def add_options(parser: Any) -> None:
    parser.add_argument("--ios", type=int, choices=IOS_VERSIONS, default=None,
                        help=f"minimum iOS deployment target of the ML Program (default "
                             f"{DEFAULT_IOS}; int8 weights need 16, int8 activations 17)")
    parser.add_argument("--coreml-image-input", metavar="NAME",
                        help="make this N x 3 x H x W float input a CoreML image (8-bit pixels): "
                             "the model sees pixels * scale + bias")
    parser.add_argument("--coreml-image-scale", type=float, default=1.0,
                        help="image preprocessing: x * scale + bias (default 1)")
    parser.add_argument("--coreml-image-bias", default="",
                        help="image preprocessing bias, one value or one per channel in "
                             "--coreml-color-layout order (R,G,B or B,G,R)")
    parser.add_argument("--coreml-color-layout", choices=["RGB", "BGR"], default="RGB")


def from_namespace(ns: argparse.Namespace | None, compute_units: str = "ALL") -> Options:
    """Options from the CLI namespace (missing attributes take the defaults)."""
    def get(name: str, default: Any) -> Any:
        value = getattr(ns, name, None) if ns is not None else None
        return default if value is None else value

    bias_text = str(get("coreml_image_bias", "") or "")
    try:
        bias = tuple(float(b) for b in bias_text.replace(" ", "").split(",") if b)
    except ValueError:
        raise UsageError(f"--coreml-image-bias '{bias_text}': expected numbers separated by "
                         "commas, e.g. -1,-1,-1") from None
    ios = int(get("ios", DEFAULT_IOS))
    if ios not in IOS_VERSIONS:
        raise UsageError(f"--ios {ios}: choose one of {', '.join(map(str, IOS_VERSIONS))}")
    return Options(ios=ios, precision=get("precision", DEFAULT_PRECISION),
                   compute_units=compute_units, image_input=get("coreml_image_input", None),
                   image_scale=float(get("coreml_image_scale", 1.0)), image_bias=bias,
                   color_layout=get("coreml_color_layout", "RGB"))
