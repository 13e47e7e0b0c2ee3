"""The NNAPI delegate's per-op rules by Android API level (feature level), as the TFLite NNAPI
delegate applies them: op availability, operand types, ranks, constant inputs, attributes.
"""

from __future__ import annotations

from typing import Any, Callable

from ai_edge_litert import schema_py_generated as fb

#: TFLite op -> first Android API level whose NNAPI runs it (27 = NNAPI 1.0 ... 31 = FL5)
MIN_API: dict[str, int] = {
    **{op: 27 for op in (
        "ADD", "MUL", "AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D", "CONV_2D",
        "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX", "RESHAPE", "CONCATENATION", "RELU",
        "RELU6", "RELU_N1_TO_1", "LOGISTIC", "TANH", "RESIZE_BILINEAR", "DEPTH_TO_SPACE",
        "SPACE_TO_DEPTH", "L2_NORMALIZATION", "LOCAL_RESPONSE_NORMALIZATION", "FLOOR",
        "DEQUANTIZE", "EMBEDDING_LOOKUP")},
    **{op: 28 for op in (
        "SUB", "DIV", "PAD", "MEAN", "TRANSPOSE", "SQUEEZE", "STRIDED_SLICE",
        "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND", "SQUARED_DIFFERENCE")},
    **{op: 29 for op in (
        "ABS", "EXP", "LOG", "SQRT", "RSQRT", "SIN", "NEG", "POW", "PRELU", "LEAKY_RELU",
        "MAXIMUM", "MINIMUM", "GATHER", "SPLIT", "SPLIT_V", "SELECT", "SELECT_V2", "LESS",
        "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "EQUAL", "NOT_EQUAL", "LOGICAL_AND",
        "LOGICAL_OR", "LOGICAL_NOT", "CAST", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "SUM",
        "ARG_MAX", "ARG_MIN", "PADV2", "RESIZE_NEAREST_NEIGHBOR", "TRANSPOSE_CONV", "SLICE",
        "TILE", "EXPAND_DIMS", "LOG_SOFTMAX", "QUANTIZE", "MIRROR_PAD", "TOPK_V2")},
    **{op: 30 for op in ("HARD_SWISH", "ELU", "FILL", "RANK")},
    **{op: 31 for op in ("BATCH_MATMUL", "PACK")},
}
#: ops the NNAPI delegate never takes, with the reason users see
NEVER: dict[str, str] = {
    "GELU": "NNAPI has no GELU operation",
    "BROADCAST_TO": "NNAPI has no BROADCAST_TO operation",
    "CUMSUM": "NNAPI has no cumulative sum",
    "SIGN": "NNAPI has no SIGN operation",
    "RELU_0_TO_1": "NNAPI has no RELU_0_TO_1 operation",
    "ROUND": "NNAPI has no ROUND operation",
    "CEIL": "NNAPI has no CEIL operation",
    "COS": "NNAPI has no COS operation",
    "FLOOR_MOD": "NNAPI has no FLOOR_MOD operation",
}
#: inputs (by position) that the delegate needs as constants: it turns them into NNAPI scalars
CONST_INPUTS: dict[str, tuple[int, ...]] = {
    "CONV_2D": (1,), "DEPTHWISE_CONV_2D": (1,), "TRANSPOSE_CONV": (0, 1),
    "MEAN": (1,), "SUM": (1,), "REDUCE_MAX": (1,), "REDUCE_MIN": (1,), "REDUCE_PROD": (1,),
    "PAD": (1,), "PADV2": (1, 2), "MIRROR_PAD": (1,), "TRANSPOSE": (1,), "RESHAPE": (1,),
    "STRIDED_SLICE": (1, 2, 3), "SLICE": (1, 2), "GATHER": (), "SPLIT": (0,), "SPLIT_V": (1, 2),
    "RESIZE_BILINEAR": (1,), "RESIZE_NEAREST_NEIGHBOR": (1,), "TILE": (1,),
    "ARG_MAX": (1,), "ARG_MIN": (1,), "TOPK_V2": (1,),
}
_FLOAT_ONLY = {"DIV": 30, "EXP": 99, "LOG": 99, "SQRT": 99, "RSQRT": 31, "SIN": 99, "POW": 99,
               "GELU": 99}

Check = Callable[[Any, Any, int, "OpView"], "str | None"]


class OpView:
    """A TFLite operator with its tensors, for the rules."""

    def __init__(self, model: Any, index: int, name: str, const_tensors: set[int]) -> None:
        self.model, self.index, self.name = model, index, name
        self.const_tensors = const_tensors
        self.op = model.operators[index]
        self.inputs = [model.tensors[i] if i >= 0 else None for i in self.op.inputs]
        self.outputs = [model.tensors[i] for i in self.op.outputs]
        self.options = self.op.builtinOptions

    def is_const(self, pos: int) -> bool:
        return pos >= len(self.op.inputs) or self.op.inputs[pos] in self.const_tensors

    def tensors(self) -> list[Any]:
        return [t for t in self.inputs + self.outputs if t is not None]


_TYPE = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}


