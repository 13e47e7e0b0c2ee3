"""The edge profile: the one table of ONNX ops that passes, the reference runtime and emitters know.

Per-target support is not typed here: it is computed from each delegate's op registry, so the
matrix printed by `edgeexport targets` and the coverage reports can never disagree with the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import onnx_ir as ir


@dataclass(frozen=True)
class OpSpec:
    """One row of the table: an op, the attributes we understand, and its family."""

    name: str
    family: str
    attributes: frozenset[str] = field(default_factory=frozenset)
    doc: str = ""

    @property
    def reference_kernel(self) -> Callable:
        """The numpy kernel that defines the op's semantics for us (see runtimes.reference)."""
        from edgeexport.runtimes.reference import kernels

        return kernels.KERNELS[self.name]


def _op(name: str, family: str, attrs: str = "", doc: str = "") -> OpSpec:
    return OpSpec(name, family, frozenset(attrs.split()), doc)


_CONV = "auto_pad dilations group kernel_shape pads strides"
_POOL = "auto_pad ceil_mode dilations kernel_shape pads strides"

_TABLE: list[OpSpec] = [
    # convolution and linear algebra
    _op("Conv", "conv", _CONV),
    _op("ConvTranspose", "conv", _CONV + " output_padding output_shape"),
    _op("MatMul", "linear"),
    _op("Gemm", "linear", "alpha beta transA transB"),
    _op("Einsum", "linear", "equation"),
    # pooling
    _op("MaxPool", "pool", _POOL + " storage_order"),
    _op("AveragePool", "pool", _POOL + " count_include_pad"),
    _op("GlobalAveragePool", "pool"),
    _op("GlobalMaxPool", "pool"),
    # normalization
    _op("BatchNormalization", "norm", "epsilon momentum training_mode"),
    _op("LayerNormalization", "norm", "axis epsilon stash_type"),
    _op("InstanceNormalization", "norm", "epsilon"),
    _op("GroupNormalization", "norm", "epsilon num_groups stash_type"),
    # activations
    _op("Relu", "activation"),
    _op("LeakyRelu", "activation", "alpha"),
    _op("PRelu", "activation"),
    _op("Elu", "activation", "alpha"),
    _op("Selu", "activation", "alpha gamma"),
    _op("Celu", "activation", "alpha"),
    _op("Sigmoid", "activation"),
    _op("HardSigmoid", "activation", "alpha beta"),
    _op("HardSwish", "activation"),
    _op("Tanh", "activation"),
    _op("Softplus", "activation"),
    _op("Softsign", "activation"),
    _op("Mish", "activation"),
    _op("Gelu", "activation", "approximate"),
    _op("Clip", "activation"),
    _op("Softmax", "activation", "axis"),
    _op("LogSoftmax", "activation", "axis"),
    # elementwise arithmetic and math
    *[_op(n, "elementwise") for n in (
        "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean",
        "Abs", "Neg", "Sqrt", "Reciprocal", "Exp", "Log", "Erf", "Floor", "Ceil", "Round",
        "Sign", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh",
        "Atanh",
    )],
    _op("Mod", "elementwise", "fmod"),
    _op("IsNaN", "elementwise"),
    _op("IsInf", "elementwise", "detect_negative detect_positive"),
    # comparison and logic
    *[_op(n, "logic") for n in (
        "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Not", "And", "Or", "Xor",
        "Where",
    )],
    # reductions
    *[_op(n, "reduce", "keepdims noop_with_empty_axes") for n in (
        "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
        "ReduceSumSquare", "ReduceLogSumExp",
    )],
    _op("ArgMax", "reduce", "axis keepdims select_last_index"),
    _op("ArgMin", "reduce", "axis keepdims select_last_index"),
    _op("CumSum", "reduce", "exclusive reverse"),
    _op("TopK", "reduce", "axis largest sorted"),
    # shape and data movement
    _op("Reshape", "shape", "allowzero"),
    _op("Transpose", "shape", "perm"),
    _op("Flatten", "shape", "axis"),
    _op("Squeeze", "shape"),
    _op("Unsqueeze", "shape"),
    _op("Concat", "shape", "axis"),
    _op("Split", "shape", "axis num_outputs"),
    _op("Slice", "shape"),
    _op("Gather", "shape", "axis"),
    _op("GatherElements", "shape", "axis"),
    _op("GatherND", "shape", "batch_dims"),
    _op("Expand", "shape"),
    _op("Tile", "shape"),
    _op("Pad", "shape", "mode"),
    _op("Shape", "shape", "end start"),
    _op("Size", "shape"),
    _op("ConstantOfShape", "shape", "value"),
    _op("Range", "shape"),
    _op("Trilu", "shape", "upper"),
    _op("DepthToSpace", "shape", "blocksize mode"),
    _op("SpaceToDepth", "shape", "blocksize"),
    _op("Resize", "resize", "antialias axes coordinate_transformation_mode cubic_coeff_a "
        "exclude_outside extrapolation_value keep_aspect_ratio_policy mode nearest_mode"),
    # graph plumbing
    _op("Constant", "misc", "value value_float value_floats value_int value_ints"),
    _op("Identity", "misc"),
    _op("Cast", "misc", "saturate to"),
    _op("CastLike", "misc", "saturate"),
    _op("Dropout", "misc", "seed"),
    # quantization (QDQ graphs, see DESIGN.md)
    _op("QuantizeLinear", "quant", "axis block_size output_dtype saturate"),
    _op("DequantizeLinear", "quant", "axis block_size"),
]

#: op name -> spec. The single source of truth for "is this op in the edge profile".
EDGE_PROFILE: dict[str, OpSpec] = {}
for _spec in _TABLE:
    if _spec.name in EDGE_PROFILE:
        raise RuntimeError(f"edge profile lists {_spec.name} twice")
    EDGE_PROFILE[_spec.name] = _spec


def spec(op_type: str, domain: str = "") -> OpSpec | None:
    """The spec of an op, or None when it is outside the edge profile."""
    if domain not in ("", "ai.onnx"):
        return None
    return EDGE_PROFILE.get(op_type)


def check_node(node: "ir.Node") -> str | None:
    """Why a node is outside the edge profile, or None when it is inside."""
    s = spec(node.op_type, node.domain)
    if s is None:
        return f"{node.domain + '::' if node.domain else ''}{node.op_type} is not in the edge profile"
    unknown = sorted(set(node.attributes) - s.attributes)
    if unknown:
        return f"attribute(s) {', '.join(unknown)} of {node.op_type} are not supported"
    return None


#: Targets in the order users see them; each names the delegate package that owns its registry.
TARGET_MODULES: dict[str, str] = {
    "onnx": "edgeexport.delegates.onnx",
    "nnapi": "edgeexport.delegates.nnapi",
    "rpi": "edgeexport.delegates.rpi",
    "coreml": "edgeexport.delegates.coreml",
    "metal": "edgeexport.delegates.metal",
    "vulkan": "edgeexport.delegates.vulkan",
}


def support_matrix() -> dict[str, dict[str, str]]:
    """op -> target -> 'yes' | 'conditional: ...' | 'no', computed from the delegates' registries.

    Targets whose delegate package is not present yet are left out.
    """
    from edgeexport.delegates import load_target

    targets = {}
    for name in TARGET_MODULES:
        try:
            targets[name] = load_target(name)
        except ModuleNotFoundError:
            continue
    matrix: dict[str, dict[str, str]] = {}
    for op in EDGE_PROFILE:
        matrix[op] = {name: t.registry.support_status(op) for name, t in targets.items()}
    return matrix
