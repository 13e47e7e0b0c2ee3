"""manifest.json, the bundle contract that C++, Kotlin and Swift apps read: each input/output as
the artifact takes it and as PyTorch does, preprocessing, labels; checked against its JSON Schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from edgeexport import ir as eir
from edgeexport.delegates.base import Artifact, ImageInput, Target
from edgeexport.errors import UsageError

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
LABELS_FILE = "labels.txt"
#: the 4-D layouts by the permutation that takes the PyTorch tensor to the artifact's
_NCHW_TO = {(0, 1, 2, 3): "NCHW", (0, 2, 3, 1): "NHWC"}


@dataclass
class Boundary:
    """One input or output on both sides: PyTorch's tensor and the artifact's."""

    name: str
    pytorch_shape: list[Any]
    pytorch_dtype: str
    pytorch_layout: str  # "NCHW", "NHWC" (image batches) or "plain"
    shape: list[Any]
    dtype: str
    #: artifact axis j holds PyTorch axis axes[j]
    axes: list[int]
    quant: dict[str, Any] | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # {"ncnn": ...} / {"coreml": ...}

    @property
    def layout(self) -> str:
        if self.pytorch_layout == "NCHW":
            return _NCHW_TO.get(tuple(self.axes), "NCHW")
        return self.pytorch_layout

    def to_artifact(self, arr: np.ndarray, quantize: bool = True) -> np.ndarray:
        """A PyTorch-side tensor as the artifact takes it (its layout; int8 when it is int8)."""
        arr = np.transpose(arr, self.axes) if arr.ndim == len(self.axes) else arr
        if quantize and self.quant is not None:
            info = np.iinfo(self.dtype)
            q = np.round(arr / self.quant["scale"]) + self.quant["zero_point"]
            arr = np.clip(q, info.min, info.max).astype(self.dtype)
        return np.ascontiguousarray(arr)

    @classmethod
    def from_json(cls, t: dict[str, Any]) -> Boundary:
        """An inputs[]/outputs[] entry of a manifest back as a Boundary (its inverse)."""
        q = t["quantization"]
        quant = {"scale": q["scale"], "zero_point": q["zero_point"]} if q["quantized"] else None
        facts = {k: t[k] for k in ("ncnn", "coreml") if k in t}
        return cls(t["name"], list(t["pytorch"]["shape"]), t["pytorch"]["dtype"],
                   t["pytorch"]["layout"], list(t["shape"]), t["dtype"],
                   list(t["axes_from_pytorch"]), quant, facts)

    def to_json(self) -> dict[str, Any]:
        q: dict[str, Any] = {"quantized": False}
        if self.quant is not None:
            q = {"quantized": True, "dtype": self.dtype, "scale": self.quant["scale"],
                 "zero_point": self.quant["zero_point"]}
        return {"name": self.name, "shape": self.shape, "dtype": self.dtype,
                "layout": self.layout, "quantization": q, "axes_from_pytorch": self.axes,
                "pytorch": {"shape": self.pytorch_shape, "dtype": self.pytorch_dtype,
                            "layout": self.pytorch_layout}, **self.facts}


def _dims(v: ir.Value) -> list[Any]:
    return [d if isinstance(d, int) else str(d) for d in (v.shape or ())]


def boundary(model: ir.Model, target: Target, artifact: Artifact, image_layout: str | None
             ) -> tuple[list[Boundary], list[Boundary]]:
    """Inputs and outputs of the IR (PyTorch's side) matched with the artifact's by name.
    `image_layout`: the layout --preprocess declared for the model's rank-4 float input."""
    graph = model.graph
    sig = target.artifact_io(artifact)

    def side(values: list[ir.Value], declared: list[dict[str, Any]] | None,
             declared_image: str | None) -> list[Boundary]:
        by_name = {d["name"]: d for d in declared or []}
        out = []
        for v in values:
            dtype = eir.np_dtype(v.dtype).name if v.dtype is not None else "float32"
            layout = "NCHW" if eir.is_image(v) else "plain"
            if declared_image and len(v.shape or ()) == 4 and dtype.startswith("float"):
                layout = declared_image
            d = by_name.get(v.name)
            if d is None:
                if declared is not None:
                    raise ValueError(f"{artifact.path.name}: no tensor named '{v.name}'")
                d = {"shape": _dims(v), "dtype": dtype, "quantization": None,
                     "axes_from_ir": list(range(len(v.shape or ())))}
            q = d["quantization"]
            if q is not None:  # I/O quantization is per tensor: plain numbers for apps
                q = {"scale": float(q["scale"][0]), "zero_point": int(q["zero_point"][0])}
            facts = {k: d[k] for k in ("ncnn", "coreml") if k in d}
            out.append(Boundary(v.name, _dims(v), dtype, layout, list(d["shape"]), d["dtype"],
                                list(d["axes_from_ir"]), q, facts))
        return out

    inputs = [v for v in graph.inputs if v.name not in graph.initializers]
    return (side(inputs, sig and sig["inputs"], image_layout),
            side(list(graph.outputs), sig and sig["outputs"], None))


def artifact_inputs(samples: list[dict[str, np.ndarray]], inputs: list[Boundary]
                    ) -> list[dict[str, np.ndarray]]:
    """Parity inputs as the artifact takes them: its layout, and int8 when its inputs are."""
    by = {b.name: b for b in inputs}
    return [{k: by[k].to_artifact(v) if k in by else v for k, v in s.items()} for s in samples]


def artifact_outputs(expected: list[dict[str, np.ndarray]], outputs: list[Boundary]
                     ) -> list[dict[str, np.ndarray]]:
    """Expected outputs in the artifact's layout, as real (dequantized) values: PyTorch's
    numbers are the reference, an int8 output is compared after dequantizing it."""
    by = {b.name: b for b in outputs}
    return [{k: by[k].to_artifact(v, quantize=False) if k in by else v for k, v in e.items()}
            for e in expected]


def pytorch_inputs(manifest: dict[str, Any], feeds: dict[str, np.ndarray]
                   ) -> dict[str, np.ndarray]:
    """The inverse of `artifact_inputs` from a manifest: feeds for the IR (per-layer parity)."""
    out = dict(feeds)
    for t in manifest["inputs"]:
        arr = feeds.get(t["name"])
        axes = t.get("axes_from_pytorch")
        if arr is None or axes is None:
            continue
        q = t.get("quantization") or {}
        image = t.get("coreml", {})
        if "scale" in image:  # 8-bit pixels: the program computes pixels * scale + bias first
            arr = ImageInput(t["name"], image["scale"], tuple(image["bias"])).preprocess(arr)
        elif q.get("quantized"):
            arr = ((arr.astype(np.float32) - q["zero_point"]) * q["scale"]).astype(
                t["pytorch"]["dtype"])
        out[t["name"]] = np.ascontiguousarray(np.transpose(arr, np.argsort(axes)))
    return out


def preprocessing(text: str | None, inputs: list[Boundary]) -> dict[str, Any] | None:
    """What --preprocess says an app does to a picture before the model sees it."""
    from edgeexport.quantize.calibration import parse_preprocess

    spec = parse_preprocess(text)
    if not spec:
        return None
    images = [b for b in inputs
              if len(b.pytorch_shape) == 4 and b.pytorch_dtype.startswith("float")]
    if len(images) != 1:
        raise UsageError(f"--preprocess {text}: the model needs exactly one image input "
                         f"(rank-4 float), it has {len(images)}; leave --preprocess out")
    b = images[0]
    torch_layout = spec.get("layout", "nchw").upper()
    h, w = (b.pytorch_shape[2:4] if torch_layout == "NCHW" else b.pytorch_shape[1:3])
    channels = b.pytorch_shape[1] if torch_layout == "NCHW" else b.pytorch_shape[3]
    crop = spec.get("crop")
    scale = float(spec.get("scale", 255.0))
    mean, std = (_per_channel(spec.get(k, [d]), channels) for k, d in (("mean", 0.0),
                                                                         ("std", 1.0)))
    out: dict[str, Any] = {
        "input": b.name,
        "spec": text,
        "color": spec.get("mode", "L" if channels == 1 else "RGB"),
        "pixel_range": [0, 255],
        "scale": scale,
        "mean": mean,
        "std": std,
        "formula": "x[c] = (pixel[c] / scale - mean[c]) / std[c]",
        "value_range": [[(0.0 - m) / s, (255.0 / scale - m) / s] for m, s in zip(mean, std)],
        "crop": {"height": int(crop or h), "width": int(crop or w), "position": "center"},
        "size": {"height": int(h), "width": int(w)},
        "layout": b.layout,
        "dtype": b.dtype,
    }
    if spec.get("resize"):
        out["resize"] = {"shorter_side": int(spec["resize"]), "interpolation": "bilinear"}
    if b.quant is not None:
        out["then"] = "quantize: q = clamp(round(x / scale) + zero_point, -128, 127) with " \
                      f"inputs['{b.name}'].quantization"
    return out


def _per_channel(values: list[float], channels: int) -> list[float]:
    return [float(v) for v in values] * (channels if len(values) == 1 else 1)


def declared_layout(text: str | None) -> str | None:
    """The layout --preprocess says the PyTorch model's image input has (layout=nchw|nhwc)."""
    from edgeexport.quantize.calibration import parse_preprocess

    layout = parse_preprocess(text).get("layout")
    return layout.upper() if layout else None


def load_labels(path: str | None, outputs: list[ir.Value]
                ) -> tuple[list[str], dict[str, Any]] | None:
    """Class names, one per line, and the manifest entry naming the output they index."""
    if not path:
        return None
    labels = read_labels(path)
    return labels, labels_entry(path, labels, {v.name: _dims(v)[-1] if v.shape else None
                                               for v in outputs})


def read_labels(path: str | Path) -> list[str]:
    """A labels file: one class name per line (UTF-8), trailing empty lines dropped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read labels ({exc}); pass a UTF-8 text file with one "
                         "class name per line") from None
    while lines and not lines[-1].strip():
        lines.pop()
    labels = [line.strip() for line in lines]
    if not labels:
        raise UsageError(f"{path}: holds no labels; write one class name per line")
    return labels


def labels_entry(path: str | Path, labels: list[str], sizes: dict[str, Any]) -> dict[str, Any]:
    """The manifest's `labels` entry: the first output whose last axis (`sizes`, by output
    name) has one class per label."""
    match = next((n for n, s in sizes.items() if s == len(labels)), None)
    if match is None:
        raise UsageError(f"{path}: {len(labels)} labels, but no output has {len(labels)} classes "
                         f"on its last axis ({', '.join(f'{n}: {s}' for n, s in sizes.items())})"
                         "; one class name per line, in class index order")
    return {"path": LABELS_FILE, "count": len(labels), "output": match, "axis": -1}


def target_options(target: Target, options: Any, artifact: Artifact) -> dict[str, Any]:
    """The target's own options (its dataclass in edgeexport.target_options: no second list)
    with the values used."""
    from edgeexport.target_options import OPTIONS, own_fields

    out = {}
    given = target.opts(options)
    for f in own_fields(OPTIONS[target.name]):
        value = getattr(given, f.name)
        if value is None:
            value = artifact.extra.get(f.name, f.default)
        if isinstance(value, (str, int, float, bool)):
            out[f.name] = value
    # facts the target resolved (cpu board, ...); precision and compute_units are top-level keys
    for key, value in artifact.extra.items():
        if isinstance(value, (str, int, float, bool)) and key not in out \
                and key not in ("precision", "compute_units"):
            out[key] = value
    return out


def build(target: Target, artifact: Artifact, model: ir.Model, source: dict[str, Any],
          precision: str, quantization: dict[str, Any], tolerance: dict[str, Any],
          inputs: list[Boundary], outputs: list[Boundary], parity: list[dict[str, Any]],
          parity_source: str, options: Any, preprocess: str | None,
          labels: dict[str, Any] | None, stage: Path, tool_versions: dict[str, str]
          ) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "format_version": 1,
        "target": target.name,
        "artifact": artifact.path.relative_to(stage).as_posix(),
        "artifact_format": artifact.format,
        "ir": "ir.onnx" if artifact.format != "onnx" else artifact.path.name,
        "precision": precision,
    }
    if artifact.extra.get("compute_units"):  # CoreML: how apps load it
        manifest["compute_units"] = artifact.extra["compute_units"]
    manifest.update({
        "target_options": target_options(target, options, artifact),
        "quantization": quantization,
        "inputs": [b.to_json() for b in inputs],
        "outputs": [b.to_json() for b in outputs],
        "preprocessing": preprocessing(preprocess, inputs),
    })
    if labels is not None:
        manifest["labels"] = labels
    by_name = {b.name: b for b in inputs + outputs}
    for e in parity:  # what each stored tensor is: the artifact's layout; int8 codes or reals
        b = by_name.get(e["tensor"])
        e["layout"] = b.layout if b is not None else "plain"
        e["quantized"] = bool(e["kind"] == "input" and b is not None and b.quant is not None)
    manifest.update({
        "tolerances": tolerance,
        "source": source,
        "tool_versions": tool_versions,
        "parity_samples": {"count": 1 + max([e["sample"] for e in parity] + [-1]),
                           "source": parity_source},
        "parity": parity,
        "files": {},
    })
    return manifest


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def errors(manifest: dict[str, Any]) -> list[str]:
    """Where `manifest` breaks the schema (empty when it follows it)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))]


def check(manifest: dict[str, Any]) -> None:
    """Raise when the manifest the pipeline built breaks its own schema (a bug of ours)."""
    problems = errors(json.loads(json.dumps(manifest, default=_plain)))
    if problems:
        raise ValueError("manifest.json breaks manifest.schema.json: " + "; ".join(problems[:5]))


def _plain(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o).__name__)
