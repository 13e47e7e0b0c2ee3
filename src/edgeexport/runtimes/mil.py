"""mil-interpreter: executes the ML Program inside an .mlpackage op by op with numpy, so CoreML
artifacts get real parity numbers on Linux, where CoreML itself cannot run.

The package's spec is read back into a MIL Program with coremltools' own proto loader. Each op
then runs by coremltools' value inference (the numpy definition that ships with the op), or, where
the op has none or it is too slow, by the project's reference kernel for the same semantics.
Every result is rounded to the dtype the program declares for it, so fp16 programs compute in
fp16 between ops the way they state.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgeexport.runtimes.base import Runtime, Session

logging.getLogger("coremltools").setLevel(logging.ERROR)  # macOS-only proxies it cannot load

WEIGHTS = Path("Data/com.apple.CoreML/weights")
#: a MIL op -> fn(op, inputs by MIL parameter name) -> list of outputs
Kernel = Callable[[Any, dict[str, Any]], list[np.ndarray]]
KERNELS: dict[str, Kernel] = {}


def _kernel(*op_types: str) -> Callable[[Kernel], Kernel]:
    def register(fn: Kernel) -> Kernel:
        for t in op_types:
            KERNELS[t] = fn
        return fn
    return register


def _ref(op: str) -> Any:
    from edgeexport.runtimes.reference.kernels import KERNELS as REF

    return REF[op]


# -- ops without value inference in coremltools: the reference kernels, MIL params -> ONNX attrs --

def _window_attrs(op: Any, a: dict[str, Any], spatial: int) -> dict[str, Any]:
    pad_type = str(a["pad_type"])
    auto = {"same": "SAME_UPPER", "same_lower": "SAME_LOWER", "valid": "VALID"}.get(pad_type)
    attrs: dict[str, Any] = {"strides": [int(s) for s in a["strides"]]}
    if auto:
        attrs["auto_pad"] = auto
    else:
        pad = [int(p) for p in (a.get("pad") if a.get("pad") is not None else [0] * 2 * spatial)]
        # MIL: [begin, end] per axis; ONNX: all begins, then all ends
        attrs["pads"] = pad[0::2] + pad[1::2]
    return attrs


@_kernel("conv")
def _conv(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    x, w = a["x"], a["weight"]
    spatial = w.ndim - 2
    attrs = _window_attrs(op, a, spatial)
    attrs.update(dilations=[int(d) for d in a["dilations"]], group=int(a["groups"]))
    y = _ref("Conv")(x, w.astype(x.dtype), None if a.get("bias") is None
                     else a["bias"].astype(x.dtype), **attrs)
    return [y]


@_kernel("conv_transpose")
def _conv_transpose(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    x, w = a["x"], a["weight"]
    spatial = w.ndim - 2
    attrs = _window_attrs(op, a, spatial)
    attrs.update(dilations=[int(d) for d in a["dilations"]], group=int(a["groups"]))
    if a.get("output_shape") is not None:
        attrs["output_shape"] = [int(d) for d in np.asarray(a["output_shape"])[2:]]
    y = _ref("ConvTranspose")(x, w.astype(x.dtype), None if a.get("bias") is None
                              else a["bias"].astype(x.dtype), **attrs)
    return [y]


@_kernel("max_pool", "avg_pool")
def _pool(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    kernel = [int(k) for k in a["kernel_sizes"]]
    attrs = _window_attrs(op, a, len(kernel))
    attrs.update(kernel_shape=kernel, ceil_mode=int(bool(a.get("ceil_mode", False))))
    if op.op_type == "max_pool":
        return [_ref("MaxPool")(a["x"], **attrs)]
    exclude = bool(a.get("exclude_padding_from_average", False))
    return [_ref("AveragePool")(a["x"], count_include_pad=int(not exclude), **attrs)]


_REDUCE = {"reduce_mean": "ReduceMean", "reduce_sum": "ReduceSum", "reduce_max": "ReduceMax",
           "reduce_min": "ReduceMin", "reduce_prod": "ReduceProd", "reduce_l1_norm": "ReduceL1",
           "reduce_l2_norm": "ReduceL2", "reduce_sum_square": "ReduceSumSquare",
           "reduce_log_sum_exp": "ReduceLogSumExp"}


@_kernel(*_REDUCE)
def _reduce(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # coremltools' value inference passes keep_dims as numpy.bool, which numpy 2 rejects
    axes = a.get("axes")
    axes = None if axes is None else np.asarray(axes, np.int64)
    return [_ref(_REDUCE[op.op_type])(a["x"], axes, keepdims=int(bool(a["keep_dims"])))]


def _gamma_beta(a: dict[str, Any], c: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    gamma = np.ones(c, dtype) if a.get("gamma") is None else np.asarray(a["gamma"], dtype)
    beta = np.zeros(c, dtype) if a.get("beta") is None else np.asarray(a["beta"], dtype)
    return gamma, beta


@_kernel("batch_norm")
def _batch_norm(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    x = a["x"]
    gamma, beta = _gamma_beta(a, x.shape[1], x.dtype)
    return [_ref("BatchNormalization")(x, gamma, beta, np.asarray(a["mean"], x.dtype),
                                       np.asarray(a["variance"], x.dtype),
                                       epsilon=float(a["epsilon"]))]


@_kernel("instance_norm")
def _instance_norm(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    x = a["x"]
    gamma, beta = _gamma_beta(a, x.shape[1], x.dtype)
    return [_ref("InstanceNormalization")(x, gamma, beta, epsilon=float(a["epsilon"]))]


@_kernel("upsample_nearest_neighbor", "upsample_bilinear")
def _upsample(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # MIL: out[i] = in[floor(i / scale)] (nearest); bilinear by align_corners / half-pixel
    # centers / neither, which are ONNX Resize's align_corners / half_pixel / asymmetric
    x = a["x"]
    scales = np.array([1, 1, float(a["scale_factor_height"]), float(a["scale_factor_width"])],
                      np.float32)
    if op.op_type == "upsample_nearest_neighbor":
        attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor")
    else:
        coords = ("align_corners" if a.get("align_corners") else
                  "half_pixel" if a.get("half_pixel_centers") else "asymmetric")
        attrs = dict(mode="linear", coordinate_transformation_mode=coords)
    return [_ref("Resize")(x, None, scales, **attrs)]


@_kernel("cumsum")
def _cumsum(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # coremltools' value inference breaks on exclusive=True (np.zeros(shape, array))
    return [_ref("CumSum")(a["x"], np.array(int(a["axis"])), exclusive=int(bool(a["exclusive"])),
                           reverse=int(bool(a["reverse"])))]


@_kernel("erf")
def _erf(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    return [_ref("Erf")(a["x"])]  # coremltools' is math.erf through np.vectorize: same, slower


@_kernel("gelu")
def _gelu(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    mode = str(a.get("mode") or "EXACT")
    if mode == "EXACT":
        return [_ref("Gelu")(a["x"])]  # 0.5 x (1 + erf(x / sqrt 2)), as MIL defines EXACT
    return [_value_inference(op, a)]


@_kernel("split")
def _split(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    x, axis = a["x"], int(a["axis"])
    sizes = a.get("split_sizes")
    if sizes is None:
        sizes = [x.shape[axis] // int(a["num_splits"])] * int(a["num_splits"])
    return list(np.split(x, np.cumsum([int(s) for s in sizes])[:-1], axis=axis))


@_kernel("depth_to_space", "pixel_shuffle")
def _depth_to_space(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # depth_to_space is TensorFlow's (blocks outermost in the channels: ONNX DCR), pixel_shuffle
    # PyTorch's (channels outermost: ONNX CRD)
    if op.op_type == "pixel_shuffle":
        return [_ref("DepthToSpace")(a["x"], blocksize=int(a["upscale_factor"]), mode="CRD")]
    return [_ref("DepthToSpace")(a["x"], blocksize=int(a["block_size"]), mode="DCR")]


@_kernel("space_to_depth")
def _space_to_depth(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    return [_ref("SpaceToDepth")(a["x"], blocksize=int(a["block_size"]))]


@_kernel("band_part")
def _band_part(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # keeps (lower < 0 or i - j <= lower) and (upper < 0 or j - i <= upper); coremltools' value
    # inference loops over every element in Python
    x = a["x"]
    lower = -1 if a.get("lower") is None else int(a["lower"])
    upper = -1 if a.get("upper") is None else int(a["upper"])
    if lower >= 0:
        x = _ref("Trilu")(x, np.array(-lower), upper=1)
    if upper >= 0:
        x = _ref("Trilu")(x, np.array(upper), upper=0)
    return [x]


@_kernel("gather_nd")
def _gather_nd(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # MIL's gather_nd is ONNX's GatherND (batch_dims from iOS 16), in-range indices only
    return [_ref("GatherND")(a["x"], np.asarray(a["indices"]),
                             batch_dims=int(a.get("batch_dims") or 0))]


@_kernel("range_1d")
def _range_1d(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # coremltools' value inference gives up (None) above its constant-folding size. The coreml
    # emitter makes int32 ranges only, where this and its np.arange agree element for element
    start, end, step = (np.asarray(a[k]) for k in ("start", "end", "step"))
    return [_ref("Range")(start, end.astype(start.dtype), step.astype(start.dtype))]


def _affine(a: dict[str, Any], data: np.ndarray, axis_key: str = "axis") -> tuple[Any, Any]:
    scale, zp = np.asarray(a["scale"]), a.get("zero_point")
    axis = a.get(axis_key)
    if scale.ndim == 1 and scale.size > 1 or (axis is not None and scale.ndim == 1):
        shape = [1] * data.ndim
        shape[int(axis) % data.ndim] = scale.size
        scale = scale.reshape(shape)
        if zp is not None:  # a zero point may stay scalar beside per-channel scales
            zp = np.asarray(zp)
            zp = zp.reshape(shape) if zp.size > 1 else zp.reshape(())
    return scale, zp


@_kernel("quantize")
def _quantize(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # MIL quantize: round(x / scale) + zero_point, clipped to the output type (round half even)
    x = a["input"]
    scale, zp = _affine(a, x)
    q = np.rint(x.astype(np.float32) / scale.astype(np.float32))
    if zp is not None:
        q = q + zp.astype(np.float32)
    dtype = np.dtype(str(a["output_dtype"]))
    info = np.iinfo(dtype)
    return [np.clip(q, info.min, info.max).astype(dtype)]


@_kernel("dequantize", "constexpr_affine_dequantize")
def _dequantize(op: Any, a: dict[str, Any]) -> list[np.ndarray]:
    # scale * (q - zero_point), in the scale's dtype (which is the output dtype)
    q = a["input"] if "input" in a else a["quantized_data"]
    scale, zp = _affine(a, q)
    d = q.astype(np.int32) - (0 if zp is None else zp.astype(np.int32))
    return [(d.astype(np.float32) * scale.astype(np.float32)).astype(scale.dtype)]


# -- coremltools' value inference, fed with runtime values instead of compile-time ones ----------

class _Value:
    """Stands in for a MIL Var inside value_inference: `.val` is the runtime array."""

    def __init__(self, var: Any, val: Any) -> None:
        if isinstance(val, np.ndarray) and val.ndim == 0:
            val = val[()]  # compile-time scalars are numpy scalars, not 0-d arrays
        self._var, self.val, self.sym_val = var, val, val

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.val))

    @property
    def rank(self) -> int:
        return np.ndim(self.val)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._var, name)


def _bound(op: Any, values: dict[str, Any]) -> Any:
    """A shallow copy of the op whose input vars answer with runtime values (see _Value): an
    instance of the op's own class, so its methods, properties and `super()` calls (iOS 16's
    topk calls iOS 15's) all run as coremltools wrote them."""
    bound = copy.copy(op)
    inputs = {}
    for name, var in op._input_vars.items():
        val = values.get(name)
        if isinstance(var, (tuple, list)):
            inputs[name] = tuple(_Value(v, _compile_time(v, x)) for v, x in zip(var, val))
        else:
            inputs[name] = None if var is None else _Value(var, _compile_time(var, val))
        bound.__dict__[name] = inputs[name]
    bound._input_vars = inputs
    return bound


