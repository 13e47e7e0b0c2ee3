"""Typed options of each target: one dataclass per target, read by the delegates, taken by the
Python API (`options=` a dataclass or a dict) and turned into the CLI's flags (field metadata).

Light on purpose (no delegate imports): `convert --help` and `edgeexport targets` list them all.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from edgeexport.errors import UsageError

API_LEVELS = tuple(range(27, 36))
DEFAULT_API = 29
CPUS = ("cortex-a72", "cortex-a76")
IOS_VERSIONS = (15, 16, 17, 18)
DEFAULT_IOS = 16


def _opt(default: Any, help: str, *, choices: tuple | None = None, metavar: str | None = None,
         flag: str | None = None) -> Any:
    """A target option: its default, and how the CLI shows it (flag defaults to --field-name)."""
    return field(default=default, metadata={"help": help, "choices": choices,
                                            "metavar": metavar, "flag": flag})


@dataclass
class TargetOptions:
    """What every target reads: the float precision (None: the target's own) and the
    quantization scheme. Both are the convert command's common flags, not per-target ones."""

    precision: str | None = field(default=None, metadata={"common": True})
    quantize: str | None = field(default=None, metadata={"common": True})


@dataclass
class OnnxOptions(TargetOptions):
    pass


@dataclass
class VulkanOptions(TargetOptions):
    pass


@dataclass
class TfliteOptions(TargetOptions):
    io_layout: str = _opt("nchw", "layout of the .tflite's image inputs (rank-4 float, read by a "
                          "conv): nchw as in PyTorch or nhwc, what camera frames and bitmaps "
                          "hold", choices=("nchw", "nhwc"))
    int8_io: bool = _opt(False, "with int8 quantization: int8 inputs and outputs (scale and "
                         "zero point in manifest.json) instead of float ones")


@dataclass
class NnapiOptions(TfliteOptions):
    android_api: int = _opt(DEFAULT_API, "lowest Android API level to support (NNAPI exists "
                            "from API 27)", choices=API_LEVELS, metavar="27..35")
    nnapi_fp16_relaxed: bool = _opt(False, "let NNAPI compute fp32 ops in fp16 (API >= 28)")


@dataclass
class RpiOptions(TfliteOptions):
    cpu: str = _opt("cortex-a72", "Raspberry Pi core: cortex-a72 (Pi 4) or cortex-a76 (Pi 5)",
                    choices=CPUS)


@dataclass
class CoremlOptions(TargetOptions):
    ios: int | None = _opt(None, f"minimum iOS deployment target of the ML Program (default "
                           f"{DEFAULT_IOS}; int8 weights need 16, int8 activations 17)",
                           choices=IOS_VERSIONS)
    coreml_image_input: str | None = _opt(None, "make this N x 3 x H x W float input a CoreML "
                                          "image (8-bit pixels): the model sees pixels * scale "
                                          "+ bias", metavar="NAME")
    coreml_image_scale: float = _opt(1.0, "image preprocessing: x * scale + bias")
    coreml_image_bias: str = _opt("", "image preprocessing bias, one value or one per channel "
                                  "in color layout order (R,G,B or B,G,R)")
    coreml_color_layout: str = _opt("RGB", "channel order of the image input",
                                    choices=("RGB", "BGR"))


@dataclass
class MetalOptions(CoremlOptions):
    pass


OPTIONS: dict[str, type[TargetOptions]] = {
    "onnx": OnnxOptions, "nnapi": NnapiOptions, "rpi": RpiOptions, "coreml": CoremlOptions,
    "metal": MetalOptions, "vulkan": VulkanOptions}


def own_fields(cls: type[TargetOptions]) -> list[dataclasses.Field]:
    """The target's own options (not the common precision/quantize)."""
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("common")]


def flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def options_class(target: str) -> type[TargetOptions]:
    if target not in OPTIONS:
        raise UsageError(f"unknown target '{target}'; choose one of: {', '.join(OPTIONS)}")
    return OPTIONS[target]


