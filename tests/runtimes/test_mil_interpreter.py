"""The mil-interpreter runtime: executes what the ML Program states (fp16 rounding between ops,
coremltools' value inference), maps names back to the IR, exposes intermediates; and the
coreml runtime says why it cannot run off macOS.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeexport.delegates.coreml import TARGET
from edgeexport.runtimes import artifact_format, get, runtimes_for


def _model(big: float = 2048.0) -> ir.Model:
    """y = (x + big) - big: exact in fp32 for small integers, rounds to a multiple of 2 in fp16."""
    nodes = [helper.make_node("Add", ["x", "big"], ["s"], name="add"),
             helper.make_node("Sub", ["s", "big"], ["y"], name="sub")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(np.array(big, np.float32), "big")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    return ir.serde.deserialize_model(onnx.shape_inference.infer_shapes(proto))


def _emit(tmp_path: Path, precision: str) -> Path:
    out = tmp_path / precision
    out.mkdir()
    return TARGET.emit(_model(), out, argparse.Namespace(precision=precision)).path


def test_fp16_programs_round_between_ops_like_the_program_states(tmp_path: Path) -> None:
    x = np.array([[1, 2, 3, 5]], np.float32)
    fp32 = get("mil-interpreter").load(_emit(tmp_path, "fp32")).run({"x": x})["y"]
    fp16 = get("mil-interpreter").load(_emit(tmp_path, "fp16")).run({"x": x})["y"]
    np.testing.assert_array_equal(fp32, x)
    # 2049, 2051 and 2053 are not fp16 numbers: the sum is rounded (half to even) before the sub
    np.testing.assert_array_equal(fp16, (x.astype(np.float16) + np.float16(2048))
                                  .astype(np.float16) - np.float16(2048))
    assert fp16.dtype == np.float32  # outputs are cast back, as the program's last op says
    assert not np.array_equal(fp16, x)


def test_uses_coremltools_value_inference_where_it_exists(tmp_path: Path) -> None:
    from coremltools.converters.mil.mil.operation import Operation

    from edgeexport.runtimes.mil import KERNELS, MilProgram

    program = MilProgram(_emit(tmp_path, "fp16"))
    computed = [op for op in program.ops if op.op_type != "const"]
    assert [op.op_type for op in computed] == ["cast", "add", "sub", "cast"]
    for op in computed:  # none of these has a kernel of ours: coremltools' definition runs
        assert op.op_type not in KERNELS
        assert type(op).value_inference is not Operation.value_inference


def test_run_all_and_names(tmp_path: Path) -> None:
    session = get("mil-interpreter").load(_emit(tmp_path, "fp32"))
    x = np.ones((1, 4), np.float32)
    every = session.run_all({"x": x})
    assert {"x", "s", "y"} <= set(every)
    np.testing.assert_array_equal(every["s"], x + 2048)
    assert session.details["opset"] == "iOS16"
    with pytest.raises(ValueError, match="missing input 'x'"):
        session.run({})


def test_fp32_conv_matches_pytorch_and_repeats_exactly(tmp_path: Path) -> None:
    """The interpreter's own conv kernel against PyTorch's; and the same bits on every run (a
    GEMM's float sums depend on BLAS's thread count, which the interpreter holds at one)."""
    import torch

    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 32, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64, 28, 28])],
        [numpy_helper.from_array(w, "w")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model = ir.serde.deserialize_model(onnx.shape_inference.infer_shapes(proto))
    path = TARGET.emit(model, tmp_path, argparse.Namespace(precision="fp32")).path
    x = rng.standard_normal((1, 32, 28, 28)).astype(np.float32)
    session = get("mil-interpreter").load(path)
    got = session.run({"x": x})["y"]
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(session.run({"x": x})["y"], got)


def test_kernels_agree_with_coremltools_value_inference() -> None:
    """Where the interpreter replaces coremltools' value inference (slow, or None past its
    folding size), the kernel must compute the same thing on what both can do."""
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import Function

    from edgeexport.runtimes.mil import KERNELS

    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 5)).astype(np.float32)
    with Function({}):
        for lower, upper in ((-1, -1), (0, -1), (-1, 0), (1, 2), (2, -1)):
            op = mb.band_part(x=x, lower=lower, upper=upper).op
            np.testing.assert_array_equal(
                KERNELS["band_part"](op, {"x": x, "lower": np.int32(lower),
                                          "upper": np.int32(upper)})[0], op.outputs[0].val)
        for start, end, step in ((0, 7, 1), (-3, 20, 4), (5, -6, -2)):
            op = mb.range_1d(start=np.int32(start), end=np.int32(end), step=np.int32(step)).op
            got = KERNELS["range_1d"](op, {"start": np.int32(start), "end": np.int32(end),
                                           "step": np.int32(step)})[0]
            np.testing.assert_array_equal(got, op.outputs[0].val)
        for reverse in (False, True):  # (its exclusive=True is the case that breaks)
            op = mb.cumsum(x=x, axis=1, reverse=reverse).op
            got = KERNELS["cumsum"](op, {"x": x, "axis": np.int32(1), "reverse": reverse,
                                         "exclusive": False})[0]
            np.testing.assert_allclose(got, op.outputs[0].val, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", ["CRD", "DCR"])
def test_depth_to_space_modes_against_pytorch(mode: str, tmp_path: Path) -> None:
    """CRD is PyTorch's pixel_shuffle; DCR is the same after regrouping the channels."""
    import torch

    graph = helper.make_graph(
        [helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=3, mode=mode, name="d2s")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 18, 2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 9])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model = ir.serde.deserialize_model(proto)
    path = TARGET.emit(model, tmp_path, argparse.Namespace(precision="fp32")).path
    x = np.random.default_rng(2).standard_normal((1, 18, 2, 3)).astype(np.float32)
    t = torch.from_numpy(x)
    if mode == "DCR":  # channels (block row, block col, c) -> (c, block row, block col)
        t = t.reshape(1, 3, 3, 2, 2, 3).permute(0, 3, 1, 2, 4, 5).reshape(1, 18, 2, 3)
    want = torch.nn.functional.pixel_shuffle(t, 3).numpy()
    got = get("mil-interpreter").load(path).run({"x": x})["y"]
    np.testing.assert_array_equal(got, want)


def test_artifact_format_and_runtimes(tmp_path: Path) -> None:
    path = _emit(tmp_path, "fp32")
    assert artifact_format(path) == "mlpackage"
    assert runtimes_for("mlpackage") == ["mil-interpreter", "coreml"]
    assert get("mil-interpreter").unavailable_reason() is None


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the off-macOS behaviour")
def test_coreml_runtime_is_unavailable_off_macos(tmp_path: Path) -> None:
    runtime = get("coreml")
    reason = runtime.unavailable_reason()
    assert reason is not None and "macOS" in reason
    with pytest.raises(RuntimeError, match="macOS"):
        runtime.load(_emit(tmp_path, "fp32"))