def _compile_time(var: Any, runtime: Any) -> Any:
    """Parameters known when the program was built keep coremltools' own representation."""
    known = var.val
    return runtime if known is None else known


def _value_inference(op: Any, values: dict[str, Any]) -> Any:
    return type(op).value_inference(_bound(op, values))


# -- the program --------------------------------------------------------------------------------

class MilProgram:
    """The main function of an .mlpackage's ML Program, ready to execute."""

    def __init__(self, path: Path) -> None:
        import coremltools as ct
        from coremltools.converters.mil.frontend.milproto.load import load

        self.path = Path(path)
        self.spec = ct.utils.load_spec(str(self.path))
        if self.spec.WhichOneof("Type") != "mlProgram":
            raise ValueError(f"{path}: not an ML Program (model type "
                             f"{self.spec.WhichOneof('Type')})")
        self.program = load(self.spec, self.spec.specificationVersion,
                            str(self.path / WEIGHTS))
        self.function = self.program.functions["main"]
        meta = dict(self.spec.description.metadata.userDefined)
        #: MIL name -> IR name for inputs and outputs (identity when absent)
        self.io_names: dict[str, str] = json.loads(meta.get("com.edgeexport.io_names", "{}"))
        self.metadata = meta
        self.opset = self.function.opset_version
        self.ops = list(self.function.operations)

    def ir_name(self, mil: str) -> str:
        return self.io_names.get(mil, mil)

    def execute(self, feeds: dict[str, np.ndarray], keep_all: bool = False
                ) -> dict[str, np.ndarray]:
        from coremltools.converters.mil.mil import types

        env: dict[str, Any] = {}
        by_ir = {self.ir_name(n): n for n in self.function.inputs}
        for ir_name, mil in by_ir.items():
            if ir_name not in feeds and mil not in feeds:
                raise ValueError(f"missing input '{ir_name}'")
            var = self.function.inputs[mil]
            want = types.nptype_from_builtin(var.dtype)
            env[mil] = np.asarray(feeds.get(ir_name, feeds.get(mil))).astype(want)
        # the reference kernels run under the reference runtime's BLAS thread limit: a GEMM's
        # float sums depend on OpenBLAS's thread count, and in a W8A8 program one differing
        # last bit moves a value across a rounding step that later layers then amplify
        with _blas_limit():
            for op in self.ops:
                outs = self._run_op(op, env)
                for var, val in zip(op.outputs, outs):
                    env[var.name] = _as_declared(var, val)
        if keep_all:
            return {self.ir_name(k.removesuffix("__pre")): v for k, v in env.items()}
        return {self.ir_name(v.name): env[v.name] for v in self.function.outputs}

    def _run_op(self, op: Any, env: dict[str, Any]) -> list[Any]:
        if op.op_type == "const" or (op.op_type.startswith("constexpr_")
                                    and op.op_type not in KERNELS):
            return [op.outputs[0].val]
        values = {}
        for name, var in op._input_vars.items():
            if var is None:
                values[name] = None
            elif isinstance(var, (tuple, list)):
                values[name] = tuple(_lookup(v, env) for v in var)
            else:
                values[name] = _lookup(var, env)
        kernel = KERNELS.get(op.op_type)
        if kernel is not None:
            return kernel(op, values)
        from coremltools.converters.mil.mil.operation import Operation

        if type(op).value_inference is Operation.value_inference:
            raise NotImplementedError(f"mil-interpreter: op '{op.op_type}' ({op.name}) has no "
                                      "value inference in coremltools and no kernel here")
        out = _value_inference(op, values)
        return list(out) if isinstance(out, (tuple, list)) else [out]


