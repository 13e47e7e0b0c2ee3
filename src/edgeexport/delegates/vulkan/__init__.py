"""The vulkan target: ncnn `.param` + `.bin` emitted from the IR, for ncnn's Vulkan backend on
Android GPUs (and its CPU backend), fp16 weight storage by default.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import onnx_ir as ir

from edgeexport.delegates.base import Artifact, Coverage, Target
from edgeexport.delegates.vulkan.emit import emit_model
from edgeexport.delegates.vulkan.quant import int8_notes
from edgeexport.delegates.vulkan.registry import REGISTRY, load_ops

load_ops()


class VulkanTarget(Target):
    name = "vulkan"
    description = "ncnn model (.param + .bin) for Vulkan GPUs (Android) and CPUs"
    artifact_name = "model.param"
    registry = REGISTRY
    runtimes = ("ncnn-vulkan", "ncnn-cpu")

    def precision(self, options: argparse.Namespace | None = None) -> str:
        return getattr(options, "precision", None) or "fp16"

    def coverage(self, model: ir.Model, options: argparse.Namespace | None = None) -> Coverage:
        cov = super().coverage(model, options)
        if cov.fallback:
            cov.notes.append("ncnn runs the whole graph: any node it cannot take fails the "
                             "conversion (no CPU fallback outside ncnn)")
        cov.notes.extend(int8_notes(model, REGISTRY))
        return cov

    def emit(self, model: ir.Model, out_dir: Path,
             options: argparse.Namespace | None = None) -> Artifact:
        precision = self.precision(options)
        files = emit_model(model, Path(out_dir), self.artifact_name, precision)
        return Artifact(self.name, files[0], files, "ncnn", {"precision": precision,
                                                            "weights": files[1].name})


TARGET = VulkanTarget()
