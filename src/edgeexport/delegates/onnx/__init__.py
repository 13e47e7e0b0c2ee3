"""The onnx target: the optimized (and possibly quantized) IR saved as .onnx for onnxruntime.

Every edge-profile op maps to itself; what onnxruntime lacks is checked here, in one place.
"""

from __future__ import annotations

from typing import Any

from pathlib import Path

import onnx_ir as ir

from edgeexport import ir as eir
from edgeexport import profile
from edgeexport.delegates.base import Artifact, Target
from edgeexport.delegates.registry import OpRegistry

REGISTRY = OpRegistry("onnx")


def _identity(node: ir.Node, ctx: object) -> ir.Node:
    return node  # the node is written as it is


def _check_quant_dtype(node: ir.Node, ctx: object) -> str | None:
    dtype = node.attributes.get("output_dtype")
    if dtype is not None and ir.DataType(dtype.as_int()) in (ir.DataType.INT4, ir.DataType.UINT4):
        return "int4 QuantizeLinear needs onnxruntime >= 1.20 with opset 21"
    return None


# onnxruntime's CPU provider implements the whole edge profile at OPSET.
REGISTRY.op(*[n for n in profile.EDGE_PROFILE if n != "QuantizeLinear"])(_identity)
REGISTRY.op("QuantizeLinear", check=_check_quant_dtype)(_identity)


class OnnxTarget(Target):
    name = "onnx"
    description = "ONNX model for onnxruntime (desktop, server, ORT Mobile)"
    artifact_name = "model.onnx"
    registry = REGISTRY
    runtimes = ("onnxruntime", "reference")

    def check_lowerable(self, model: ir.Model) -> None:
        """Nothing to lower: the .onnx file holds any node (custom-domain ones of an ONNX
        source too), and onnxruntime is the judge of what runs."""

    def emit(self, model: ir.Model, out_dir: Path,
             options: Any = None) -> Artifact:
        path = Path(out_dir) / self.artifact_name
        eir.save(model, path)
        files = [path] + ([path.with_name(path.name + ".data")]
                          if path.with_name(path.name + ".data").exists() else [])
        return Artifact(self.name, path, files, "onnx")


TARGET = OnnxTarget()
