"""Direct lowering: a torch.export program (ATen ops, static shapes) to the IR, one FX node at a
time, with no ONNX exporter in between (~20x faster than torch.onnx on MobileNetV2).

`lower_program` raises NotLowerable for what it does not map (an op without a lowering, symbolic
shapes, mutated buffers); the exporter then falls back to torch.onnx and records why.
"""

from __future__ import annotations

import operator
from typing import Any, Sequence

import numpy as np
import onnx_ir as ir

from edgeexport import ir as eir
from edgeexport.exporter.aten.context import Context, NotLowerable, np_dtype
from edgeexport.exporter.aten.registry import LOWERINGS
from edgeexport.exporter.aten import (  # noqa: F401  (registers the lowerings)
    ops_index, ops_nn, ops_pointwise, ops_pool, ops_shape,
)

__all__ = ["LOWERINGS", "NotLowerable", "lower_program"]

#: ops that only assert facts torch.export already checked; they produce nothing
_ASSERTS = ("_assert_tensor_metadata", "_assert_scalar", "sym_constrain_range",
            "sym_constrain_range_for_size", "_assert_async")


def lower_program(program: Any, input_names: Sequence[str],
                  output_names: Sequence[str] | None) -> ir.Model:
    """Lower an ExportedProgram to an IR model at eir.OPSET."""
    import torch
    from torch.export.graph_signature import InputKind, OutputKind

    sig = program.graph_signature
    if any(s.kind != OutputKind.USER_OUTPUT for s in sig.output_specs):
        raise NotLowerable("the program mutates buffers or inputs")
    ctx = Context()
    params = {**program.state_dict, **program.constants}
    user_inputs: list[ir.Value] = []
    for spec in sig.input_specs:
        node = _placeholder(program, spec.arg.name)
        if spec.kind == InputKind.USER_INPUT:
            if not isinstance(spec.arg, torch.export.graph_signature.TensorArgument):
                raise NotLowerable("a non-tensor input")
            ctx.fx_node = node
            name = input_names[len(user_inputs)] if len(user_inputs) < len(input_names) else node.name
            value = ir.Value(name=ctx.unique(name), shape=ir.Shape(ctx.shape(node)),
                             type=ir.TensorType(ir.DataType.from_numpy(ctx.dtype(node))))
            user_inputs.append(value)
            ctx.env[node] = value
        elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR):
            ctx.env[node] = _array(params[spec.target])
            ctx.const_names[node] = spec.target  # initializers keep their state_dict names
        else:
            raise NotLowerable(f"input kind {spec.kind.name}")

    outputs: list[Any] = []
    for node in program.graph.nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            outputs = list(node.args[0]) if isinstance(node.args[0], (list, tuple)) else [node.args[0]]
            continue
        if node.op != "call_function":
            raise NotLowerable(f"{node.op} nodes")
        ctx.begin(node)
        ctx.env[node] = _lower_node(ctx, node)

    graph_outputs = _outputs(ctx, outputs, output_names, user_inputs)
    graph = ir.Graph(user_inputs, graph_outputs, nodes=ctx.nodes,
                     initializers=list(ctx.initializers.values()),
                     opset_imports={"": eir.OPSET}, name="main_graph")
    return ir.Model(graph, ir_version=10, producer_name="edgeexport")


def _placeholder(program: Any, name: str) -> Any:
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name == name:
            return node
    raise NotLowerable(f"placeholder {name} not found")


def _array(tensor: Any) -> np.ndarray:
    import torch

    if not isinstance(tensor, torch.Tensor):
        raise NotLowerable(f"a constant of type {type(tensor).__name__}")
    np_dtype(tensor.dtype)
    return tensor.detach().cpu().contiguous().numpy().copy()


def _lower_node(ctx: Context, node: Any) -> Any:
    target = node.target
    if target is operator.getitem:
        got = ctx.env[node.args[0]]
        if isinstance(got, (tuple, list)) and got[node.args[1]] is None and not node.users:
            return None  # an output nobody reads
        if not isinstance(got, (tuple, list)) or got[node.args[1]] is None:
            raise NotLowerable(f"output {node.args[1]} of {node.args[0].target}")
        return got[node.args[1]]
    name = getattr(target, "__name__", str(target))
    if getattr(target, "namespace", None) == "aten" and name.split(".")[0] in _ASSERTS:
        return None
    if _all_constant(ctx, node):
        return _evaluate(ctx, node)
    schema = getattr(target, "_schema", None)
    inplace = schema is not None and bool(schema.arguments) and _is_inplace(schema)
    if inplace:
        _check_unaliased(node)
    if _all_constant(ctx, node):
        result = _evaluate(ctx, node)
    elif inplace:
        result = _lower_inplace(ctx, node, schema)
    else:
        fn = LOWERINGS.get(target)
        if fn is None:
            raise NotLowerable(f"no lowering for {target}")
        result = fn(ctx, node, *node.args, **node.kwargs)
    if inplace:  # later readers of the mutated tensor see the result
        ctx.env[node.args[0]] = result
    return result


