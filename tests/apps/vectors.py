"""The shared test vectors (tests/vectors/*.json) that Python, Kotlin and Swift all check: made
here from edgeexport's own code, so they are regenerated, never edited by hand.

    python -m tests.apps.vectors      rewrites tests/vectors/*.json
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgeexport.metrics import TOLERANCES, ErrorStats, error_stats, merge
from edgeexport.quantize.calibration import parse_preprocess
from edgeexport.validate.manifest import Boundary, preprocessing

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def _f32(a: np.ndarray) -> list:
    return [float(v) for v in np.asarray(a, np.float32).ravel()]


def _stats_json(s: ErrorStats) -> dict[str, Any]:
    return s.to_json()


def statistics_vectors() -> dict[str, Any]:
    """Pairs of (expected, actual) float32 tensors with edgeexport.metrics' statistics and the
    violations of every precision's tolerance; merges over samples and over outputs."""
    rng = np.random.default_rng(13)
    logits = rng.normal(0, 3, (4, 10)).astype(np.float32)
    noisy = (logits + rng.normal(0, 0.8, logits.shape)).astype(np.float32)
    pairs = {
        "fp32_close": (logits, (logits + rng.normal(0, 1e-6, logits.shape)).astype(np.float32)),
        "int8_noisy_rows": (logits, noisy),
        "identical": (logits, logits.copy()),
        "constant_expected": (np.full((1, 6), 2.5, np.float32),
                              np.array([[2.5, 2.4, 2.5, 2.6, 2.5, 2.5]], np.float32)),
        "both_zero": (np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32)),
        "actual_zero": (logits[:1], np.zeros((1, 10), np.float32)),
        "last_axis_one": (rng.normal(size=(3, 1)).astype(np.float32),
                          rng.normal(size=(3, 1)).astype(np.float32)),
        "encoder_3d": (rng.normal(size=(1, 4, 8)).astype(np.float32),
                       rng.normal(size=(1, 4, 8)).astype(np.float32) * 0.05),
        "negated": (logits[:2], -logits[:2]),
    }
    cases = []
    for name, (e, a) in pairs.items():
        s = error_stats(e, a)
        cases.append({
            "name": name, "shape": list(e.shape), "expected": _f32(e), "actual": _f32(a),
            "stats": _stats_json(s),
            "violations": {k: t.violations(s) for k, t in TOLERANCES.items()},
        })
    tolerances = {k: t.to_json() for k, t in TOLERANCES.items()}
    sample_stats = [error_stats(*pairs[n]) for n in ("fp32_close", "int8_noisy_rows",
                                                     "last_axis_one")]
    merges = [{"stats": [_stats_json(s) for s in sample_stats], "samples": flag,
               "merged": _stats_json(merge(sample_stats, samples=flag))} for flag in (True, False)]
    return {"about": "edgeexport.metrics.error_stats / Tolerance.violations / merge; floats are "
                     "float32 values, stats are float64; 'inf' strings are infinities",
            "tolerances": tolerances, "cases": cases, "merges": merges}


def _test_image(width: int, height: int, seed: int) -> np.ndarray:
    """HxWx3 uint8 with edges, gradients and noise: resampling errors show up on it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1),
                    ((x // 3 + y // 3) % 2) * 200 + 20], -1).astype(np.int32)
    img += rng.integers(-20, 21, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


#: (name, image size WxH, --preprocess text, PyTorch's input shape, the artifact's layout when
#: it differs from PyTorch's: --io-layout nhwc)
PREPROCESS_CASES = [
    ("downscale_nchw", (40, 30), "resize=20,crop=16,mean=0.485/0.456/0.406,"
     "std=0.229/0.224/0.225,layout=nchw,scale=255", (1, 3, 16, 16), None),
    ("upscale_nchw", (13, 9), "resize=16,crop=16,mean=0.5/0.5/0.5,std=0.5/0.5/0.5,"
     "layout=nchw,scale=255", (1, 3, 16, 16), None),
    ("no_resize_nhwc", (23, 19), "mean=0.485/0.456/0.406,std=0.229/0.224/0.225,layout=nhwc,"
     "scale=255", (1, 12, 10, 3), None),
    ("gray_nchw", (31, 27), "resize=14,crop=12,mean=0.5,std=0.25,layout=nchw,scale=255,mode=l",
     (1, 1, 12, 12), None),
    ("imagenet_small", (50, 37), "imagenet", (1, 3, 24, 24), None),
    ("imagenet_artifact_nhwc", (41, 47), "imagenet", (1, 3, 20, 20), "NHWC"),
]


def image_input(text: str, shape: tuple[int, ...], artifact_layout: str | None = None
                ) -> Boundary:
    """A float image input 'x' of PyTorch `shape` (layout from --preprocess TEXT), as an
    artifact takes it: in PyTorch's layout, or NHWC (`artifact_layout`, --io-layout nhwc)."""
    torch_layout = parse_preprocess(text).get("layout", "nchw").upper()
    axes = [0, 2, 3, 1] if (torch_layout, artifact_layout) == ("NCHW", "NHWC") else [0, 1, 2, 3]
    return Boundary("x", list(shape), "float32", torch_layout, [shape[a] for a in axes],
                    "float32", axes)


