"""The vulkan target: ncnn `.param` + `.bin` emitted from the IR, for ncnn's Vulkan backend on
Android GPUs (and its CPU backend), fp16 weight storage by default.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx_ir as ir

from edgeexport.delegates.base import Artifact, Coverage, Target
from edgeexport.delegates.vulkan.emit import emit_model
from edgeexport.delegates.vulkan.quant import int8_notes
from edgeexport.delegates.vulkan.registry import REGISTRY, load_ops

load_ops()

#: ncnn Mat extents by dims, innermost first (a blob of shape (c, h, w) is w, h, c)
_MAT_AXES = {1: ("w",), 2: ("w", "h"), 3: ("w", "h", "c"), 4: ("w", "h", "d", "c")}


class VulkanTarget(Target):
    name = "vulkan"
    description = "ncnn model (.param + .bin) for Vulkan GPUs (Android) and CPUs"
    artifact_name = "model.param"
    registry = REGISTRY
    runtimes = ("ncnn-vulkan", "ncnn-cpu")

    default_precision = "fp16"

    def coverage(self, model: ir.Model, options: Any = None) -> Coverage:
        cov = super().coverage(model, options)
        if cov.fallback:
            cov.notes.append("ncnn runs the whole graph: any node it cannot take fails the "
                             "conversion (no CPU fallback outside ncnn)")
        cov.notes.extend(int8_notes(model, REGISTRY))
        return cov

    def lowered_nodes(self, model: ir.Model) -> list[ir.Node]:
        from edgeexport.delegates.vulkan.ops import attention

        fused = {id(n) for att in attention.find(model.graph) for n in att.nodes}
        return [n for n in model.graph if id(n) not in fused]

    def emit(self, model: ir.Model, out_dir: Path,
             options: Any = None) -> Artifact:
        precision = self.precision(options)
        files = emit_model(model, Path(out_dir), self.artifact_name, precision)
        return Artifact(self.name, files[0], files, "ncnn", {"precision": precision,
                                                            "weights": files[1].name,
                                                            "io": files[2].name})

    def artifact_io(self, artifact: Artifact) -> dict[str, list[dict[str, Any]]]:
        """From model.io.json: each blob's ncnn Mat (w, h, d, c); the bytes are the IR tensor's
        without its batch axis of 1, in the same order (ncnn pads each channel, not the data)."""
        desc = json.loads((artifact.path.parent / artifact.extra["io"]).read_text())

        def entry(d: dict[str, Any]) -> dict[str, Any]:
            shape = list(d.get("ncnn_shape") or d["shape"][1:])
            mat = dict(zip(_MAT_AXES[len(shape)], reversed(shape)))
            return {"name": d["name"], "shape": list(d["shape"]), "dtype": d["dtype"],
                    "quantization": None, "axes_from_ir": list(range(len(d["shape"]))),
                    "ncnn": {"blob": d["blob"], "dims": len(shape), **mat,
                             "feed": d.get("feed", "float32")}}

        return {"inputs": [entry(d) for d in desc["inputs"]],
                "outputs": [entry(d) for d in desc["outputs"]]}


TARGET = VulkanTarget()