def _is_inplace(schema: Any) -> bool:
    info = schema.arguments[0].alias_info
    return info is not None and info.is_write and not schema.name.endswith("_out")


def _is_view(node: Any) -> bool:
    schema = getattr(node.target, "_schema", None)
    if schema is None or not schema.returns:
        return False
    info = schema.returns[0].alias_info
    return info is not None and not info.is_write


def _check_unaliased(node: Any) -> None:
    """`relu_(x)` is lowered as `relu(x)` with later readers of x seeing the result: only sound
    when x aliases nothing (not a view, an input or a parameter, and no view of it is read)."""
    base = node.args[0]
    if base.op != "call_function" or _is_view(base) or any(
            _is_view(u) for u in base.users if u is not node):
        raise NotLowerable(f"{node.target} on a tensor that aliases another")


def _lower_inplace(ctx: Context, node: Any, schema: Any) -> Any:
    import torch

    packet = getattr(torch.ops.aten, schema.name.split("::")[-1][:-1], None)
    functional = getattr(packet, node.target._overloadname, None) if packet else None
    fn = LOWERINGS.get(functional)
    if fn is None:
        raise NotLowerable(f"no lowering for {node.target}")
    return fn(ctx, node, *node.args, **node.kwargs)


def _all_constant(ctx: Context, node: Any) -> bool:
    """True when no input of the node depends on the model's inputs (arange, weight.t(), ...)."""
    import torch

    if torch.Tag.nondeterministic_seeded in getattr(node.target, "tags", ()):
        return False  # randn at export time would freeze one draw into the model
    for arg in node.all_input_nodes:
        if ctx.constant(arg) is None:
            return False
    return isinstance(node.target, torch._ops.OpOverload) and _is_tensor_result(node)


def _is_tensor_result(node: Any) -> bool:
    val = node.meta.get("val")
    return val is not None and hasattr(val, "shape") and all(isinstance(d, int) for d in val.shape)


def _evaluate(ctx: Context, node: Any) -> np.ndarray:
    """Run the op with PyTorch on the constant inputs: the result is exactly PyTorch's."""
    import torch

    def real(a: Any) -> Any:
        if isinstance(a, torch.fx.Node):
            return torch.from_numpy(np.array(ctx.constant(a)))
        if isinstance(a, (list, tuple)):
            return type(a)(real(x) for x in a)
        return a

    kwargs = {k: real(v) for k, v in node.kwargs.items()}
    if "device" in kwargs:
        kwargs["device"] = "cpu"
    kwargs.pop("pin_memory", None)
    with torch.no_grad():
        out = node.target(*real(node.args), **kwargs)
    return _array(out)


def _outputs(ctx: Context, outputs: list[Any], names: Sequence[str] | None,
             inputs: list[ir.Value]) -> list[ir.Value]:
    result: list[ir.Value] = []
    for i, fx_out in enumerate(outputs):
        if fx_out is None or not hasattr(fx_out, "op"):
            raise NotLowerable("a non-tensor output")
        ctx.fx_node = fx_out
        value = ctx.value(fx_out)
        name = names[i] if names and i < len(names) else None
        if value in inputs or value.const_value is not None or value in result or (
                value.producer() is None):
            value = ctx.op("Identity", [value], shape=value.shape, dtype=eir.np_dtype(value.dtype))
        if name is not None:
            ctx._names.discard(value.name)
            if name in ctx._names:  # another value already has the name: free it
                _rename_other(ctx, name)
            value.name = name
            ctx._names.add(name)
        result.append(value)
    return result


def _rename_other(ctx: Context, name: str) -> None:
    for node in ctx.nodes:
        for out in node.outputs:
            if out.name == name:
                out.name = ctx.unique(f"{name}_inner")
                return
    for value in list(ctx.initializers.values()):
        if value.name == name:
            del ctx.initializers[name]
            value.name = ctx.unique(f"{name}_inner")
            ctx.initializers[value.name] = value
            return
