"""ONNX's node conformance cases on the reference runtime: every case it claims must pass.

A case is claimed when all its ops are edge-profile ops with kernels, all attributes are listed in
the profile, all dtypes are claimed by the kernels, the kernels accept the attribute and input
values, and each op's definition at the case's opset is the one at the IR opset. Everything else
is skipped with the precise reason.
"""

from __future__ import annotations

import warnings
from typing import Any

import ml_dtypes
import numpy as np
import onnx
import onnx.defs
import onnx.numpy_helper
import onnx.shape_inference
import onnx_ir as ir
import pytest

from edgeexport.ir import OPSET, np_dtype
from edgeexport.profile import EDGE_PROFILE
from edgeexport.runtimes.reference import node_attributes, run
from edgeexport.runtimes.reference.kernels import KERNELS

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the case generators overflow on purpose (casts)
    from onnx.backend.test.case.node import collect_testcases

    CASES = sorted(collect_testcases(), key=lambda c: c.name)

#: Claimed cases measured when this test was written; claims may grow but never shrink silently.
CLAIMED_FLOOR = 481

_NARROW = {np.dtype(t) for t in (ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn,
                                 ml_dtypes.float8_e4m3fnuz, ml_dtypes.float8_e5m2,
                                 ml_dtypes.float8_e5m2fnuz, ml_dtypes.int4, ml_dtypes.uint4)}


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), OPSET)


def _value_types(model: onnx.ModelProto) -> dict[str, np.dtype | None]:
    """Element type of every typed value (after shape inference), None where numpy has none."""
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference is best effort; the data sets still give the graph's ends
        pass
    types: dict[str, np.dtype | None] = {}
    for vi in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            try:
                types[vi.name] = np_dtype(ir.DataType(vi.type.tensor_type.elem_type))
            except Exception:
                types[vi.name] = None
    for init in model.graph.initializer:
        types[init.name] = np_dtype(ir.DataType(init.data_type))
    return types


def why_not_claimed(case: Any) -> str | None:
    """None when the reference claims the case, else why not (the pytest skip reason)."""
    model: onnx.ModelProto = case.model
    opset = _opset(model)
    if model.functions:
        return "uses model-local functions"
    for vi in [*model.graph.input, *model.graph.output]:
        if not vi.type.HasField("tensor_type"):
            return f"non-tensor type ({vi.type.WhichOneof('value')}) for '{vi.name}'"
    types = _value_types(model)
    known = {vi.name: _array(a) for vi, a in zip(model.graph.input, case.data_sets[0][0])}
    ir_graph = ir.from_proto(model).graph
    for proto, node in zip(model.graph.node, ir_graph):
        op = proto.op_type
        if proto.domain not in ("", "ai.onnx"):
            return f"{proto.domain}::{op} is not in the edge profile"
        if op not in EDGE_PROFILE:
            return f"{op} is not in the edge profile"
        if op not in KERNELS:
            return f"{op} has no reference kernel"
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
               for a in proto.attribute):
            return f"{op} has a subgraph"
        unknown = sorted(a.name for a in proto.attribute
                         if a.name not in EDGE_PROFILE[op].attributes)
        if unknown:
            return f"{op} attribute(s) {', '.join(unknown)} not in the edge profile"
        here = onnx.defs.get_schema(op, opset).since_version
        ours = onnx.defs.get_schema(op, OPSET).since_version
        if here != ours:
            return f"{op}-{here} (case opset {opset}) is not {op}-{ours} of opset {OPSET}"
        kernel = KERNELS[op]
        schema = onnx.defs.get_schema(op, OPSET)
        variables = {c.type_param_str for c in schema.type_constraints}
        for names, formals in ((proto.input, schema.inputs), (proto.output, schema.outputs)):
            for i, name in enumerate(names):
                if not name or not formals:
                    continue
                var = formals[min(i, len(formals) - 1)].type_str
                dtype = types.get(name, getattr(known.get(name), "dtype", None))
                if var not in variables:
                    continue
                if dtype is None:
                    return f"{op}: cannot tell the dtype of '{name}' ({var})"
                if not kernel.claims_dtype(var, dtype):
                    return f"{op}: {var}={dtype} not claimed"
        inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
        inputs = [known.get(name, inits.get(name)) if name else None for name in proto.input]
        reason = kernel.why_not(node_attributes(node), inputs)
        if reason:
            return f"{op}: {reason}"
    return None


def _array(a: Any) -> np.ndarray:
    """Case data is numpy, or a TensorProto for types numpy lacks (float8, bfloat16, ...)."""
    return onnx.numpy_helper.to_array(a) if isinstance(a, onnx.TensorProto) else np.asarray(a)


def _as_comparable(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) if a.dtype in _NARROW else a


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_onnx_node_case(case: Any) -> None:
    reason = why_not_claimed(case)
    if reason:
        pytest.skip(reason)
    model = ir.from_proto(case.model)
    names = [v.name for v in model.graph.inputs]
    for inputs, expected in case.data_sets:
        feeds = {name: _array(a) for name, a in zip(names, inputs)}
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a claimed case must not warn either
            actual = run(model, feeds)
        for out, want in zip(model.graph.outputs, expected):
            got, want = actual[out.name], _array(want)
            assert got.dtype == want.dtype, f"{out.name}: dtype {got.dtype}, expected {want.dtype}"
            assert got.shape == want.shape, f"{out.name}: shape {got.shape}, expected {want.shape}"
            np.testing.assert_allclose(_as_comparable(got), _as_comparable(want), rtol=case.rtol,
                                       atol=case.atol, equal_nan=True, err_msg=out.name)


def test_claims_do_not_shrink() -> None:
    claimed = [c.name for c in CASES if why_not_claimed(c) is None]
    print(f"{len(claimed)} of {len(CASES)} ONNX node cases claimed by the reference runtime")
    assert len(claimed) >= CLAIMED_FLOOR


def test_every_profile_op_has_a_kernel_taking_all_its_attributes() -> None:
    assert set(KERNELS) == set(EDGE_PROFILE)
    for op, spec in EDGE_PROFILE.items():
        assert spec.reference_kernel is KERNELS[op]
        assert set(KERNELS[op].attributes) == spec.attributes, op
