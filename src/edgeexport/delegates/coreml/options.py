"""The coreml and metal targets' typed options (target_options.CoremlOptions) read into the
emitter's `Options`; metal differs in compute units only.
"""

from __future__ import annotations

from typing import Any

from edgeexport.delegates.coreml.context import Options
from edgeexport.errors import UsageError
from edgeexport.target_options import DEFAULT_IOS, coerce

DEFAULT_PRECISION = "fp16"


def from_options(given: Any, compute_units: str = "ALL") -> Options:
    """The emitter's Options from the target's typed options (a CoremlOptions, a dict, a CLI
    namespace or None: see edgeexport.target_options.coerce)."""
    o = coerce("coreml", given)
    bias_text = str(o.coreml_image_bias or "")
    try:
        bias = tuple(float(b) for b in bias_text.replace(" ", "").split(",") if b)
    except ValueError:
        raise UsageError(f"coreml_image_bias (--coreml-image-bias) '{bias_text}': expected "
                         "numbers separated by commas, e.g. -1,-1,-1") from None
    return Options(ios=int(o.ios or DEFAULT_IOS), precision=o.precision or DEFAULT_PRECISION,
                   compute_units=compute_units, image_input=o.coreml_image_input,
                   image_scale=float(o.coreml_image_scale), image_bias=bias,
                   color_layout=o.coreml_color_layout)
