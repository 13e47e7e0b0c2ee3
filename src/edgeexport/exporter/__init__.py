"""The exporter: MODEL (file or factory) -> IR model in the edge profile, with sample inputs and
the PyTorch outputs on them, ready for the passes and for parity.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import onnx_ir as ir

import edgeexport
from edgeexport import ir as eir
from edgeexport import profile
from edgeexport.errors import UnsupportedOpError, UsageError
from edgeexport.exporter.capture import (capture, eager_function, example_specs,
                                         onnx_input_specs, run_eager, torch_inputs)
from edgeexport.exporter.checks import check_input_sizes, check_onnx, probe_capture
from edgeexport.exporter.inputs import InputSpec, parse_input_spec, sample_inputs
from edgeexport.exporter.loading import (ONNX, TORCHSCRIPT, LoadedModel, _forward_arg_names,
                                         load_model)

__all__ = ["ExportResult", "InputSpec", "export", "load_model", "parse_input_spec",
           "sample_inputs"]


@dataclass
class ExportResult:
    model: ir.Model
    loaded: LoadedModel
    inputs: list[InputSpec]
    sample: list[np.ndarray]
    eager: Callable[..., Any] | None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: a copy of the IR as exported, before passes and quantization (for ONNX sources, the
    #: parity reference when there is no PyTorch model)
    source_model: ir.Model | None = None
    _expected: list[np.ndarray] | None = field(default=None, repr=False)

    @property
    def expected(self) -> list[np.ndarray] | None:
        """PyTorch's outputs on `sample` (None for ONNX sources: no PyTorch model to ask).
        Computed on first use: running the model is validation's cost, not conversion's."""
        if self._expected is None and self.eager is not None:
            self._expected = run_eager(self.eager, self.inputs, self.sample, self.loaded.source)
        return self._expected


def resolve_specs(loaded: LoadedModel, given: list[InputSpec]) -> list[InputSpec]:
    """Input specs from --input-shape, else from the file; names filled from the model."""
    carried = onnx_input_specs(loaded) if loaded.kind == ONNX else example_specs(loaded)
    if not given:
        if carried is None:
            raise UsageError(f"{loaded.source}: the input shapes are not in the file; pass "
                             "--input-shape 1,3,224,224 (one per input, [name=]dims[:dtype])",
                             api=f"{loaded.source}: the input shapes are not known; pass "
                             "example_inputs (a tensor or a tuple of tensors, one per input)")
        return [InputSpec(s.name, tuple(1 if d is None else d for d in s.shape), s.dtype)
                if loaded.kind == ONNX else s for s in carried]
    names = [s.name for s in carried] if carried else list(loaded.input_names)
    if carried is not None:
        if len(given) != len(carried):
            raise UsageError(f"{loaded.source}: the model has {len(carried)} input(s) "
                             f"but {len(given)} --input-shape given")
        for g, c in zip(given, carried):
            if len(g.shape) != len(c.shape):
                raise UsageError(
                    f"{loaded.source}: input '{c.name}' has rank {len(c.shape)} "
                    f"({c.describe()}) but --input-shape gives rank {len(g.shape)}")
    specs = []
    for i, g in enumerate(given):
        name = g.name or (names[i] if i < len(names) and names[i] else f"input_{i}")
        dtype = g.dtype
        if carried is not None and g.dtype == np.float32 and carried[i].dtype != np.float32:
            dtype = carried[i].dtype  # dtype defaults to the file's when only dims were given
        specs.append(InputSpec(name, g.shape, np.dtype(dtype)))
    return specs


def export(model: Any, *, input_specs: list[InputSpec] | None = None,
           example_inputs: tuple | None = None, dynamic_batch: bool = False,
           trust_pickle: bool = False, output_names: list[str] | None = None,
           seed: int = 0, allow_cwd_import: bool = False) -> ExportResult:
    """Load MODEL (a path or `package.module:factory`, or an nn.Module from Python), capture it
    and lower it to the edge IR. Passes are not run here.

    `example_inputs` (tensors or arrays) fixes the shapes and is also the sample that parity
    is checked on; otherwise samples are generated from the input specs. A factory's module is
    looked for in the current directory only with `allow_cwd_import`.
    """
    start = time.perf_counter()
    loaded = module_source(model, example_inputs) if not isinstance(model, str) else (
        load_model(model, trust_pickle=trust_pickle, allow_cwd_import=allow_cwd_import))
    if loaded.kind == ONNX:
        check_onnx(loaded.onnx_model, loaded.source)
    specs = resolve_specs(loaded, list(input_specs or []))
    check_input_sizes(specs, loaded.source)
    eager = eager_function(loaded)
    trace_batch = 2 if dynamic_batch else None
    trace_specs = [InputSpec(s.name, ((None,) + s.shape[1:]) if dynamic_batch and s.shape
                             else s.shape, s.dtype) for s in specs]
    given = ([np.asarray(t.detach().numpy() if hasattr(t, "detach") else t)
              for t in example_inputs] if example_inputs is not None and not dynamic_batch
             else None)
    arrays = given or sample_inputs(trace_specs, seed=seed, batch=trace_batch)
    if loaded.kind == TORCHSCRIPT and loaded.program is None:
        probe_capture(loaded.module, torch_inputs(arrays), loaded.source)
    ir_model = capture(loaded, specs, arrays, dynamic_batch=dynamic_batch,
                       output_names=output_names)
    finalize(ir_model, loaded)
    source_copy = ir.from_proto(ir.to_proto(ir_model)) if eager is None else None
    specs = graph_input_specs(ir_model)
    # integer inputs that index an embedding table get samples inside the table
    if given:  # the IR may declare a 0-d input as [1] (torch.onnx): feed what the graph takes
        given = [a.reshape([d for d in s.shape]) if a.shape != s.shape and None not in s.shape
                 and a.size == int(np.prod(s.shape)) else a for a, s in zip(given, specs)]
    arrays = given or sample_inputs(specs, seed=seed, int_high=integer_input_ranges(ir_model),
                                    batch=trace_batch)
    return ExportResult(ir_model, loaded, specs, arrays, eager, time.perf_counter() - start,
                        source_model=source_copy)


def module_source(module: Any, example_inputs: tuple | None) -> LoadedModel:
    """An nn.Module handed over from Python (the API, the OpInfo sweep)."""
    import torch

    if not isinstance(module, torch.nn.Module):
        raise UsageError(f"expected a model path, package.module:factory or an nn.Module, "
                         f"got {type(module).__name__}")
    example = None if example_inputs is None else tuple(
        t if isinstance(t, torch.Tensor) else torch.from_numpy(np.asarray(t))
        for t in example_inputs)
    try:
        module = module.eval()
    except NotImplementedError:  # an ExportedProgram's module(): already in inference form
        pass
    return LoadedModel("module", type(module).__name__, module=module,
                       example_inputs=example, input_names=_forward_arg_names(module))


def finalize(model: ir.Model, loaded: LoadedModel) -> None:
    """Inline functions, check the edge profile, record where the model came from."""
    from onnx_ir.passes.common import InlinePass, RemoveUnusedFunctionsPass, RemoveUnusedNodesPass

    if model.functions:
        InlinePass()(model)
        RemoveUnusedFunctionsPass()(model)
    RemoveUnusedNodesPass()(model)
    for node in eir.iter_nodes(model.graph):
        reason = profile.check_node(node)
        if reason is not None:
            raise UnsupportedOpError(node.op_type, node.name or "?", reason=reason,
                                     source=node_source(node), supported_by=[])
    import torch

    model.producer_name, model.producer_version = "edgeexport", edgeexport.__version__
    props = model.metadata_props
    props["edgeexport.version"] = edgeexport.__version__
    props["edgeexport.torch_version"] = torch.__version__
    props["edgeexport.source_kind"] = loaded.kind
    if loaded.sha256:
        props["edgeexport.source_sha256"] = loaded.sha256


def node_source(node: ir.Node) -> str | None:
    """Where a node came from in the PyTorch model, from the exporter's metadata."""
    ns = node.metadata_props.get("namespace")
    if ns:
        parts = [p.split(":")[0].strip() for p in ns.split("/")]
        scope = ".".join(p for p in parts[:-1] if p)
        op = ns.rsplit(":", 1)[-1].strip()
        return f"{scope or '<top>'} ({op})"
    return node.metadata_props.get("pkg.torch.onnx.fx_node")


def graph_input_specs(model: ir.Model) -> list[InputSpec]:
    specs = []
    for v in model.graph.inputs:
        if v.name in model.graph.initializers:
            continue
        dims = tuple(d if isinstance(d, int) else None for d in (v.shape or ()))
        specs.append(InputSpec(v.name, dims, eir.np_dtype(v.dtype)))
    return specs


def integer_input_ranges(model: ir.Model) -> dict[str, int]:
    """For integer inputs used as Gather indices into a constant table: the table's length."""
    ranges: dict[str, int] = {}
    for v in model.graph.inputs:
        if v.dtype not in (ir.DataType.INT64, ir.DataType.INT32):
            continue
        for node, idx in v.uses():
            if node.op_type == "Gather" and idx == 1:
                table = eir.initializer_array(node.inputs[0])
                axis = node.attributes.get("axis")
                axis = axis.as_int() if axis is not None else 0
                if table is not None:
                    ranges[v.name] = min(ranges.get(v.name, 1 << 62), table.shape[axis])
    return ranges

