"""Runtimes: execute the IR or an artifact. reference (numpy), onnxruntime, and per target more.

`get(name)` imports the runtime's module lazily, so a missing optional package costs nothing
until that runtime is asked for (and then it reports itself unavailable, with the reason).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from edgeexport.runtimes.base import Runtime, Session

#: runtime name -> "module:Class"
RUNTIMES: dict[str, str] = {
    "reference": "edgeexport.runtimes.reference:ReferenceRuntime",
    "onnxruntime": "edgeexport.runtimes.onnxruntime:OnnxRuntime",
    "litert": "edgeexport.runtimes.litert:LiteRtRuntime",
    "litert-aarch64-qemu": "edgeexport.runtimes.litert_qemu:LiteRtQemuRuntime",
    "ncnn-vulkan": "edgeexport.runtimes.ncnn:NcnnVulkanRuntime",
    "ncnn-cpu": "edgeexport.runtimes.ncnn:NcnnCpuRuntime",
    "mil-interpreter": "edgeexport.runtimes.mil:MilInterpreterRuntime",
    "coreml": "edgeexport.runtimes.coreml:CoreMLRuntime",
}

__all__ = ["RUNTIMES", "Runtime", "Session", "artifact_format", "get", "runtimes_for"]


def get(name: str) -> Runtime:
    target = RUNTIMES.get(name)
    if target is None:
        raise KeyError(f"unknown runtime '{name}' (known: {', '.join(RUNTIMES)})")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)()


def artifact_format(path: str | os.PathLike[str]) -> str:
    """'onnx' | 'tflite' | 'ncnn' | 'mlpackage', judged by contents where a file has a magic."""
    p = Path(path)
    if p.is_dir():
        if (p / "Manifest.json").exists():
            return "mlpackage"
        raise ValueError(f"{p}: a directory that is not an .mlpackage")
    with open(p, "rb") as f:
        head = f.read(16)
    # by contents first; a file whose magic is damaged goes by its suffix, so the error names
    # the format the user meant (an empty .tflite is a broken .tflite, not an ONNX file)
    if head[4:8] == b"TFL3" or p.suffix == ".tflite":
        return "tflite"
    if head.startswith(b"7767517") or p.suffix == ".param":
        return "ncnn"
    if p.suffix == ".bin" and p.with_suffix(".param").exists():
        return "ncnn"
    return "onnx"


def runtimes_for(fmt: str) -> list[str]:
    """Runtime names that execute an artifact format, in order of preference."""
    names = []
    for name in RUNTIMES:
        if fmt in get(name).formats:
            names.append(name)
    return names
