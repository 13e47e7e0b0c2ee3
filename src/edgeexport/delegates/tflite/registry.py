"""The op table of the TFLite format, shared by the nnapi and rpi targets.

Each op-family module under `ops/` registers its ops here, once, with the check and the emitter.
"""

from __future__ import annotations

from edgeexport.delegates.registry import OpRegistry

REGISTRY = OpRegistry("tflite")
