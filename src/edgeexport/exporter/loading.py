"""Find out what a MODEL argument is, from the file's contents (never its extension), and load it.

Kinds: TorchScript archive, ExportedProgram (.pt2), pickled nn.Module (only when trusted), ONNX
file, `package.module:factory`. Everything the user can get wrong ends in a UsageError naming the
file, the problem and what to do.
"""

from __future__ import annotations

import importlib
import os
import pickle
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeexport.errors import UsageError
from edgeexport.errors import first_line as _first_line

TORCHSCRIPT, EXPORTED_PROGRAM, PICKLED_MODULE, STATE_DICT, ONNX, FACTORY = (
    "torchscript", "exported-program", "pickled-module", "state-dict", "onnx", "factory")


@dataclass
class LoadedModel:
    """What the exporter captures from. Exactly one of module / program / onnx_model is set."""

    kind: str
    source: str
    module: Any = None            # nn.Module or ScriptModule
    program: Any = None           # torch.export.ExportedProgram
    onnx_model: Any = None        # onnx.ModelProto
    example_inputs: tuple | None = None   # inputs carried by the file or the factory, if any
    input_names: list[str] = field(default_factory=list)
    sha256: str | None = None


def _is_factory(text: str) -> bool:
    if os.path.exists(text) or ":" not in text:
        return False
    mod, _, attr = text.partition(":")
    return bool(mod) and bool(attr) and all(p.isidentifier() for p in mod.split(".") + attr.split("."))


def detect_kind(path: Path) -> str:
    """The kind of a model file, judged by its bytes."""
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        raise UsageError(f"{path}: the file is empty; pass a TorchScript archive (torch.jit.save), "
                         "an ExportedProgram (.pt2), an .onnx file or package.module:factory")
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise UsageError(f"{path}: the archive is truncated or corrupt ({exc}); "
                             "save the model again (torch.jit.save or torch.export.save)") from None
        if any(n.endswith("archive_format") or "/models/" in n for n in names):
            return EXPORTED_PROGRAM
        if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
            return TORCHSCRIPT
        if any(n.endswith("data.pkl") for n in names):
            return PICKLED_MODULE  # torch.save zip: module or state_dict, decided on load
        raise UsageError(f"{path}: a zip archive but not one PyTorch wrote; pass a TorchScript "
                         "archive, an ExportedProgram (.pt2) or an .onnx file")
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return PICKLED_MODULE  # legacy (non-zip) torch.save
    if _looks_like_onnx(path):
        return ONNX
    raise UsageError(f"{path}: not a model file this tool reads (not a TorchScript archive, an "
                     "ExportedProgram .pt2, a torch.save file or ONNX); check the path")


def _looks_like_onnx(path: Path) -> bool:
    import onnx

    try:
        model = onnx.load_model(os.fspath(path), load_external_data=False)
    except Exception:
        return False
    return model.HasField("graph") and (len(model.graph.node) > 0 or len(model.graph.output) > 0)


def load_model(text: str, *, trust_pickle: bool = False,
               allow_cwd_import: bool = False) -> LoadedModel:
    """Load the MODEL argument of the command line."""
    if _is_factory(text):
        return _load_factory(text, allow_cwd_import)
    path = Path(text)
    if not path.exists():
        raise UsageError(f"{text}: no such file; pass a model file or package.module:factory")
    if path.is_dir():
        raise UsageError(f"{text}: is a directory; pass a model file")
    from edgeexport.ir import sha256_file

    kind = detect_kind(path)
    loaded = {
        TORCHSCRIPT: _load_torchscript, ONNX: _load_onnx,
        EXPORTED_PROGRAM: lambda p: _load_program(p, trust_pickle),
    }.get(kind, lambda p: _load_pickle(p, trust_pickle))(path)
    loaded.sha256 = sha256_file(path)
    return loaded


def _load_torchscript(path: Path) -> LoadedModel:
    import torch

    try:
        module = torch.jit.load(os.fspath(path), map_location="cpu")
    except Exception as exc:
        raise UsageError(f"{path}: TorchScript archive could not be loaded "
                         f"({_first_line(exc)}); save it again with torch.jit.save") from None
    return LoadedModel(TORCHSCRIPT, str(path), module=module.eval(),
                       input_names=_forward_arg_names(module))


def _forward_arg_names(module: Any) -> list[str]:
    try:
        args = module.forward.schema.arguments  # ScriptModule: first is self
        return [a.name for a in args[1:]]
    except Exception:
        import inspect

        try:
            return [p for p in inspect.signature(module.forward).parameters if p != "self"]
        except (TypeError, ValueError):
            return []


def _load_program(path: Path, trust: bool) -> LoadedModel:
    import torch

    from edgeexport.exporter.pt2 import load_program

    try:  # torch.export.load unpickles members of the file: only when the user trusts it
        program = torch.export.load(os.fspath(path)) if trust else load_program(path)
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(f"{path}: ExportedProgram could not be loaded ({_first_line(exc)}); "
                         "save it again with torch.export.save") from None
    example = program.example_inputs[0] if program.example_inputs else None
    return LoadedModel(EXPORTED_PROGRAM, str(path), program=program,
                       example_inputs=tuple(example) if example else None,
                       input_names=list(program.graph_signature.user_inputs))


