"""The Python API: `edgeexport.convert(model, example_inputs, target=...)` -> Bundle, and
export/quantize/inspect/load_bundle. The command line (commands.py) is a layer over it.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edgeexport.bundle import Bundle
from edgeexport.errors import UsageError

__all__ = ["convert", "export", "inspect", "load_bundle", "quantize"]

#: what a model may be: an nn.Module, a torch.export.ExportedProgram, a path or "pkg.mod:factory"
Model = Any


def _model(model: Model) -> Any:
    if isinstance(model, Path):
        return str(model)
    if isinstance(model, str) or type(model).__name__ != "ExportedProgram":
        return model
    return model.module()  # an ExportedProgram: its graph as an nn.Module


def _examples(example_inputs: Any) -> tuple | None:
    if example_inputs is None:
        return None
    if isinstance(example_inputs, dict):
        return tuple(example_inputs.values())
    if isinstance(example_inputs, (list, tuple)):
        return tuple(example_inputs)
    return (example_inputs,)


def _array(x: Any) -> np.ndarray:
    return np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)


def _data_file(data: Any, what: str, tmp: Path) -> str | None:
    """calibration=/samples= as the path the pipeline reads: a path as it is; an array, a dict
    of arrays (by input name) or a list of either written to an .npy/.npz in `tmp` (samples
    stacked on a new leading axis)."""
    if data is None or isinstance(data, (str, Path)):
        return None if data is None else str(data)
    if isinstance(data, (list, tuple)):
        if not data:
            raise UsageError(f"{what}: an empty list")
        if isinstance(data[0], dict):
            data = {k: np.stack([_array(d[k]) for d in data]) for k in data[0]}
        else:
            data = np.stack([_array(d) for d in data])
    path = tmp / f"{what}.npz" if isinstance(data, dict) else tmp / f"{what}.npy"
    if isinstance(data, dict):
        np.savez(path, **{k: _array(v) for k, v in data.items()})
    else:
        np.save(path, _array(data))
    return str(path)


def _options(target: str, model: Model, example_inputs: Any, quantize: str | None,
             calibration: Any, samples: Any, max_error: str | None, options: Any,
             tmp: Path, kw: dict[str, Any]) -> Any:
    from edgeexport.exporter import InputSpec, parse_input_spec
    from edgeexport.pipeline import ConvertOptions

    input_shapes = kw.pop("input_shapes", None) or []
    specs = [s if isinstance(s, InputSpec) else parse_input_spec(s) for s in input_shapes]
    unknown = set(kw) - {"dynamic_batch", "trust_pickle", "allow_cwd_import", "optimize",
                         "calibration_method", "preprocess", "output_names", "labels",
                         "timing_runs", "force", "max_emulated_seconds", "emulated_samples"}
    if unknown:
        raise UsageError(f"convert() got unknown argument(s): {', '.join(sorted(unknown))}")
    if "preprocess" in kw:
        kw["calibration_preprocess"] = kw.pop("preprocess")
    if "max_emulated_seconds" in kw or "emulated_samples" in kw:
        from types import SimpleNamespace

        from edgeexport.validate.parity import emulation_cap

        kw["emulation"] = emulation_cap(SimpleNamespace(
            max_emulated_seconds=kw.pop("max_emulated_seconds", None),
            emulated_samples=kw.pop("emulated_samples", None)))
    return ConvertOptions(target=target, input_specs=specs, example_inputs=_examples(
        example_inputs), quantize=quantize, calibration_data=_data_file(
        calibration, "calibration", tmp), samples=_data_file(samples, "samples", tmp),
        max_error=max_error, target_options=options, **kw)


def _api_wording(fn: Callable) -> Callable:
    """Errors raised through the API name its arguments (UsageError.api), not CLI flags; the
    CLI calls `fn.cli`, the same function with the command-line wording."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UsageError as exc:
            raise exc.for_api() from None

    wrapper.cli = fn  # type: ignore[attr-defined]
    return wrapper


