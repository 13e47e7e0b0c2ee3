"""The coreml target: the IR emitted as a CoreML ML Program (.mlpackage) with coremltools' MIL
Builder; parity is measured here by executing the MIL program (runtimes.mil).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport import ir as eir
from edgeexport.delegates.base import Artifact, Coverage, ImageInput, Target
from edgeexport.delegates.coreml import ops  # noqa: F401  (registers the emitters)
from edgeexport.delegates.coreml import options as opts
from edgeexport.delegates.coreml.context import REGISTRY, Options, mil_name

__all__ = ["REGISTRY", "TARGET", "CoreMLTarget", "emit_mlpackage", "image_input"]


class CoreMLTarget(Target):
    name = "coreml"
    description = "CoreML ML Program (.mlpackage) for iOS/macOS: CPU, GPU and Neural Engine"
    artifact_name = "model.mlpackage"
    registry = REGISTRY
    runtimes = ("mil-interpreter", "coreml")
    #: coremltools.ComputeUnit name the app should load the model with
    compute_units = "ALL"

    default_precision = opts.DEFAULT_PRECISION

    def options(self, options: Any) -> Options:
        return opts.from_options(options, self.compute_units)

    def coverage(self, model: ir.Model, options: Any = None) -> Coverage:
        cov = super().coverage(model, options)
        o = self.options(options)
        cov.notes.append(f"ML Program for iOS {o.ios}+, {o.precision}, compute units "
                         f"{o.compute_units}")
        if o.ios < 17 and any(n.op_type == "QuantizeLinear" for n in model.graph):
            cov.notes.append(f"iOS {o.ios} has no activation quantization: Q -> DQ pairs on "
                             "activations become clips to their range (int8 weights, float "
                             "activations); --ios 17 keeps W8A8")
        if cov.fallback:
            cov.notes.append("CoreML has no CPU fallback outside the program: every node must map")
        return cov

    def image_inputs(self, model: ir.Model,
                     options: Any = None) -> list[ImageInput]:
        image = image_input(model, self.options(options))
        return [image] if image is not None else []

    def emit(self, model: ir.Model, out_dir: Path,
             options: Any = None) -> Artifact:
        o = self.options(options)
        path = Path(out_dir) / self.artifact_name
        io_names = emit_mlpackage(model, path, o, target=self.name)
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return Artifact(self.name, path, [path], "mlpackage", extra={
            "compute_units": o.compute_units, "ios": o.ios, "precision": o.precision,
            "io_names": io_names, "files": [f.relative_to(path).as_posix() for f in files]})

    def artifact_io(self, artifact: Artifact) -> dict[str, list[dict[str, Any]]]:
        from edgeexport.delegates.coreml.package import io_signature

        return io_signature(artifact.path, artifact.extra.get("io_names", {}))


def emit_mlpackage(model: ir.Model, path: Path, o: Options, *, target: str = "coreml"
                   ) -> dict[str, str]:
    """Build the MIL program of `model` and save it as the .mlpackage `path`."""
    from edgeexport.delegates.coreml.builder import build_program
    from edgeexport.delegates.coreml.package import save_mlpackage

    input_types = _image_input_types(model, o)  # bad flags fail before the work
    prog, io_names = build_program(model, o)
    metadata = {
        "com.edgeexport.target": target,
        "com.edgeexport.compute_units": o.compute_units,
        "com.edgeexport.precision": o.precision,
        "com.edgeexport.ios": str(o.ios),
        # MIL names that differ from the IR's (sanitized) mapped back for runtimes and apps
        "com.edgeexport.io_names": json.dumps(io_names, sort_keys=True),
        "com.edgeexport.ir_sha256": _ir_hash(model),
    }
    save_mlpackage(prog, path, ios=o.ios, metadata=metadata, input_types=input_types)
    return io_names


def _ir_hash(model: ir.Model) -> str:
    import hashlib

    return hashlib.sha256(eir.to_bytes(model)).hexdigest()


def image_input(model: ir.Model, o: Options) -> ImageInput | None:
    """The --coreml-image-input as an ImageInput, its flags checked against the model."""
    if not o.image_input:
        return None
    from edgeexport.errors import UsageError

    graph = model.graph
    inputs = {v.name: v for v in graph.inputs if v.name not in graph.initializers}
    v = inputs.get(o.image_input)
    if v is None:
        raise UsageError(f"coreml_image_input (--coreml-image-input) '{o.image_input}' is not "
                         f"an input of the model (inputs: {', '.join(inputs)})")
    shape = list(v.shape or ())
    if len(shape) != 4 or shape[1] != 3:
        raise UsageError(f"coreml_image_input (--coreml-image-input) '{v.name}': an image "
                         f"input must be N x 3 x H x W, got {shape}")
    bias = list(o.image_bias) or [0.0]
    if len(bias) not in (1, 3):
        raise UsageError(f"coreml_image_bias (--coreml-image-bias): give one value or three "
                         f"(one per channel), not {len(bias)}")
    return ImageInput(v.name, o.image_scale, tuple(bias * 3 if len(bias) == 1 else bias),
                      o.color_layout)


def _image_input_types(model: ir.Model, o: Options) -> list[Any] | None:
    image = image_input(model, o)
    if image is None:
        return None
    import coremltools as ct

    graph = model.graph
    types = []
    for v in graph.inputs:
        if v.name in graph.initializers:
            continue
        shape = tuple(v.shape)
        if v.name != image.name:
            integer = v.dtype in (ir.DataType.INT32, ir.DataType.INT64)
            types.append(ct.TensorType(name=mil_name(v.name), shape=shape,
                                       dtype=np.int32 if integer else np.float32))
            continue
        types.append(ct.ImageType(name=mil_name(v.name), shape=shape, scale=image.scale,
                                  channel_first=True, bias=list(image.bias),
                                  color_layout=getattr(ct.colorlayout, image.color_layout)))
    return types


TARGET = CoreMLTarget()
