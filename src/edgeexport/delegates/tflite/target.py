"""What the nnapi and rpi targets share: precision from the options, emission to model.tflite."""

from __future__ import annotations

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

    def precision(self, options: Any = None) -> str:
        o = self.opts(options)
        return "fp16" if o.quantize == "fp16" else o.precision or "fp32"

    def emit_bytes(self, model: ir.Model, options: Any = None) -> Emitted:
        options = self.opts(options)
        return emit_model(model, self.precision(options), options, target=self.name,
                          metadata=self.metadata(options))

    def emit(self, model: ir.Model, out_dir: Path,
             options: Any = None) -> Artifact:
        emitted = self.emit_bytes(model, options)
        io.check_int8_io(io_tensors(emitted.data), self.opts(options))
        path = Path(out_dir) / self.artifact_name
        eir.write_atomic(path, emitted.data)
        ops = dict(sorted(Counter(emitted.ops).items()))
        return Artifact(self.name, path, [path], "tflite",
                        {"tflite_ops": ops, "precision": self.precision(options),
                         **self.extra(options)})

    def artifact_io(self, artifact: Artifact) -> dict[str, list[dict[str, Any]]]:
        return io_tensors(artifact.path.read_bytes())

    def extra(self, options: Any) -> dict:
        return {}

    def metadata(self, options: Any) -> dict[str, bytes]:
        """Target facts stored in the artifact (the runtimes read them)."""
        return {}