def _load_onnx(path: Path) -> LoadedModel:
    import onnx

    from edgeexport.ir import check_external_data

    check_external_data(path)  # before onnx.load_model reads what the initializers name
    try:
        model = onnx.load_model(os.fspath(path))
        onnx.checker.check_model(model, full_check=False)
    except Exception as exc:
        raise UsageError(f"{path}: invalid ONNX model ({_first_line(exc)})") from None
    return LoadedModel(ONNX, str(path), onnx_model=model,
                       input_names=[i.name for i in model.graph.input])


def _load_pickle(path: Path, trust: bool) -> LoadedModel:
    import torch

    try:  # safe first: weights-only unpickling runs no code
        obj = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        obj = None
    except Exception as exc:
        raise UsageError(f"{path}: the torch.save file could not be read ({_first_line(exc)})"
                         ) from None
    if obj is not None:
        if isinstance(obj, dict):
            raise UsageError(
                f"{path}: is a state_dict (weights only, no architecture); pass "
                "package.module:factory that builds the model and loads these weights, or save "
                "the model with torch.export.save / torch.jit.save")
        if not isinstance(obj, torch.nn.Module):
            raise UsageError(f"{path}: holds a {type(obj).__name__}, not a model")
    if obj is None:
        if not trust:
            raise UsageError(
                f"{path}: is a pickled nn.Module; unpickling runs code from the file, so pass "
                "--trust-pickle if you trust its source (or save it with torch.export.save)")
        try:
            obj = torch.load(os.fspath(path), map_location="cpu", weights_only=False)
        except Exception as exc:
            raise UsageError(f"{path}: the pickled module could not be loaded "
                             f"({_first_line(exc)}); its classes must be importable") from None
        if not isinstance(obj, torch.nn.Module):
            raise UsageError(f"{path}: holds a {type(obj).__name__}, not an nn.Module")
    return LoadedModel(PICKLED_MODULE, str(path), module=obj.eval(),
                       input_names=_forward_arg_names(obj))


def _load_factory(text: str, allow_cwd_import: bool) -> LoadedModel:
    import torch

    mod_name, _, attr = text.partition(":")
    # modules next to the user only when asked: a stray onnxruntime.py or torch.py in the
    # current directory would otherwise shadow the real package for the rest of the run
    if allow_cwd_import and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        hint = "" if allow_cwd_import else (
            "; a module in the current directory needs --allow-cwd-import")
        raise UsageError(f"{text}: cannot import module '{mod_name}' ({_first_line(exc)})"
                         f"{hint}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"{text}: module '{mod_name}' has no attribute '{attr}'")
        obj = getattr(obj, part)
    model = obj if isinstance(obj, torch.nn.Module) else _call_factory(text, obj)
    example = None
    if isinstance(model, tuple) and len(model) == 2 and isinstance(model[0], torch.nn.Module):
        model, example = model[0], model[1]
        if not isinstance(example, (tuple, list)):
            raise UsageError(f"{text}: returned ({type(model).__name__}, "
                             f"{type(example).__name__}); example_inputs must be a tuple")
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"{text}: returned a {type(model).__name__}, not an nn.Module "
                         "(or an (nn.Module, example_inputs) pair)")
    example = example or getattr(model, "example_inputs", None)
    return LoadedModel(FACTORY, text, module=model.eval(),
                       example_inputs=tuple(example) if example is not None else None,
                       input_names=_forward_arg_names(model))


def _call_factory(text: str, obj: Any) -> Any:
    """Call a factory once, if it is one: a Python function or an nn.Module class that takes no
    arguments. Anything else (os:getcwd, sys:exit, os:abort, a builtin or foreign class) is
    refused before it is called."""
    import inspect

    import torch

    is_module_class = inspect.isclass(obj) and issubclass(obj, torch.nn.Module)
    if not (inspect.isfunction(obj) or is_module_class):
        if inspect.isclass(obj):
            kind = f"the class {obj.__name__}, which is not an nn.Module"
        elif inspect.isbuiltin(obj) or inspect.isroutine(obj):
            kind = "a builtin function"
        else:
            kind = f"a {type(obj).__name__}"
        raise UsageError(f"{text}: is {kind}, not a factory; name a Python function or an "
                         "nn.Module class that builds the model")
    try:
        inspect.signature(obj).bind()
    except TypeError:
        raise UsageError(f"{text}: the factory takes required arguments; name one that builds "
                         "the model with no arguments") from None
    except ValueError:
        pass  # no signature to read: let the call say
    try:
        return obj()
    except (Exception, SystemExit) as exc:
        raise UsageError(f"{text}: the factory failed ({type(exc).__name__}: "
                         f"{_first_line(exc)})") from None