def coerce(target: str, options: Any = None, **common: Any) -> TargetOptions:
    """The target's options dataclass from None, a dict, a dataclass or an argparse Namespace
    (None values keep the defaults); `common` fills precision/quantize when given."""
    cls = options_class(target)
    if isinstance(options, TargetOptions):
        values = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
        foreign = [k for k in values if k not in {f.name for f in dataclasses.fields(cls)}
                   and values[k] != getattr(type(options), k, None)]
        if foreign:  # another target's dataclass carrying values this target cannot take
            raise UsageError(f"options {', '.join(foreign)} do not apply to target '{target}'")
    elif isinstance(options, dict):
        values = dict(options)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in values if k not in known)
        if unknown:
            raise UsageError(f"target '{target}' has no option {', '.join(unknown)} (its "
                             f"options: {', '.join(f.name for f in own_fields(cls)) or 'none'})")
    elif options is None:
        values = {}
    else:  # argparse.Namespace (the CLI) or any object with the fields as attributes
        values = {f.name: getattr(options, f.name, None) for f in dataclasses.fields(cls)}
    values.update({k: v for k, v in common.items() if v is not None})
    names = {f.name for f in dataclasses.fields(cls)}
    result = cls(**{k: v for k, v in values.items() if v is not None and k in names})
    for f in own_fields(cls):
        choices = f.metadata.get("choices")
        value = getattr(result, f.name)
        if choices and value is not None and value not in choices:
            raise UsageError(f"target '{target}' option {f.name} ({flag(f)}) = {value!r}: "
                             f"choose one of {', '.join(map(str, choices))}")
    return result


def add_cli_options(parser: argparse.ArgumentParser, targets: list[str]) -> None:
    """Every target's flags, once each, grouped by the targets that take them (defaults are
    None on the command line so that coerce() can tell a given flag from an absent one)."""
    groups: dict[tuple[str, ...], list[dataclasses.Field]] = {}
    seen: set[str] = set()
    for name in targets:
        for f in own_fields(OPTIONS[name]):
            if f.name in seen:
                continue
            seen.add(f.name)
            owners = tuple(t for t in targets if f.name in {g.name for g in own_fields(OPTIONS[t])})
            groups.setdefault(owners, []).append(f)
    for owners, fields in groups.items():
        group = parser.add_argument_group(f"{', '.join(owners)} target options")
        for f in fields:
            help_text = f"{f.metadata['help']} (default {f.default})" \
                if f.default not in (None, "", False) else f.metadata["help"]
            kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": help_text}
            if f.type in ("bool", bool):
                kwargs["action"] = "store_true"
            else:
                kwargs["type"] = {"int": int, "float": float}.get(
                    str(f.type).split(" ")[0], str)
                if f.metadata.get("choices"):
                    kwargs["choices"] = f.metadata["choices"]
                if f.metadata.get("metavar"):
                    kwargs["metavar"] = f.metadata["metavar"]
            group.add_argument(flag(f), **kwargs)


def check_cli_targets(args: argparse.Namespace, targets: list[str]) -> None:
    """A flag given that none of the chosen targets takes is a mistake (exit 2)."""
    taken = {f.name for t in targets for f in own_fields(OPTIONS[t])}
    for name, cls in OPTIONS.items():
        for f in own_fields(cls):
            if f.name not in taken and getattr(args, f.name, None) not in (None, False):
                owners = [t for t, c in OPTIONS.items() if f in own_fields(c)]
                raise UsageError(f"{flag(f)} is an option of target {', '.join(owners)}, not "
                                 f"of {', '.join(targets)}")


def describe(target: str) -> list[dict[str, Any]]:
    """The target's options for `edgeexport targets` (and its --json)."""
    return [{"name": f.name, "flag": flag(f), "type": str(f.type), "default": f.default,
             "choices": list(f.metadata["choices"]) if f.metadata.get("choices") else None,
             "help": f.metadata["help"]} for f in own_fields(OPTIONS[target])]


def used_values(options: Any, target: str) -> dict[str, Any]:
    """field name -> value given (None when left to the target's default), for manifest.json."""
    return {f.name: getattr(options, f.name, None) for f in own_fields(OPTIONS[target])}
