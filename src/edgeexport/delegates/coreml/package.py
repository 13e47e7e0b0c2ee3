"""MIL Program -> .mlpackage: coremltools' backend passes and serializer, then the package made
byte-for-byte deterministic (Manifest identifiers, protobuf map order, file modes).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

#: what CoreML needs before serialization (coremltools' backend_mlprogram pipeline, minus the
#: progress bar): io dtypes, image preprocessing, const dedup, names, dead code.
_BACKEND_PASSES = (
    "common::const_elimination",
    "mil_backend::adjust_io_to_supported_types",
    "mil_backend::insert_image_preprocessing_ops",
    "common::const_deduplication",
    "common::dead_code_elimination",
    "mil_backend::sanitize_name_strings",
    "common::dedup_op_and_var_names",
    "nn_backend::handle_unused_inputs",
)
#: fixed namespace for the Manifest's item identifiers (UUIDs derived from item paths)
_NAMESPACE = uuid.UUID("6f1f6a4e-8a0e-4d53-9a43-2f6a0a5e7c11")
SPEC_PATH = Path("Data/com.apple.CoreML/model.mlmodel")
WEIGHTS_PATH = Path("Data/com.apple.CoreML/weights")
METADATA_PREFIX = "com.edgeexport."


def apply_backend_passes(prog: Any) -> None:
    from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY

    prog.validate()
    for name in _BACKEND_PASSES:
        PASS_REGISTRY[name](prog)


def save_mlpackage(prog: Any, path: Path, *, ios: int, metadata: dict[str, str],
                   input_types: list[Any] | None = None) -> Path:
    """Serialize `prog` to `path` (an .mlpackage folder), atomically and deterministically."""
    import coremltools as ct
    from coremltools.converters.mil.backend.mil.load import load as backend_load
    from coremltools.models.utils import _create_mlpackage

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if input_types:
        prog.functions["main"].input_types = input_types
    apply_backend_passes(prog)
    spec_version = getattr(ct.target, f"iOS{ios}")
    with tempfile.TemporaryDirectory(prefix=".mlpackage-", dir=path.parent) as tmp:
        weights = Path(tmp) / "weights"
        weights.mkdir()
        spec = backend_load(prog, os.fspath(weights), specification_version=spec_version,
                            convert_to="mlprogram", convert_from="milinternal")
        spec.description.metadata.userDefined.update(metadata)
        spec.description.metadata.userDefined["com.github.apple.coremltools.version"] = \
            ct.__version__
        staged = Path(tmp) / path.name
        _create_mlpackage(spec, os.fspath(weights), os.fspath(staged))
        _make_deterministic(staged, spec)
        if path.exists():
            shutil.rmtree(path)
        os.replace(staged, path)
    return path


def _make_deterministic(package: Path, spec: Any) -> None:
    # the spec is rewritten with sorted map entries; the Manifest gets identifiers derived from
    # each item's path instead of random UUIDs
    (package / SPEC_PATH).write_bytes(spec.SerializeToString(deterministic=True))
    manifest_path = package / "Manifest.json"
    manifest = json.loads(manifest_path.read_text())
    renamed = {}
    for old, item in manifest["itemInfoEntries"].items():
        new = str(uuid.uuid5(_NAMESPACE, item["path"])).upper()
        renamed[old] = new
        manifest.setdefault("_items", {})[new] = item
    manifest["itemInfoEntries"] = dict(sorted(manifest.pop("_items").items()))
    manifest["rootModelIdentifier"] = renamed[manifest["rootModelIdentifier"]]
    manifest_path.write_text(json.dumps(manifest, indent=4, sort_keys=True) + "\n")
    for root, dirs, files in os.walk(package):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)


def check_package(path: Path, ios: int | None = None) -> Any:
    """Reload a saved .mlpackage the way Xcode would start to: the package index, the model spec
    through coremltools (`skip_model_load`: CoreML itself is macOS-only), the ML Program's
    types through coremltools' proto loader. Returns the spec; raises ValueError if invalid."""
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as load_proto
    from coremltools.libmodelpackage import ModelPackage

    path = Path(path)
    if not ModelPackage.isValid(os.fspath(path)):
        raise ValueError(f"{path}: not a valid model package (Manifest.json / items)")
    model = ct.models.MLModel(os.fspath(path), skip_model_load=True)
    spec = model.get_spec()
    if spec.WhichOneof("Type") != "mlProgram":
        raise ValueError(f"{path}: model type {spec.WhichOneof('Type')}, not an ML Program")
    if ios is not None and spec.specificationVersion != getattr(ct.target, f"iOS{ios}").value:
        raise ValueError(f"{path}: specification version {spec.specificationVersion} does not "
                         f"match iOS {ios}")
    names = {d.name for d in spec.description.input} | {d.name for d in spec.description.output}
    prog = load_proto(spec, spec.specificationVersion, os.fspath(path / WEIGHTS_PATH))
    prog.validate()
    main = prog.functions["main"]
    declared = set(main.inputs) | {v.name for v in main.outputs}
    if names != declared:
        raise ValueError(f"{path}: description names {sorted(names)} differ from the program's "
                         f"{sorted(declared)}")
    return spec


_ARRAY_DTYPES = {"FLOAT32": "float32", "FLOAT16": "float16", "DOUBLE": "float64",
                 "INT32": "int32", "INT8": "int8"}


def io_signature(path: Path, io_names: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """The model description's inputs and outputs (what an app's MLFeatureProvider fills): per
    feature its MIL name, and a multiArray's shape and dtype or an image's size and colors."""
    import coremltools as ct

    spec = ct.models.MLModel(os.fspath(path), skip_model_load=True).get_spec()
    array_type = ct.proto.FeatureTypes_pb2.ArrayFeatureType.ArrayDataType

    def entry(feature: Any) -> dict[str, Any]:
        kind = feature.type.WhichOneof("Type")
        name = io_names.get(feature.name, feature.name)
        out = {"name": name, "quantization": None, "coreml": {"feature": feature.name,
                                                              "type": kind}}
        if kind == "multiArrayType":
            t = feature.type.multiArrayType
            out["shape"] = [int(d) for d in t.shape]
            out["dtype"] = _ARRAY_DTYPES.get(array_type.Name(t.dataType), "float32")
        elif kind == "imageType":
            t = feature.type.imageType
            color = ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(t.colorSpace)
            channels = 1 if color == "GRAYSCALE" else 3
            out["shape"] = [1, channels, int(t.height), int(t.width)]
            out["dtype"] = "uint8"
            out["coreml"].update({"width": int(t.width), "height": int(t.height),
                                  "color_space": color})
        else:
            raise ValueError(f"{path}: feature '{feature.name}' of type {kind} is not described")
        out["axes_from_ir"] = list(range(len(out["shape"])))
        return out

    return {"inputs": [entry(f) for f in spec.description.input],
            "outputs": [entry(f) for f in spec.description.output]}
