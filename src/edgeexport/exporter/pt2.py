"""Read an ExportedProgram (.pt2) without unpickling anything: a model file never runs code unless
the user passes --trust-pickle. Every member that torch.export.load would unpickle is refused.
"""

# torch.export.load (torch 2.13, torch/export/pt2_archive/_package.py) unpickles with plain pickle
# or `torch.load(weights_only=False)`: weights and tensor constants marked `use_pickle` (tensor
# subclasses), opaque constants (`opaque_obj_*`, pickle.loads), TorchScript objects
# (`custom_obj_*`), the legacy `data/weights/<model>.pt` and `data/constants/<model>.pt`, and the
# sample inputs `data/sample_inputs/<model>.pt`, which `deserialize_torch_artifact` retries with
# weights_only=False when the safe load fails. It also loads every program under models/ and
# dlopens `data/aotinductor/` libraries. Here the archive is read once into memory, only the
# program "model" is read, its payload configs are checked first, raw tensors are read by torch's
# own raw-byte reader, the sample inputs are decoded with the weights-only unpickler, and the
# deserializer is handed decoded objects, so it has no bytes left to unpickle. Members nothing
# here reads (aotinductor, executorch, extra/, other programs) are never opened.

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Any

from edgeexport.errors import UsageError, first_line

MODEL = "model"  # the program torch.export.save writes and torch.export.load returns


def _refuse(path: Path, member: str, what: str) -> UsageError:
    return UsageError(f"{path}: member {member} {what}; unpickling runs code from the file, so "
                      "pass --trust-pickle if you trust its source (or save the program again "
                      "with torch.export.save from plain tensors)")


def _check_payloads(path: Path, reader: Any, kind: str) -> None:
    """Refuse every pickled entry of data/weights or data/constants (torch's reader unpickles
    entries marked use_pickle, and custom/opaque objects whatever the mark says)."""
    from torch.export.pt2_archive import constants as c

    directory, config_name = ((c.WEIGHTS_DIR, c.WEIGHTS_CONFIG_FILENAME_FORMAT) if kind == "weights"
                              else (c.CONSTANTS_DIR, c.CONSTANTS_CONFIG_FILENAME_FORMAT))
    names = set(reader.get_file_names())
    legacy = f"{directory}{MODEL}.pt"  # torch reads it with a weights_only=False fallback
    if legacy in names:
        raise _refuse(path, legacy, f"is a pickled legacy {kind} file")
    config_file = config_name.format(MODEL)
    if config_file not in names:
        raise UsageError(f"{path}: the archive has no {config_file}; save the program again "
                         "with torch.export.save")
    try:
        config = json.loads(reader.read_string(config_file))["config"]
        entries = [(str(m["path_name"]), bool(m["use_pickle"])) for m in config.values()]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"{path}: {config_file} is malformed ({exc}); save the program again "
                         "with torch.export.save") from None
    for name, use_pickle in entries:
        member = directory + name
        if use_pickle:
            raise _refuse(path, member, f"is a pickled {kind[:-1]} (use_pickle)")
        # torch's constants reader dispatches on the prefix alone: only raw tensors are safe
        if kind == "constants" and not name.startswith(c.TENSOR_CONSTANT_FILENAME_PREFIX):
            raise _refuse(path, member, "is a pickled object constant")
        if kind == "weights" and not name.startswith(c.WEIGHT_FILENAME_PREFIX):
            raise UsageError(f"{path}: {config_file} names an unknown weight file {name}; "
                             "save the program again with torch.export.save")


def _sample_inputs(path: Path, reader: Any) -> Any:
    """The example inputs, decoded by the weights-only unpickler.

    `torch.load(weights_only=True)` counts as safe here: its unpickler (torch._weights_only_
    unpickler) resolves only an allowlist of globals (tensor and storage rebuild functions,
    dtypes, OrderedDict, primitive containers) and refuses every other GLOBAL/REDUCE, so a
    pickle cannot name os.system, eval or any class of its own; PyTorch ships it as the safe
    loader for untrusted checkpoints (the default since 2.6, after CVE-2025-32434 closed the
    legacy-format bypass of 2.5). What it refuses we refuse too, instead of torch's retry with
    weights_only=False.
    """
    import torch
    from torch.export.pt2_archive import constants as c

    member = c.SAMPLE_INPUTS_FILENAME_FORMAT.format(MODEL)
    if member not in reader.get_file_names():
        return None
    raw = reader.read_bytes(member)
    if not raw:
        return None
    try:
        inputs = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise _refuse(path, member, "holds objects other than tensors") from None
    except Exception as exc:
        raise UsageError(f"{path}: member {member} could not be read ({first_line(exc)}); "
                         "save the program again with torch.export.save") from None
    if not isinstance(inputs, tuple):
        raise UsageError(f"{path}: member {member} holds a {type(inputs).__name__}, not the "
                         "(args, kwargs) pair torch.export.save writes")
    return inputs


def load_program(path: Path) -> Any:
    """The ExportedProgram of a .pt2 file, read without executing any pickle (see above)."""
    import torch
    from torch._export.serde import schema
    from torch._export.serde.serialize import ExportedProgramDeserializer, _bytes_to_dataclass
    from torch.export.pt2_archive import _package as pkg
    from torch.export.pt2_archive import constants as c

    # one read: the checks below and the loads after them see the same bytes
    reader = pkg.PT2ArchiveReader(io.BytesIO(Path(path).read_bytes()))
    version = reader.read_string(c.ARCHIVE_VERSION_PATH)
    if version != c.ARCHIVE_VERSION_VALUE:
        raise UsageError(f"{path}: archive version {version}, this torch reads "
                         f"{c.ARCHIVE_VERSION_VALUE}; save the program again with "
                         f"torch {torch.__version__}")
    model_file = c.MODELS_FILENAME_FORMAT.format(MODEL)
    if model_file not in reader.get_file_names():
        raise UsageError(f"{path}: the archive holds no {model_file} (an AOTInductor package or "
                         "another program name?); save the model with torch.export.save")
    _check_payloads(path, reader, "weights")
    _check_payloads(path, reader, "constants")
    example_inputs = _sample_inputs(path, reader)
    # with no pickled entry left, these read raw tensor bytes only (torch's _build_file_map)
    state_dict = pkg._load_state_dict(reader, MODEL)
    constants = pkg._load_constants(reader, MODEL)
    if not isinstance(state_dict, dict) or not isinstance(constants, dict):
        raise UsageError(f"{path}: legacy weights or constants; save the program again with "
                         "torch.export.save")
    serialized = _bytes_to_dataclass(schema.ExportedProgram, reader.read_bytes(model_file))
    # a dict or tuple is used as given by deserialize_torch_artifact; never bytes here (b"" or
    # None would mean "no inputs", so an absent member stays None)
    return ExportedProgramDeserializer(None).deserialize(serialized, state_dict, constants,
                                                         example_inputs)
