"""The inputs and outputs a .tflite file really declares (read back from the flatbuffer): name,
shape, dtype, int8 scale/zero point, and the axis order relative to the IR from the tensor map.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ai_edge_litert import schema_py_generated as fb

from edgeexport.delegates.tflite.writer import TENSOR_TYPES, read_tensor_map

_DTYPES = {v: k for k, v in TENSOR_TYPES.items()}


def io_tensors(data: bytes) -> dict[str, list[dict[str, Any]]]:
    """{"inputs": [...], "outputs": [...]} of subgraph 0, each entry {name, shape, dtype,
    quantization (None or {scale, zero_point, axis}), axes_from_ir (artifact axis j holds IR
    axis axes_from_ir[j])}."""
    model = fb.Model.GetRootAs(data, 0)
    sub = model.Subgraphs(0)
    tmap = read_tensor_map(data)
    # a tensor can hold several IR values (a Transpose absorbed into the layout aliases its
    # input's tensor with another perm): the value named like the tensor is the one it declares
    by_tensor = {t: perm for t, perm in tmap.values()}
    by_tensor.update({t: perm for v, (t, perm) in tmap.items() if v == t})

    def describe(index: int) -> dict[str, Any]:
        t = sub.Tensors(index)
        name = t.Name().decode()
        shape = [int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else []
        q = t.Quantization()
        quant = None
        if q is not None and q.ScaleLength():
            quant = {"scale": [float(s) for s in q.ScaleAsNumpy()],
                     "zero_point": [int(z) for z in q.ZeroPointAsNumpy()],
                     "axis": int(q.QuantizedDimension())}
        perm = by_tensor.get(name, list(range(len(shape))))
        return {"name": name, "shape": shape, "dtype": np.dtype(_DTYPES[t.Type()]).name,
                "quantization": quant, "axes_from_ir": [int(p) for p in perm]}

    return {"inputs": [describe(int(i)) for i in sub.InputsAsNumpy()],
            "outputs": [describe(int(i)) for i in sub.OutputsAsNumpy()]}


def dequantize(arr: np.ndarray, quant: dict[str, Any] | None) -> np.ndarray:
    """Real values of an integer tensor with {scale, zero_point, axis}; others pass through."""
    if quant is None or arr.dtype.kind not in "iu":
        return arr
    shape = [1] * arr.ndim
    if len(quant["scale"]) > 1:
        shape[quant.get("axis", 0)] = -1
    zp = np.reshape(np.asarray(quant["zero_point"], np.float32), shape)
    return (arr.astype(np.float32) - zp) * np.reshape(np.asarray(quant["scale"], np.float32),
                                                      shape)
