"""LiteRT (ai-edge-litert): executes .tflite artifacts on this machine's CPU (XNNPACK delegate on
by default); intermediates come back by IR value name through the artifact's tensor map.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgeexport.runtimes.base import Runtime, Session, native_stderr


def _inverse(perm: list[int]) -> list[int]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return inv


def _dequantize(arr: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    from edgeexport.delegates.tflite.signature import dequantize

    q = detail.get("quantization_parameters") or {}
    scales = q.get("scales")
    if scales is None or len(scales) == 0:
        return arr
    return dequantize(arr, {"scale": scales, "zero_point": q.get("zero_points"),
                            "axis": q.get("quantized_dimension", 0)})


def ops_outside_delegates(interpreter: Any) -> list[str]:
    """Names of the ops a delegate (XNNPACK) left to TFLite's own kernels, from an allocated
    LiteRT Interpreter: an op is delegated when one of its outputs leaves a DELEGATE node, or
    when every reader of its outputs is delegated (an internal value)."""
    ops = interpreter._get_ops_details()
    delegates = [o for o in ops if o["op_name"] == "DELEGATE"]
    plain = [o for o in ops if o["op_name"] != "DELEGATE"]
    d_out = {int(t) for o in delegates for t in o["outputs"]}
    d_in = {int(t) for o in delegates for t in o["inputs"]}
    graph_out = {d["index"] for d in interpreter.get_output_details()}
    readers: dict[int, list[int]] = {}
    for o in plain:
        for t in o["inputs"]:
            readers.setdefault(int(t), []).append(o["index"])
    inside: dict[int, bool] = {}
    for o in reversed(plain):
        outs = [int(t) for t in o["outputs"]]
        inside[o["index"]] = any(t in d_out for t in outs) or not any(
            t in d_in or t in graph_out or any(not inside.get(r, True) for r in readers.get(t, []))
            for t in outs)
    return [o["op_name"] for o in plain if not inside[o["index"]]]


class LiteRtSession(Session):
    def __init__(self, path: Path, threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        import ai_edge_litert

        self._path, self._threads = path, threads
        native_log: list[str] = []
        with native_stderr(native_log):
            self._interp = Interpreter(model_path=os.fspath(path), num_threads=threads)
            self._interp.allocate_tensors()
        self._inputs = {d["name"]: d for d in self._interp.get_input_details()}
        self._outputs = self._interp.get_output_details()
        self.device = "cpu"
        self.details = {"interpreter": "ai_edge_litert.interpreter", "delegate": "XNNPACK",
                        "litert": getattr(ai_edge_litert, "__version__", "unknown"),
                        "threads": threads, "native_log": native_log}

    def _feed(self, interp: Any, feeds: dict[str, np.ndarray]) -> None:
        for name, d in self._inputs.items():
            if name not in feeds:
                raise KeyError(f"missing input '{name}' (the artifact's inputs: "
                               f"{', '.join(self._inputs)})")
            interp.set_tensor(d["index"], np.asarray(feeds[name], dtype=d["dtype"], order="C"))

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._feed(self._interp, feeds)
        self._interp.invoke()
        return {d["name"]: _dequantize(self._interp.get_tensor(d["index"]), d)
                for d in self._outputs}

    def run_all(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every IR value the artifact holds, in the IR's layout (dequantized when int8)."""
        from ai_edge_litert.interpreter import Interpreter

        from edgeexport.delegates.tflite.writer import read_tensor_map

        with native_stderr([]):
            interp = Interpreter(model_path=os.fspath(self._path), num_threads=self._threads,
                                 experimental_preserve_all_tensors=True)
            interp.allocate_tensors()
        self._feed(interp, feeds)
        interp.invoke()
        tmap = read_tensor_map(self._path.read_bytes())
        by_name = {d["name"]: d for d in interp.get_tensor_details()}
        out: dict[str, np.ndarray] = {}
        for ir_name, (tensor_name, perm) in tmap.items():
            d = by_name.get(tensor_name)
            if d is None:
                continue
            try:
                arr = interp.get_tensor(d["index"])
            except ValueError:  # constants folded away or not materialized
                continue
            arr = _dequantize(arr, d)
            if list(arr.shape) and len(perm) == arr.ndim:
                arr = np.transpose(arr, _inverse(perm))
            out[ir_name] = arr
        out.update(self.run(feeds))
        return out


class LiteRtRuntime(Runtime):
    name = "litert"
    formats = ("tflite",)

    def unavailable_reason(self) -> str | None:
        try:
            import ai_edge_litert.interpreter  # noqa: F401
        except ImportError:
            return "ai-edge-litert is not installed (pip install ai-edge-litert)"
        return None

    def load(self, path: Path, **options: Any) -> Session:
        return LiteRtSession(Path(path), options.get("threads"))
