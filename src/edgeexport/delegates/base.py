"""What every target provides: options, partitioning (coverage) and emission of the artifact."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import onnx_ir as ir

from edgeexport.delegates.registry import OpRegistry


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


class Target:
    """Base class of a target. Subclasses set the class attributes and override the methods."""

    name: str = ""
    description: str = ""
    artifact_name: str = ""
    registry: OpRegistry
    #: names of runtimes (edgeexport.runtimes) that can execute this target's artifact
    runtimes: tuple[str, ...] = ()

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """Target-specific command-line options (the CLI adds those of every target)."""

    def precision(self, options: argparse.Namespace | None = None) -> str:
        """The float precision of the artifact ('fp32' | 'fp16'), which picks the tolerance.
        `options.precision` (the common --precision flag) may be None: use the target default."""
        return getattr(options, "precision", None) or "fp32"

    def coverage(self, model: ir.Model, options: argparse.Namespace | None = None) -> Coverage:
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

    def emit(self, model: ir.Model, out_dir: Path,
             options: argparse.Namespace | None = None) -> Artifact:
        raise NotImplementedError

    def artifact_io(self, artifact: Artifact) -> dict[str, list[dict[str, Any]]] | None:
        """The inputs and outputs as the emitted artifact declares them, read back from its
        files: {"inputs": [...], "outputs": [...]}, each {name (the IR's), shape, dtype,
        quantization (None or {scale, zero_point, axis}), axes_from_ir, and target facts}.
        None: the artifact takes the IR's own tensors (an .onnx file)."""
        return None
