"""onnxruntime: executes .onnx artifacts (and the IR) on its CPU execution provider."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgeexport.ir import check_external_data
from edgeexport.runtimes.base import Runtime, Session


class OrtSession(Session):
    def __init__(self, path: Path, threads: int | None = None, optimize: bool = True) -> None:
        import onnxruntime as ort

        check_external_data(path)  # onnxruntime reads external data wherever it points
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        if not optimize:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        self._path, self._opts = path, opts
        self._session = ort.InferenceSession(os.fspath(path), opts,
                                             providers=["CPUExecutionProvider"])
        self.device = "cpu"
        self.details = {"provider": "CPUExecutionProvider", "onnxruntime": ort.__version__}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self._session.get_outputs()]
        return dict(zip(names, self._session.run(names, feeds)))

    def run_all(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every intermediate value, by making each one a graph output of a copy of the model."""
        import onnx
        import onnxruntime as ort

        model = onnx.load(os.fspath(self._path))
        known = {o.name for o in model.graph.output}
        for node in model.graph.node:
            for out in node.output:
                if out and out not in known:
                    model.graph.output.append(onnx.ValueInfoProto(name=out))
                    known.add(out)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(model.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(names, feeds)))


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    formats = ("onnx",)

    def unavailable_reason(self) -> str | None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "onnxruntime is not installed (pip install 'edgeexport[onnxruntime]')"
        return None

    def load(self, path: Path, **options: Any) -> Session:
        return OrtSession(Path(path), options.get("threads"), options.get("optimize", True))