def _blas_limit() -> Any:
    from edgeexport.runtimes.reference.kernels._parallel import blas_limit

    return blas_limit()


def _lookup(var: Any, env: dict[str, Any]) -> Any:
    if var.name in env:
        return env[var.name]
    if var.val is None:
        raise KeyError(f"mil-interpreter: value '{var.name}' is used before it is produced")
    return var.val  # an op attribute or a const outside the op list


def _as_declared(var: Any, val: Any) -> Any:
    """Round a result to the dtype the program declares for it (fp16 stays fp16)."""
    from coremltools.converters.mil.mil import types

    if not types.is_tensor(var.sym_type) and not types.is_scalar(var.sym_type):
        return val
    want = np.dtype(types.nptype_from_builtin(var.dtype))
    arr = np.asarray(val)
    if arr.dtype != want:
        arr = arr.astype(want)
    if types.is_tensor(var.sym_type) and arr.ndim != len(var.shape):
        arr = arr.reshape(var.shape)  # value inference can return a scalar for a rank-1 shape
    return arr


class MilSession(Session):
    def __init__(self, path: Path) -> None:
        import coremltools as ct

        self.program = MilProgram(path)
        self.device = "cpu"
        opset = getattr(self.program.opset, "name", str(self.program.opset))
        self.details = {"coremltools": ct.__version__, "opset": opset,
                        "ops": len(self.program.ops), "executes": "MIL program (numpy)",
                        "compute_units": self.program.metadata.get(
                            "com.edgeexport.compute_units")}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.program.execute(feeds)

    def run_all(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.program.execute(feeds, keep_all=True).items()
                if isinstance(v, np.ndarray)}


class MilInterpreterRuntime(Runtime):
    name = "mil-interpreter"
    formats = ("mlpackage",)

    def unavailable_reason(self) -> str | None:
        try:
            import coremltools  # noqa: F401
            from coremltools.converters.mil.frontend.milproto import load  # noqa: F401
        except ImportError as exc:
            return f"coremltools is not installed ({exc}); pip install coremltools"
        return None

    def load(self, path: Path, **options: Any) -> Session:
        return MilSession(Path(path))


__all__ = ["KERNELS", "MilInterpreterRuntime", "MilProgram", "MilSession"]