@_api_wording
def convert(model: Model, example_inputs: Any = None, *, target: str | None = None,
            targets: Sequence[str] | None = None, quantize: str | None = None,
            calibration: Any = None, samples: Any = None, max_error: str | None = None,
            options: Any = None, out: str | Path | None = None, progress: Any = None,
            **kw: Any) -> Bundle | dict[str, Bundle]:
    """Convert `model` for `target` and check parity on the real runtimes.

    model: an nn.Module, an ExportedProgram, a model file path or "pkg.mod:factory".
    example_inputs: a tensor/array or a tuple of them (shapes and dtypes are taken from them,
    names from forward's signature); files that carry shapes need none (or input_shapes=).
    quantize: None, "int8", "fp16" or "dynamic-int8"; calibration/samples: a path or arrays.
    options: the target's options dataclass (edgeexport.target_options) or a dict; with several
    targets, a dict by target name ({"nnapi": NnapiOptions(...), "rpi": {...}}).
    targets=[...] or target="all": one Bundle per target (a dict), from one export/quantize; a
    target that cannot take the model maps to a NotConverted (.error says why) instead.
    out=None: a temporary folder that the Bundle keeps alive.
    Other keywords: input_shapes, dynamic_batch, optimize, calibration_method, preprocess,
    labels, output_names, trust_pickle, allow_cwd_import, force (replace a previous bundle at
    out), max_emulated_seconds and emulated_samples (caps on parity under qemu).
    """
    from edgeexport import pipeline, profile

    if target is None and not targets:
        raise UsageError("convert(): pass target= (one of "
                         f"{', '.join(profile.TARGET_MODULES)}) or targets=[...]")
    names = list(targets or (profile.TARGET_MODULES if target == "all" else []))
    keep = tempfile.TemporaryDirectory(prefix="edgeexport-") if out is None else None
    root = Path(keep.name) / "bundle" if keep else Path(out)
    step = progress or pipeline._noop
    # arrays given as calibration/samples are written here for the pipeline, then dropped
    with tempfile.TemporaryDirectory(prefix="edgeexport-data-") as data_dir:
        opts = _options(names[0] if names else str(target), model, example_inputs, quantize,
                        calibration, samples, max_error, options, Path(data_dir), kw)
        if names:
            outcomes, _ = pipeline.convert_all(_model(model), root, names, opts, step)
            # a target that could not take the model stays a pipeline.NotConverted (its error)
            return {n: o if isinstance(o, pipeline.NotConverted) else
                    Bundle(o.out, keep=keep, report=o.report, manifest=o.manifest)
                    for n, o in outcomes.items()}
        o = pipeline.convert(_model(model), root, opts, step)
        return Bundle(o.out, keep=keep, report=o.report, manifest=o.manifest)


@_api_wording
def export(model: Model, example_inputs: Any = None, *, out: str | Path | None = None,
           optimize: bool = True, **kw: Any) -> Any:
    """The edge IR (an onnx_ir.Model) of `model`, after the optimization passes; saved as
    .onnx when `out` is given."""
    from edgeexport import ir as eir
    from edgeexport.pipeline import Timer, export_and_optimize

    with tempfile.TemporaryDirectory() as tmp:
        opts = _options("onnx", model, example_inputs, None, None, None, None, None,
                        Path(tmp), {**kw, "optimize": optimize})
        result, _ = export_and_optimize(_model(model), opts, Timer())
    if out is not None:
        eir.save(result.model, out)
    return result.model


@_api_wording
def quantize(model: Model, example_inputs: Any = None, *, scheme: str = "int8",
             calibration: Any = None, max_error: str | None = None, **kw: Any
             ) -> tuple[Any, dict[str, Any]]:
    """(the quantized IR, what quantization did): export, optimize, quantize, no target."""
    from edgeexport.pipeline import _quantize, export_and_optimize, Timer

    with tempfile.TemporaryDirectory() as tmp:
        opts = _options("onnx", model, example_inputs, scheme, calibration, None, max_error,
                        None, Path(tmp), kw)
        result, _ = export_and_optimize(_model(model), opts, Timer())
        info = _quantize(result, opts)
    return result.model, info


@_api_wording
def inspect(model: Model, example_inputs: Any = None, *, target: str, options: Any = None,
            **kw: Any) -> dict[str, Any]:
    """The target's coverage of the model (delegated ops, partitions, fallbacks), before
    converting."""
    from edgeexport import delegates, target_options
    from edgeexport.pipeline import Timer, export_and_optimize

    with tempfile.TemporaryDirectory() as tmp:
        opts = _options(target, model, example_inputs, None, None, None, None, options,
                        Path(tmp), kw)
        tgt = delegates.load_target(target)
        result, _ = export_and_optimize(_model(model), opts, Timer())
        return tgt.coverage(result.model, target_options.coerce(target, options)).to_json()


def load_bundle(path: str | Path) -> Bundle:
    """A bundle folder written by convert (checked against its manifest's hashes)."""
    return Bundle(Path(path))
