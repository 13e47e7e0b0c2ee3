"""What the nnapi and rpi targets share: precision from the options, emission to model.tflite."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

import onnx_ir as ir

from edgeexport import ir as eir
from edgeexport.delegates.base import Artifact, Target
from edgeexport.delegates.tflite import io
from edgeexport.delegates.tflite.emit import Emitted, emit_model
from edgeexport.delegates.tflite.registry import REGISTRY
from edgeexport.delegates.tflite.signature import io_tensors


class TfliteTarget(Target):
    artifact_name = "model.tflite"
    registry = REGISTRY

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        io.add_io_options(parser)

    def precision(self, options: argparse.Namespace | None = None) -> str:
        if getattr(options, "quantize", None) == "fp16":
            return "fp16"
        return getattr(options, "precision", None) or "fp32"

    def emit_bytes(self, model: ir.Model, options: argparse.Namespace | None = None) -> Emitted:
        return emit_model(model, self.precision(options), options, target=self.name,
                          metadata=self.metadata(options))

    def emit(self, model: ir.Model, out_dir: Path,
             options: argparse.Namespace | None = None) -> Artifact:
        emitted = self.emit_bytes(model, options)
        io.check_int8_io(io_tensors(emitted.data), options)
        path = Path(out_dir) / self.artifact_name
        eir.write_atomic(path, emitted.data)
        ops = dict(sorted(Counter(emitted.ops).items()))
        return Artifact(self.name, path, [path], "tflite",
                        {"tflite_ops": ops, "precision": self.precision(options),
                         **self.extra(options)})

    def artifact_io(self, artifact: Artifact) -> dict[str, list[dict[str, Any]]]:
        return io_tensors(artifact.path.read_bytes())

    def extra(self, options: argparse.Namespace | None) -> dict:
        return {}

    def metadata(self, options: argparse.Namespace | None) -> dict[str, bytes]:
        """Target facts stored in the artifact (the runtimes read them)."""
        return {}
