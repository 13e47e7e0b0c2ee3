"""The .mlpackage itself: byte-identical across conversions, reloads and validates with
coremltools, carries its compute units, image inputs, quantized and fp16 weights; unsupported
ops fail with the op, the node and the targets that take it.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeexport.delegates import load_target
from edgeexport.delegates.coreml import TARGET
from edgeexport.delegates.coreml.package import WEIGHTS_PATH, check_package
from edgeexport.errors import UnsupportedOpError
from edgeexport.runtimes import get as get_runtime
from edgeexport.runtimes import reference
from edgeexport.metrics import error_stats

RNG = np.random.default_rng(3)


def small_cnn(input_name: str = "x") -> ir.Model:
    """conv -> relu -> depthwise conv -> global pool -> gemm, with named input and outputs."""
    w1 = RNG.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3
    w2 = RNG.standard_normal((8, 1, 3, 3)).astype(np.float32) * 0.3
    fc = RNG.standard_normal((5, 8)).astype(np.float32) * 0.3
    nodes = [
        helper.make_node("Conv", [input_name, "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], group=8, pads=[1, 1, 1, 1], name="dw"),
        helper.make_node("GlobalAveragePool", ["c2"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fc"], ["logits"], transB=1, name="fc"),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax"),
    ]
    graph = helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT,
                                                     [1, 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("probs", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
         numpy_helper.from_array(fc, "fc")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    proto = onnx.shape_inference.infer_shapes(proto)
    return ir.serde.deserialize_model(proto)


def _digest(package: Path) -> dict[str, str]:
    return {p.relative_to(package).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(package.rglob("*")) if p.is_file()}


def _emit(model: ir.Model, out: Path, target=TARGET, **options) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    return target.emit(model, out, argparse.Namespace(**options)).path


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_two_conversions_are_byte_identical(precision: str, tmp_path: Path) -> None:
    model = small_cnn()
    first = _emit(model, tmp_path / "a", precision=precision)
    again = ir.serde.deserialize_model(ir.serde.serialize_model(model))  # a fresh copy
    second = _emit(again, tmp_path / "b", precision=precision)
    assert _digest(first) == _digest(second)
    assert set(_digest(first)) == {"Manifest.json", "Data/com.apple.CoreML/model.mlmodel",
                                   "Data/com.apple.CoreML/weights/weight.bin"}


def test_another_process_writes_the_same_bytes(tmp_path: Path) -> None:
    """Set order and hash seeds differ between processes; the package must not."""
    import os
    import subprocess
    import sys

    from edgeexport import ir as eir

    model = small_cnn()
    eir.save(model, tmp_path / "m.onnx")
    here = _emit(model, tmp_path / "here")
    code = ("import argparse, sys; from edgeexport import ir; "
            "from edgeexport.delegates.coreml import TARGET; "
            "TARGET.emit(ir.load(sys.argv[1]), sys.argv[2], argparse.Namespace())")
    (tmp_path / "there").mkdir()
    env = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.onnx"), str(tmp_path / "there")],
                   check=True, env=env, capture_output=True)
    assert _digest(here) == _digest(tmp_path / "there/model.mlpackage")


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
@pytest.mark.parametrize("ios", [15, 16, 17, 18])
def test_package_reloads_and_validates(ios: int, precision: str, tmp_path: Path) -> None:
    path = _emit(small_cnn(), tmp_path, precision=precision, ios=ios)
    spec = check_package(path, ios=ios)
    assert [d.name for d in spec.description.input] == ["x"]
    assert [d.name for d in spec.description.output] == ["logits", "probs"]
    meta = spec.description.metadata.userDefined
    assert meta["com.edgeexport.precision"] == precision and meta["com.edgeexport.ios"] == str(ios)


def test_metal_is_the_same_program_with_gpu_compute_units(tmp_path: Path) -> None:
    model = small_cnn()
    coreml = check_package(_emit(model, tmp_path / "c"))
    metal_target = load_target("metal")
    metal = check_package(_emit(model, tmp_path / "m", target=metal_target))
    assert metal_target.registry is TARGET.registry
    assert metal.mlProgram == coreml.mlProgram
    assert coreml.description.metadata.userDefined["com.edgeexport.compute_units"] == "ALL"
    assert metal.description.metadata.userDefined["com.edgeexport.compute_units"] == "CPU_AND_GPU"


def test_names_that_mil_rewrites_are_mapped_back(tmp_path: Path) -> None:
    model = small_cnn("input.1")
    path = _emit(model, tmp_path, precision="fp32")
    feeds = {"input.1": RNG.standard_normal((1, 3, 16, 16)).astype(np.float32)}
    got = get_runtime("mil-interpreter").load(path).run(feeds)
    want = reference.run(model, feeds)
    assert set(got) == {"logits", "probs"}
    assert error_stats(want["probs"], got["probs"]).max_rel_err <= 1e-5


def test_image_input_scale_and_bias(tmp_path: Path) -> None:
    model = small_cnn()
    path = _emit(model, tmp_path, precision="fp32", coreml_image_input="x",
                 coreml_image_scale=1 / 127.5, coreml_image_bias="-1,-0.5,0")
    spec = check_package(path)
    assert spec.description.input[0].type.WhichOneof("Type") == "imageType"
    pixels = RNG.integers(0, 256, (1, 3, 16, 16)).astype(np.float32)
    got = get_runtime("mil-interpreter").load(path).run({"x": pixels})
    bias = np.array([-1, -0.5, 0], np.float32).reshape(1, 3, 1, 1)
    want = reference.run(model, {"x": pixels / np.float32(127.5) + bias})
    assert error_stats(want["logits"], got["logits"]).max_rel_err <= 1e-5


def test_unsupported_op_fails_clearly(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    proto = helper.make_model(helper.make_graph(
        [helper.make_node("Asinh", ["x"], ["y"], name="arsinh")],
        "g", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])]),
        opset_imports=[helper.make_opsetid("", 20)])
    model = ir.serde.deserialize_model(proto)
    cov = TARGET.coverage(model, argparse.Namespace())
    assert cov.delegated_ops == 0
    # an op left unmapped on purpose says why, in the words of the registry
    assert cov.fallback[0].reason.startswith("Asinh has no coreml mapping: MIL has no asinh")
    with pytest.raises(UnsupportedOpError) as err:
        _emit(model, tmp_path)
    e = err.value
    assert (e.op, e.node, e.target) == ("Asinh", "arsinh", "coreml")
    assert "onnx" in e.supported_by and "Asinh" in str(e) and "arsinh" in str(e)
    assert "overflows in fp16" in str(e)


def test_conditional_support_gives_the_reason(tmp_path: Path) -> None:
    nodes = [helper.make_node("ReduceMin", ["x"], ["lo"], keepdims=0, name="min"),
             helper.make_node("Clip", ["x", "lo"], ["y"], name="clip")]
    proto = helper.make_model(helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])]),
        opset_imports=[helper.make_opsetid("", 20)])
    model = ir.serde.deserialize_model(proto)
    assert TARGET.registry.support_status("Clip").startswith("conditional")
    with pytest.raises(UnsupportedOpError, match="input 1 must be a constant"):
        _emit(model, tmp_path)


def test_fp16_weights_in_the_ir_stay_fp16(tmp_path: Path) -> None:
    """A fp16 IR (our quantizer's fp16 scheme: fp16 initializers + Cast) -> fp16 constants."""
    from edgeexport import quantize

    model = small_cnn()
    fp32_size = (_emit(model, tmp_path / "a", precision="fp32") / WEIGHTS_PATH
                 / "weight.bin").stat().st_size
    holder = argparse.Namespace(model=model)
    quantize.apply(holder, "fp16")
    assert any(v.dtype == ir.DataType.FLOAT16 for v in model.graph.initializers.values())
    path = _emit(model, tmp_path / "b", precision="fp16")
    assert (path / WEIGHTS_PATH / "weight.bin").stat().st_size < 0.6 * fp32_size
    feeds = {"x": RNG.standard_normal((1, 3, 16, 16)).astype(np.float32)}
    want = reference.run(model, feeds)
    got = get_runtime("mil-interpreter").load(path).run(feeds)
    assert error_stats(want["logits"], got["logits"]).cosine >= 0.999


def _ort_qdq(model: ir.Model, tmp_path: Path) -> ir.Model:
    """onnxruntime's own static QDQ quantization: int8 per-channel weights, int8 activations."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.data = iter([{"x": RNG.standard_normal((1, 3, 16, 16)).astype(np.float32)}
                              for _ in range(8)])

        def get_next(self):
            return next(self.data, None)

    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    ir.save(model, str(src))
    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, extra_options={"ActivationSymmetric": False})
    # onnxruntime writes no shapes for the tensors it adds; the pipeline's passes would infer them
    return ir.serde.deserialize_model(onnx.shape_inference.infer_shapes(onnx.load(str(dst))))


@pytest.mark.parametrize("ios", [16, 17])
def test_onnxruntime_qdq_graph(ios: int, tmp_path: Path) -> None:
    import onnxruntime as ort
    from coremltools.converters.mil.frontend.milproto.load import load as load_proto

    qdq = _ort_qdq(small_cnn(), tmp_path)
    path = _emit(qdq, tmp_path / "out", precision="fp32", ios=ios)
    spec = check_package(path, ios=ios)
    ops = [op.op_type for op in load_proto(spec, spec.specificationVersion,
                                           str(path / WEIGHTS_PATH)).functions["main"].operations]
    assert ops.count("constexpr_affine_dequantize") == 3  # conv1, dw, fc weights stay int8
    assert ("quantize" in ops) == (ios >= 17)
    feeds = {"x": RNG.standard_normal((1, 3, 16, 16)).astype(np.float32)}
    got = get_runtime("mil-interpreter").load(path).run(feeds)["logits"]
    sess = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"])
    from_ort = sess.run(["logits"], feeds)[0]
    if ios >= 17:  # W8A8: the same integer grid as the QDQ graph
        want = reference.run(qdq, feeds)["logits"]
        assert error_stats(want, got).max_rel_err <= 1e-4
        assert error_stats(from_ort, got).cosine >= 0.999
    else:  # int8 weights, float activations clipped to the QDQ ranges (no rounding)
        assert error_stats(from_ort, got).cosine >= 0.99
        pairs = sum(n.op_type == "QuantizeLinear" for n in qdq.graph)
        assert ops.count("clip") == pairs  # one per activation Q -> DQ pair