def python_preprocess(rgb: np.ndarray, text: str, shape: tuple[int, ...]) -> tuple[np.ndarray,
                                                                                    np.ndarray]:
    """The tensor edgeexport's `--preprocess TEXT` path makes of an RGB image (through a real
    image file and quantize.calibration.load), and the 8-bit image after resize and crop."""
    from PIL import Image

    from edgeexport.exporter.inputs import InputSpec
    from edgeexport.quantize import calibration

    pp = calibration.parse_preprocess(text)
    layout = pp.get("layout", "nchw")
    h, w = (shape[2], shape[3]) if layout == "nchw" else (shape[1], shape[2])
    channels = shape[1] if layout == "nchw" else shape[3]
    with tempfile.TemporaryDirectory() as d:
        Image.fromarray(rgb).save(Path(d) / "image.png")
        feeds = calibration.load(d, [InputSpec("x", shape)], preprocess=text).samples
        with Image.open(Path(d) / "image.png") as im:
            im = im.convert(pp.get("mode", "L" if channels == 1 else "RGB"))
            sized = np.asarray(calibration._resize_crop(im, pp.get("resize"),
                                                        pp.get("crop") or (h, w), (h, w)))
    return feeds[0]["x"], sized


def preprocessing_vectors() -> dict[str, Any]:
    cases = []
    for i, (name, (w, h), text, shape, artifact_layout) in enumerate(PREPROCESS_CASES):
        rgb = _test_image(w, h, seed=i)
        tensor, sized = python_preprocess(rgb, text, shape)
        b = image_input(text, shape, artifact_layout)
        cases.append({
            "name": name, "preprocessing": preprocessing(text, [b]), "input": b.to_json(),
            "image": {"width": w, "height": h, "rgb": [int(v) for v in rgb.ravel()]},
            "sized": {"width": int(sized.shape[1]), "height": int(sized.shape[0]),
                      "channels": 1 if sized.ndim == 2 else int(sized.shape[2]),
                      "pixels": [int(v) for v in sized.ravel()]},
            "tensor": _f32(b.to_artifact(tensor)),
        })
    return {"about": "an RGB image (row-major, 3 bytes a pixel) through edgeexport's --preprocess "
                     "path (quantize.calibration): the 8-bit image after resize+crop and the "
                     "float32 tensor as the artifact takes it; `preprocessing` and `input` are "
                     "manifest.json's preprocessing and inputs[] entry (bundle contract v1)",
            "cases": cases}


def build() -> dict[str, dict[str, Any]]:
    return {"statistics.json": statistics_vectors(), "preprocessing.json": preprocessing_vectors()}


def dumps(data: Any, indent: str = "") -> str:
    """JSON with one line per list of numbers (readable diffs, a quarter of indent=1's size)."""
    inner = indent + " "
    if isinstance(data, dict):
        items = [f"{inner}{json.dumps(k)}: {dumps(v, inner)}" for k, v in data.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}" if items else "{}"
    if isinstance(data, list) and any(isinstance(v, (dict, list)) for v in data):
        return "[\n" + ",\n".join(inner + dumps(v, inner) for v in data) + f"\n{indent}]"
    return json.dumps(data)


def main() -> None:
    VECTORS.mkdir(exist_ok=True)
    for name, data in build().items():
        (VECTORS / name).write_text(dumps(data) + "\n")
        print(f"wrote {VECTORS / name}")


if __name__ == "__main__":
    main()
