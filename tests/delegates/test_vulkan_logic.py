"""Casts, boolean logic and integer comparisons on ncnn (CPU and Vulkan) against onnxruntime:
each op reads int64/bool/float inputs and its result is cast to float (ncnn outputs floats).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeexport.delegates.vulkan import REGISTRY
from edgeexport.delegates.vulkan.emit import emit_model
from edgeexport.runtimes import get
from tests.conftest import require_vulkan

RNG = np.random.default_rng(1)
B, I64, F = TensorProto.BOOL, TensorProto.INT64, TensorProto.FLOAT
TABLE = RNG.uniform(-2, 2, (10, 4)).astype(np.float32)  # an embedding table (initializer)
RUNTIMES = ["ncnn-cpu", pytest.param("ncnn-vulkan", marks=pytest.mark.vulkan)]


def _mask(*shape: int) -> np.ndarray:
    return RNG.integers(0, 2, shape).astype(np.int64)


def _ints(*shape: int) -> np.ndarray:
    return RNG.integers(-3, 4, shape).astype(np.int64)


def _model(nodes: list, inputs: dict[str, np.ndarray]) -> onnx.ModelProto:
    """`nodes` end in 'r'; a Cast to float makes it the output 'y'."""
    vi = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
          for n, a in inputs.items()]
    nodes = nodes + [helper.make_node("Cast", ["r"], ["y"], to=F)]
    graph = helper.make_graph(nodes, "logic", vi, [helper.make_tensor_value_info("y", F, None)],
                              [numpy_helper.from_array(TABLE, "table"),
                               numpy_helper.from_array(np.array([-1], np.int64), "last")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    return onnx.shape_inference.infer_shapes(proto, strict_mode=True)


def _cast_bool(src: str, dst: str) -> onnx.NodeProto:
    return helper.make_node("Cast", [src], [dst], to=B)


CASES = {
    # HF BERT: int64 mask -> bool -> And with a broadcast -> back to float
    "Cast-int-bool": ([_cast_bool("m", "r")], {"m": _ints(1, 8)}),
    "Cast-float-int": ([helper.make_node("Cast", ["x"], ["r"], to=I64)],
                       {"x": RNG.uniform(-3, 3, (1, 6)).astype(np.float32)}),
    "Cast-bool-int": ([_cast_bool("m", "b"), helper.make_node("Cast", ["b"], ["r"], to=I64)],
                      {"m": _mask(1, 8)}),
    "Not": ([_cast_bool("m", "b"), helper.make_node("Not", ["b"], ["r"])], {"m": _mask(1, 8)}),
    "And": ([_cast_bool("m", "b"), _cast_bool("k", "c"),
             helper.make_node("And", ["b", "c"], ["r"])], {"m": _mask(1, 1, 6), "k": _mask(1, 5, 1)}),
    "Or": ([_cast_bool("m", "b"), _cast_bool("k", "c"),
            helper.make_node("Or", ["b", "c"], ["r"])], {"m": _mask(1, 4, 6), "k": _mask(1, 4, 6)}),
    "Equal": ([helper.make_node("Equal", ["a", "z"], ["r"])], {"a": _ints(1, 3, 8), "z": _ints(1, 3, 8)}),
    "Greater": ([helper.make_node("Greater", ["a", "z"], ["r"])], {"a": _ints(2, 8), "z": _ints(2, 8)}),
    "Less": ([helper.make_node("Less", ["a", "z"], ["r"])], {"a": _ints(2, 8), "z": _ints(1, 8)}),
    "GreaterOrEqual": ([helper.make_node("GreaterOrEqual", ["a", "z"], ["r"])],
                       {"a": _ints(2, 8), "z": _ints(2, 8)}),
    "LessOrEqual": ([helper.make_node("LessOrEqual", ["a", "z"], ["r"])],
                    {"a": _ints(2, 8), "z": _ints(2, 8)}),
    # integer arithmetic that float blobs hold exactly (RoBERTa's/DeBERTa's position ids)
    "Mul-int": ([helper.make_node("Mul", ["a", "z"], ["p"]),
                 helper.make_node("Sub", ["p", "a"], ["r"])], {"a": _ints(2, 8), "z": _ints(2, 8)}),
    # RoBERTa's position ids: an embedding of ids computed in the graph (a nearest GridSample)
    "Gather-computed-ids": ([helper.make_node("Add", ["a", "z"], ["p"]),
                             helper.make_node("Gather", ["table", "p"], ["r"])],
                            {"a": RNG.integers(0, 5, (1, 6)), "z": RNG.integers(0, 5, (1, 6))}),
    # RoBERTa's input_ids: both embedded and compared with the padding id
    "Gather-shared-ids": ([helper.make_node("Gather", ["table", "ids"], ["g"]),
                           helper.make_node("Cast", ["ids"], ["f"], to=F),
                           helper.make_node("Unsqueeze", ["f", "last"], ["u"]),
                           helper.make_node("Add", ["g", "u"], ["r"])],
                          {"ids": RNG.integers(0, 10, (1, 6))}),
    # the safe softmax guard: IsInf(-inf) -> float -> (ReduceMin) -> Cast to bool of 0/1 floats
    "IsInf": ([helper.make_node("IsInf", ["x"], ["i"], detect_positive=0),
               helper.make_node("Cast", ["i"], ["f"], to=F), _cast_bool("f", "r")],
              {"x": np.array([[-np.inf, 2, np.inf, 0], [-np.inf] * 4], np.float32)}),
    "IsInf-both": ([helper.make_node("IsInf", ["x"], ["r"])],
                   {"x": np.array([[-np.inf, np.inf, 3, 3.4e38, -3.4e38]], np.float32)}),
    "IsInf-positive": ([helper.make_node("IsInf", ["x"], ["r"], detect_negative=0)],
                       {"x": np.array([[-np.inf, np.inf, 3, 3.4e38, -3.4e38]], np.float32)}),
}


def _ort(proto: onnx.ModelProto, feeds: dict) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(["y"], feeds)[0]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("name", list(CASES))
def test_logic_matches_onnxruntime(name: str, runtime: str, tmp_path) -> None:
    if runtime == "ncnn-vulkan":
        require_vulkan()
    nodes, feeds = CASES[name]
    proto = _model(nodes, feeds)
    model = ir.serde.deserialize_model(proto)
    for node in model.graph:
        assert REGISTRY.why_not(node) is None, (node.op_type, REGISTRY.why_not(node))
    emit_model(model, tmp_path, "model.param", "fp32")
    got = get(runtime).load(tmp_path / "model.param").run(feeds)["y"]
    want = _ort(proto, feeds)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def _node(nodes: list, feeds: dict, op: str) -> ir.Node:
    model = ir.serde.deserialize_model(_model(nodes, feeds))
    return next(n for n in model.graph if n.op_type == op)


def test_float_comparison_and_float_to_bool_are_refused_with_the_reason() -> None:
    x = {"x": np.zeros((1, 4), np.float32), "w": np.zeros((1, 4), np.float32)}
    reason = REGISTRY.why_not(_node([helper.make_node("Less", ["x", "w"], ["r"])], x, "Less"))
    assert reason is not None and "float values" in reason
    reason = REGISTRY.why_not(_node([_cast_bool("x", "r")], x, "Cast"))
    assert reason is not None and "0/1" in reason
    i = {"x": _ints(1, 4), "w": _ints(1, 4)}
    reason = REGISTRY.why_not(_node([helper.make_node("Div", ["x", "w"], ["r"])], i, "Div"))
    assert reason is not None and "integer Div" in reason


def _computed_ids_gather(rows: int, dim: int) -> tuple[onnx.ModelProto, dict, np.ndarray]:
    """table[a + z] for a table of `rows` rows; the ids hit both ends of the table."""
    table = RNG.standard_normal((rows, dim)).astype(np.float32)
    a, z = RNG.integers(0, rows // 2, (2, 1, 24))
    a[0, :2], z[0, :2] = (0, rows // 2 - 1), (0, rows - rows // 2)  # ids 0 and rows - 1
    vi = [helper.make_tensor_value_info(n, I64, (1, 24)) for n in "az"]
    graph = helper.make_graph([helper.make_node("Add", ["a", "z"], ["p"]),
                               helper.make_node("Gather", ["table", "p"], ["y"])], "gather", vi,
                              [helper.make_tensor_value_info("y", F, None)],
                              [numpy_helper.from_array(table, "table")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    return onnx.shape_inference.infer_shapes(proto, strict_mode=True), {"a": a, "z": z}, table


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_gather_of_computed_ids_from_a_vocabulary_sized_table_is_exact(runtime: str,
                                                                      tmp_path) -> None:
    """RoBERTa's real vocabulary (50265 rows): the GridSample coordinate of every id lands on
    its row, with no per-row cost (a one-hot product would be 50265 x dim per id)."""
    if runtime == "ncnn-vulkan":
        require_vulkan()
    proto, feeds, table = _computed_ids_gather(50265, 8)
    emit_model(ir.serde.deserialize_model(proto), tmp_path, "model.param", "fp32")
    assert "GridSample" in (tmp_path / "model.param").read_text()
    got = get(runtime).load(tmp_path / "model.param").run(feeds)["y"]
    np.testing.assert_array_equal(got, table[feeds["a"] + feeds["z"]])


def test_gather_of_computed_ids_refuses_what_it_cannot_address_exactly(tmp_path) -> None:
    from edgeexport.delegates.vulkan.ops.shape import GRID_MAX_ROWS
    from edgeexport.errors import ConversionError

    proto, _, _ = _computed_ids_gather(GRID_MAX_ROWS + 1, 1)
    model = ir.serde.deserialize_model(proto)
    reason = REGISTRY.why_not(next(n for n in model.graph if n.op_type == "Gather"))
    assert reason is not None and f"up to {GRID_MAX_ROWS} rows" in reason
    # fp16 blobs hold whole numbers exactly up to 2048: larger tables need fp32
    proto, _, _ = _computed_ids_gather(2050, 4)
    with pytest.raises(ConversionError, match="--precision fp32"):
        emit_model(ir.serde.deserialize_model(proto), tmp_path, "model.param", "fp16")
    emit_model(ir.serde.deserialize_model(_computed_ids_gather(2049, 4)[0]), tmp_path,
               "model.param", "fp16")