def why_not(view: OpView, api: int, relax_fp16: bool) -> str | None:
    """None when the NNAPI delegate at this API level takes the op, else the reason."""
    name = view.name
    if name in NEVER:
        return NEVER[name]
    need = MIN_API.get(name)
    if need is None:
        return f"{name} has no NNAPI mapping in the TFLite NNAPI delegate"
    if api < need:
        return f"{name} needs Android API {need} (NNAPI {_nnapi_version(need)}), target is {api}"
    for t in view.tensors():
        rank = len(t.shape) if t.shape is not None else 0
        if rank > 4:
            return f"tensor '{_s(t.name)}' has rank {rank}; NNAPI takes rank <= 4"
        tname = _TYPE.get(t.type, str(t.type))
        if tname == "INT64":
            return f"tensor '{_s(t.name)}' is int64; NNAPI has no int64 operands"
        if tname == "BOOL" and api < 29:
            return f"boolean tensor '{_s(t.name)}' needs Android API 29"
        if _per_channel(t) and api < 29:
            return (f"per-channel quantized '{_s(t.name)}' needs Android API 29 (NNAPI 1.2); "
                    "before it only per-tensor scales")
        if tname == "FLOAT16" and name != "DEQUANTIZE" and api < 29:
            return "fp16 tensors need Android API 29"
    if name in _FLOAT_ONLY and any(_TYPE.get(t.type) not in ("FLOAT32", "FLOAT16")
                                   for t in view.outputs):
        lvl = _FLOAT_ONLY[name]
        if api < lvl:
            return f"{name} on integer tensors is not in NNAPI at API {api}"
    for pos in CONST_INPUTS.get(name, ()):
        if pos < len(view.inputs) and not view.is_const(pos):
            return f"input {pos} of {name} must be a constant for NNAPI"
    extra = _EXTRA.get(name)
    return extra(view, api) if extra else None


def _s(b: Any) -> str:
    return b.decode() if isinstance(b, bytes) else str(b)


def _nnapi_version(api: int) -> str:
    return {27: "1.0", 28: "1.1", 29: "1.2", 30: "1.3", 31: "feature level 5"}.get(api, str(api))


def _per_channel(t: Any) -> bool:
    q = t.quantization
    return q is not None and q.scale is not None and len(q.scale) > 1


def _scale(t: Any) -> float | None:
    q = t.quantization
    return float(q.scale[0]) if q is not None and q.scale is not None and len(q.scale) else None


def _resize(view: OpView, api: int) -> str | None:
    o = view.options
    if api < 30 and (getattr(o, "alignCorners", False) or getattr(o, "halfPixelCenters", False)):
        return "align_corners / half_pixel_centers resize needs Android API 30"
    return None


def _requant(view: OpView, api: int) -> str | None:
    """NNAPI before 1.2: a quantized conv/FC needs output_scale > input_scale * weight_scale."""
    if api >= 29:
        return None
    si, sw, so = (_scale(view.inputs[0]), _scale(view.inputs[1]), _scale(view.outputs[0]))
    if None in (si, sw, so):
        return None
    if not so > si * sw:  # type: ignore[operator]
        return ("output scale <= input scale x weight scale: NNAPI before API 29 cannot "
                "requantize it")
    return None


def _concat(view: OpView, api: int) -> str | None:
    if api >= 29:
        return None
    scales = {(_scale(t), tuple(t.quantization.zeroPoint or ()))
              for t in view.tensors() if _scale(t) is not None}
    if len(scales) > 1:
        return "inputs with different quantization than the output need Android API 29"
    return None


def _softmax(view: OpView, api: int) -> str | None:
    rank = len(view.inputs[0].shape)
    if api < 29 and rank not in (2, 4):
        return f"softmax of a rank-{rank} tensor needs Android API 29"
    return None


def _mean(view: OpView, api: int) -> str | None:
    if not getattr(view.options, "keepDims", True) and len(view.inputs[0].shape) == 4 and api < 28:
        return "MEAN needs Android API 28"
    return None


def _fc(view: OpView, api: int) -> str | None:
    if getattr(view.options, "keepNumDims", False):
        return "FULLY_CONNECTED with keep_num_dims is not taken by the NNAPI delegate"
    if _TYPE.get(view.inputs[0].type) == "FLOAT32" and _TYPE.get(view.inputs[1].type) == "INT8":
        return "hybrid (dynamic-range int8) FULLY_CONNECTED runs on the CPU, not on NNAPI"
    return _requant(view, api)


def _batch_matmul(view: OpView, api: int) -> str | None:
    if any(len(t.shape) < 2 for t in view.inputs if t is not None):
        return "BATCH_MATMUL of rank < 2"
    return None


def _gather(view: OpView, api: int) -> str | None:
    return None


_EXTRA: dict[str, Callable[[OpView, int], "str | None"]] = {
    "RESIZE_BILINEAR": _resize, "RESIZE_NEAREST_NEIGHBOR": _resize,
    "CONV_2D": _requant, "DEPTHWISE_CONV_2D": _requant, "FULLY_CONNECTED": _fc,
    "CONCATENATION": _concat, "SOFTMAX": _softmax, "MEAN": _mean,
    "BATCH_MATMUL": _batch_matmul, "GATHER": _gather,
}

