"""Capture a loaded model with torch.export and lower it to the IR (ONNX at edgeexport.ir.OPSET).

TorchScript archives go through TS2EPConverter to an ExportedProgram, and fall back to the
TorchScript ONNX exporter when the converter cannot handle them. ONNX files are converted to OPSET.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Any, Callable, Iterator

import numpy as np
import onnx_ir as ir

from edgeexport import ir as eir
from edgeexport.errors import ConversionError, UsageError
from edgeexport.exporter.aten import NotLowerable, lower_program
from edgeexport.exporter.inputs import InputSpec
from edgeexport.exporter.loading import ONNX, TORCHSCRIPT, LoadedModel, _first_line


#: metadata key recording how the program was lowered: "direct", or "torch.onnx (why)"
LOWERING_PROP = "edgeexport.lowering"


@contextlib.contextmanager
def quiet_torch() -> Iterator[None]:
    """torch.export and torch.onnx log warnings and print banners; users see our one line only."""
    loggers = [logging.getLogger(n) for n in ("torch", "torch.onnx", "torch.export", "onnxscript",
                                              "torch._export", "torch.fx", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def torch_inputs(arrays: list[np.ndarray]) -> tuple:
    import torch

    # (np.ascontiguousarray would make 0-d inputs 1-d)
    return tuple(torch.from_numpy(np.asarray(a, order="C")) for a in arrays)


def eager_function(loaded: LoadedModel) -> Callable[..., Any] | None:
    """The PyTorch computation to compare with (None for ONNX sources)."""
    if loaded.module is not None:
        return loaded.module
    if loaded.program is not None:
        return loaded.program.module()
    return None


def run_eager(fn: Callable[..., Any], specs: list[InputSpec], arrays: list[np.ndarray],
              source: str) -> list[np.ndarray]:
    """Run PyTorch on numpy inputs; a failure here is (almost always) a wrong --input-shape."""
    import torch

    try:
        with torch.no_grad(), quiet_torch():
            out = fn(*torch_inputs(arrays))
    except Exception as exc:
        shapes = " ".join(s.describe() for s in specs)
        raise UsageError(f"{source}: the model does not accept inputs {shapes} "
                         f"({_first_line(exc)}); check --input-shape") from None
    return [t.detach().cpu().numpy() for t in flatten_outputs(out)]


def flatten_outputs(out: Any) -> list[Any]:
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in flatten_outputs(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in flatten_outputs(o)]
    return [out]


def capture(loaded: LoadedModel, specs: list[InputSpec], arrays: list[np.ndarray], *,
            dynamic_batch: bool, output_names: list[str] | None) -> ir.Model:
    """Lower the loaded model to the IR, traced on `arrays`."""
    if loaded.kind == ONNX:
        return _from_onnx(loaded, specs, dynamic_batch)
    import torch

    input_names = [s.name for s in specs]
    args = torch_inputs(arrays)
    program = loaded.program
    if program is not None:
        _check_program_shapes(loaded, program, specs, arrays)
    with quiet_torch():
        module = loaded.module
        if program is None and loaded.kind == TORCHSCRIPT:
            try:
                from torch._export.converter import TS2EPConverter

                # the converter leaves every dimension symbolic: re-capture below, static
                module = TS2EPConverter(loaded.module, args).convert().module()
            except Exception:
                if output_names is None:
                    output_names = _output_names(
                        None, len(run_eager(module, specs, arrays, loaded.source)), loaded)
                return _from_torchscript_exporter(loaded, args, input_names, output_names,
                                                  dynamic_batch)
        if program is None:
            dyn = None
            if dynamic_batch:
                batch = torch.export.Dim("batch", min=1, max=4096)
                dyn = tuple({0: batch} if len(s.shape) else {} for s in specs)
            try:
                program = torch.export.export(module, args, dynamic_shapes=dyn, strict=False)
            except Exception as exc:
                run_eager(module, specs, arrays, loaded.source)  # a wrong --input-shape says so
                raise ConversionError(f"{loaded.source}: torch.export could not capture the "
                                      f"model: {_first_line(exc)}") from None
        output_names = _output_names(output_names, len(program.graph_signature.user_outputs),
                                     loaded)
        if not dynamic_batch:
            try:
                model = lower_program(program, input_names, output_names)
            except NotLowerable as exc:
                fallback = f"torch.onnx (the direct lowering does not take {exc})"
            else:
                model.metadata_props[LOWERING_PROP] = "direct"
                return model
        else:
            fallback = "torch.onnx (symbolic batch)"
        try:
            onnx_program = torch.onnx.export(
                program, args, dynamo=True, opset_version=eir.OPSET, optimize=True,
                input_names=input_names, output_names=output_names, verbose=False,
                external_data=False)
        except Exception as exc:
            raise ConversionError(f"{loaded.source}: lowering to ONNX failed: "
                                  f"{_first_line(exc)}") from None
    onnx_program.model.metadata_props[LOWERING_PROP] = fallback
    return onnx_program.model


def _output_names(given: list[str] | None, n_out: int, loaded: LoadedModel) -> list[str]:
    if given is None:
        return ["output"] if n_out == 1 else [f"output_{i}" for i in range(n_out)]
    if len(given) != n_out:
        raise UsageError(f"{loaded.source}: the model has {n_out} output(s) but "
                         f"{len(given)} output name(s) were given")
    return list(given)


def _check_program_shapes(loaded: LoadedModel, program: Any, specs: list[InputSpec],
                          arrays: list[np.ndarray]) -> None:
    """An ExportedProgram fixes its static dimensions: other --input-shape values are refused."""
    from torch.export.graph_signature import InputKind

    nodes = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    user = [nodes[s.arg.name] for s in program.graph_signature.input_specs
            if s.kind == InputKind.USER_INPUT]
    for node, spec, array in zip(user, specs, arrays):
        val = node.meta.get("val")
        if val is None or not hasattr(val, "shape"):
            continue
        fixed = [d if isinstance(d, int) else None for d in val.shape]
        if len(fixed) != array.ndim or any(f is not None and f != a
                                           for f, a in zip(fixed, array.shape)):
            dims = ",".join("?" if f is None else str(f) for f in fixed)
            raise UsageError(f"{loaded.source}: input '{spec.name}' of the program has shape "
                             f"[{dims}], not {spec.describe()}; check --input-shape")


def _from_torchscript_exporter(loaded: LoadedModel, args: tuple, input_names: list[str],
                               output_names: list[str] | None, dynamic_batch: bool) -> ir.Model:
    import onnx
    import torch

    buf = io.BytesIO()
    axes = {n: {0: "batch"} for n in input_names} if dynamic_batch else None
    try:
        torch.onnx.export(loaded.module, args, buf, dynamo=False, opset_version=eir.OPSET,
                          input_names=input_names, output_names=output_names,
                          dynamic_axes=axes, do_constant_folding=True)
    except Exception as exc:
        raise ConversionError(f"{loaded.source}: the TorchScript archive could not be exported: "
                              f"{_first_line(exc)}") from None
    return ir.from_proto(onnx.load_model_from_string(buf.getvalue()))


def _from_onnx(loaded: LoadedModel, specs: list[InputSpec], dynamic_batch: bool) -> ir.Model:
    from onnx import version_converter

    proto = loaded.onnx_model
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and opset != eir.OPSET:
        try:
            proto = version_converter.convert_version(proto, eir.OPSET)
        except Exception as exc:
            raise ConversionError(f"{loaded.source}: cannot convert from opset {opset} to "
                                  f"{eir.OPSET}: {_first_line(exc)}") from None
    model = ir.from_proto(proto)
    model.metadata_props.pop(LOWERING_PROP, None)  # a file we exported earlier: not lowered now
    graph_inputs = [v for v in model.graph.inputs if v.name not in model.graph.initializers]
    for value, spec in zip(graph_inputs, specs):
        dims = [d if d is not None else "batch" for d in spec.shape]
        if dynamic_batch and dims:
            dims[0] = "batch"
        value.shape = ir.Shape(dims)
    return model


def onnx_input_specs(loaded: LoadedModel) -> list[InputSpec]:
    """Input specs carried by an ONNX file (symbolic dims as None)."""
    import onnx

    inits = {i.name for i in loaded.onnx_model.graph.initializer}
    specs = []
    for vi in loaded.onnx_model.graph.input:
        if vi.name in inits:
            continue
        t = vi.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                     for d in t.shape.dim)
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)
        specs.append(InputSpec(vi.name, dims, np.dtype(dtype)))
    return specs


def example_specs(loaded: LoadedModel) -> list[InputSpec] | None:
    """Input specs from the example inputs a file or factory carries, if any."""
    if loaded.example_inputs is None:
        return None
    names = loaded.input_names or [f"input_{i}" for i in range(len(loaded.example_inputs))]
    specs = []
    for i, t in enumerate(loaded.example_inputs):
        if not hasattr(t, "shape"):
            return None
        name = names[i] if i < len(names) else f"input_{i}"
        specs.append(InputSpec(name, tuple(int(d) for d in t.shape),
                               np.dtype(str(t.dtype).replace("torch.", ""))))
    return specs

