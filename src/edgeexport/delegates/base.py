"""What every target provides: options, partitioning (coverage) and emission of the artifact."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport import target_options
from edgeexport.delegates.registry import OpRegistry
from edgeexport.target_options import TargetOptions


@dataclass
class Fallback:
    node: str
    op: str
    reason: str


@dataclass
class Coverage:
    """How much of the graph the target's accelerator/delegate takes (report.json `coverage`)."""

    total_ops: int
    delegated_ops: int
    partitions: int
    fallback: list[Fallback] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Artifact:
    """The files a target emitted. `path` is the main file (or folder, for .mlpackage)."""

    target: str
    path: Path
    files: list[Path]
    format: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageInput:
    """An input the artifact takes as an 8-bit image (a CoreML image input): the model as
    exported sees `pixels * scale + bias`, per channel in the image's channel order."""

    name: str
    scale: float
    #: one value per channel, in `color_layout` order (the order the planes reach the model)
    bias: tuple[float, ...]
    color_layout: str = "RGB"

    def preprocess(self, pixels: np.ndarray) -> np.ndarray:
        """The float tensor the model sees for NCHW pixel planes (what the artifact computes
        first, in float32)."""
        bias = np.asarray(self.bias, np.float32).reshape(1, -1, 1, 1)
        return pixels.astype(np.float32) * np.float32(self.scale) + bias

    def pixels_for(self, x: np.ndarray) -> np.ndarray:
        """The 8-bit image whose preprocessing is nearest to the model input `x` (exact when x
        was made from 8-bit pixels with this scale and bias)."""
        bias = np.asarray(self.bias, np.float64).reshape(1, -1, 1, 1)
        return np.clip(np.rint((x - bias) / self.scale), 0, 255).astype(np.uint8)

    def random_pixels(self, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)

    def describe(self) -> dict[str, Any]:
        """What the artifact does to the image first, for manifest.json (inputs[].coreml)."""
        return {"color_layout": self.color_layout, "scale": self.scale, "bias": list(self.bias),
                "model_input": "pixels * scale + bias, per channel in color_layout order, "
                               "as float32 NCHW"}


class Target:
    """Base class of a target. Subclasses set the class attributes and override the methods."""

    name: str = ""
    description: str = ""
    artifact_name: str = ""
    registry: OpRegistry
    #: names of runtimes (edgeexport.runtimes) that can execute this target's artifact
    runtimes: tuple[str, ...] = ()

    #: float precision when the options leave it to the target
    default_precision = "fp32"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """Target-specific command-line options, generated from the target's options dataclass
        (edgeexport.target_options)."""
        target_options.add_cli_options(parser, [self.name])

    def opts(self, options: Any = None) -> TargetOptions:
        """The target's typed options from a dataclass, a dict, a Namespace or None."""
        return target_options.coerce(self.name, options)

    def precision(self, options: Any = None) -> str:
        """The float precision of the artifact ('fp32' | 'fp16'), which picks the tolerance.
        `precision` (the common --precision flag) may be None: use the target default."""
        return self.opts(options).precision or self.default_precision

    def coverage(self, model: ir.Model, options: Any = None) -> Coverage:
        """Default: a node is delegated when the registry takes it; one partition per run."""
        fallback: list[Fallback] = []
        partitions, in_partition, delegated = 0, False, 0
        for node in model.graph:
            reason = self.registry.why_not(node, options)
            if reason is None:
                delegated += 1
                if not in_partition:
                    partitions += 1
                in_partition = True
            else:
                fallback.append(Fallback(node.name or "", node.op_type, reason))
                in_partition = False
        return Coverage(len(model.graph), delegated, partitions, fallback)

    def check_lowerable(self, model: ir.Model) -> None:
        """Fail fast: raise UnsupportedOpError for the first node no path of this target can
        lower (its op has no registration at all), right after export and before quantization
        and calibration spend minutes on a conversion that cannot end in an artifact. Checks
        that depend on attributes or quantization stay with the emitter."""
        from edgeexport.delegates.registry import supported_by
        from edgeexport.errors import UnsupportedOpError
        from edgeexport.exporter import node_source

        for node in self.lowered_nodes(model):
            if node.domain in ("", "ai.onnx") and node.op_type in self.registry:
                continue
            raise UnsupportedOpError(
                node.op_type, node.name or "", target=self.name,
                reason=self.registry.why_not(node) or "", source=node_source(node),
                supported_by=supported_by(node.op_type, besides=self.name))

    def lowered_nodes(self, model: ir.Model) -> list[ir.Node]:
        """The nodes the emitter lowers one by one (a target that fuses patterns, such as
        attention blocks, leaves out the nodes the fusion takes)."""
        return list(model.graph)

    def image_inputs(self, model: ir.Model,
                     options: Any = None) -> list[ImageInput]:
        """Inputs the artifact takes as 8-bit images instead of the model's float tensors."""
        return []

    def emit(self, model: ir.Model, out_dir: Path,
             options: Any = None) -> Artifact:
        raise NotImplementedError

    def artifact_io(self, artifact: Artifact) -> dict[str, list[dict[str, Any]]] | None:
        """The inputs and outputs as the emitted artifact declares them, read back from its
        files: {"inputs": [...], "outputs": [...]}, each {name (the IR's), shape, dtype,
        quantization (None or {scale, zero_point, axis}), axes_from_ir, and target facts}.
        None: the artifact takes the IR's own tensors (an .onnx file)."""
        return None
