"""Calibration data: .npy / .npz files, a folder of images with an explicit preprocessing spec,
or (only when nothing is given) random data, which the report flags loudly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeexport.errors import UsageError
from edgeexport.exporter.inputs import InputSpec, sample_inputs

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}
RANDOM_WARNING = ("calibration used RANDOM data: int8 scales fit noise, not your inputs; pass "
                  "--calibration-data (.npy, .npz or an image folder) for a usable model")


@dataclass
class CalibrationSet:
    samples: list[dict[str, np.ndarray]]
    source: str
    warnings: list[str] = field(default_factory=list)


def load(path: str | None, specs: list[InputSpec], *, preprocess: str | None = None,
         max_samples: int | None = None, int_high: dict[str, int] | None = None,
         random_samples: int = 32) -> CalibrationSet:
    """Calibration samples as feeds (input name -> array of the model's input shape)."""
    if path is None or path == "random":
        samples = [dict(zip([s.name for s in specs], sample_inputs(specs, seed=1000 + i,
                                                                    int_high=int_high)))
                   for i in range(random_samples)]
        return CalibrationSet(samples, "random", [RANDOM_WARNING])
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{path}: calibration data not found (pass an .npy, .npz or a folder "
                         "of images)")
    if p.is_dir():
        samples = _images(p, specs, preprocess)
    elif p.suffix == ".npy":
        if len(specs) != 1:
            raise UsageError(f"{path}: the model has {len(specs)} inputs "
                             f"({', '.join(s.name for s in specs)}); pass an .npz with one "
                             "array per input name")
        samples = [{specs[0].name: a} for a in _split(_read(p), specs[0], path)]
    elif p.suffix == ".npz":
        data = _read(p)
        missing = [s.name for s in specs if s.name not in data.files]
        if missing:
            raise UsageError(f"{path}: no array for input(s) {', '.join(missing)} (found "
                             f"{', '.join(data.files) or 'nothing'})")
        per_input = {s.name: _split(data[s.name], s, f"{path}[{s.name}]") for s in specs}
        counts = {len(v) for v in per_input.values()}
        if len(counts) != 1:
            raise UsageError(f"{path}: arrays hold different sample counts {sorted(counts)}")
        samples = [{k: v[i] for k, v in per_input.items()} for i in range(counts.pop())]
    else:
        raise UsageError(f"{path}: unknown calibration data format (use .npy, .npz or a folder "
                         "of images)")
    if not samples:
        raise UsageError(f"{path}: holds no calibration samples")
    if max_samples:
        samples = samples[:max_samples]
    return CalibrationSet(samples, str(path))


def _read(p: Path):
    try:
        return np.load(p, allow_pickle=False)
    except Exception as exc:
        raise UsageError(f"{p}: cannot read calibration data ({type(exc).__name__}: {exc})") \
            from None


def _split(arr: np.ndarray, spec: InputSpec, where: str) -> list[np.ndarray]:
    """N samples stacked on a new leading axis, or along the batch axis when the batch is 1."""
    shape = tuple(1 if d is None else d for d in spec.shape)
    want = np.dtype(spec.dtype)
    if arr.dtype.kind != want.kind and not (arr.dtype.kind in "iu" and want.kind in "iu"):
        raise UsageError(f"{where}: dtype {arr.dtype} does not fit input '{spec.name}' "
                         f"({want}); convert the data to {want}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = ~np.isfinite(arr)
        kinds = " and ".join(k for k, m in (("NaN", np.isnan(arr)), ("Inf", np.isinf(arr)))
                             if m.any())
        first = int(np.argwhere(bad.reshape(len(arr), -1) if arr.ndim > 1 else bad)[0][0])
        raise UsageError(f"{where}: {int(bad.sum())} {kinds} value(s), the first in sample "
                         f"{first}; clean the data (numpy.nan_to_num) or drop those samples")
    if arr.ndim == len(shape) + 1 and _fits(arr.shape[1:], spec.shape):
        return [a.astype(want) for a in arr]
    if shape and shape[0] == 1 and arr.ndim == len(shape) and _fits(arr.shape[1:],
                                                                     spec.shape[1:]):
        return [a[None].astype(want) for a in arr]
    raise UsageError(f"{where}: shape {arr.shape} does not fit input '{spec.name}' "
                     f"{list(shape)}; stack N samples as (N, {', '.join(map(str, shape))})"
                     + (f" or (N, {', '.join(map(str, shape[1:]))})" if shape and shape[0] == 1
                        else ""))


def _fits(got: tuple[int, ...], want: tuple) -> bool:
    return len(got) == len(want) and all(w is None or g == w for g, w in zip(got, want))


def parse_preprocess(text: str | None) -> dict:
    """'resize=256,crop=224,mean=0.485/0.456/0.406,std=0.229/0.224/0.225,layout=nchw,scale=255'
    (or 'imagenet' for exactly that)."""
    if not text:
        return {}
    if text.strip() == "imagenet":
        text = ("resize=256,crop=224,mean=0.485/0.456/0.406,std=0.229/0.224/0.225,"
                "layout=nchw,scale=255")
    spec: dict = {}
    for part in text.split(","):
        key, _, val = part.partition("=")
        key = key.strip().lower()
        try:
            if key in ("resize", "crop"):
                spec[key] = int(val)
            elif key in ("mean", "std"):
                spec[key] = [float(v) for v in val.split("/")]
            elif key == "scale":
                spec[key] = float(val)
            elif key == "layout" and val.lower() in ("nchw", "nhwc"):
                spec[key] = val.lower()
            elif key == "mode" and val.lower() in ("rgb", "l"):
                spec[key] = val.upper()
            else:
                raise ValueError(key)
        except ValueError:
            raise UsageError(f"--preprocess: cannot read '{part}' (keys: resize=N, crop=N, "
                             "mean=a/b/c, std=a/b/c, scale=255, layout=nchw|nhwc, mode=rgb|l)") \
                from None
    return spec


def _images(folder: Path, specs: list[InputSpec], preprocess: str | None) -> list[dict]:
    from PIL import Image

    if len(specs) != 1:
        raise UsageError(f"{folder}: an image folder can only calibrate a single-input model")
    spec = specs[0]
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UsageError(f"{folder}: no images found ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if not preprocess:
        raise UsageError(f"{folder}: an image folder needs --preprocess (e.g. 'imagenet' or "
                         "'resize=256,crop=224,mean=.../std=...,layout=nchw')")
    pp = parse_preprocess(preprocess)
    shape = tuple(1 if d is None else d for d in spec.shape)
    if len(shape) != 4:
        raise UsageError(f"{folder}: input '{spec.name}' {list(shape)} is not an image batch")
    layout = pp.get("layout", "nchw")
    h, w = (shape[2], shape[3]) if layout == "nchw" else (shape[1], shape[2])
    channels = shape[1] if layout == "nchw" else shape[3]
    mode = pp.get("mode", "L" if channels == 1 else "RGB")
    out = []
    for f in files:
        try:
            with Image.open(f) as im:
                im = im.convert(mode)
                im = _resize_crop(im, pp.get("resize"), pp.get("crop") or (h, w), (h, w))
                x = np.asarray(im, np.float32)
        except Exception as exc:
            raise UsageError(f"{f}: cannot read image ({type(exc).__name__}: {exc})") from None
        x = x.reshape(x.shape[0], x.shape[1], -1) / pp.get("scale", 255.0)
        mean = np.array(pp.get("mean", [0.0]), np.float32)
        std = np.array(pp.get("std", [1.0]), np.float32)
        x = (x - mean) / std
        x = x.transpose(2, 0, 1) if layout == "nchw" else x
        out.append({spec.name: np.ascontiguousarray(x[None]).astype(spec.dtype)})
    return out


def _resize_crop(im, resize: int | None, crop, size: tuple[int, int]):
    from PIL import Image

    if resize:  # shorter side to `resize`, like torchvision's Resize(int)
        w, h = im.size
        s = resize / min(w, h)
        im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR)
    ch, cw = (crop, crop) if isinstance(crop, int) else crop
    w, h = im.size
    if (w, h) != (cw, ch) and w >= cw and h >= ch:
        left, top = (w - cw) // 2, (h - ch) // 2
        im = im.crop((left, top, left + cw, top + ch))
    if im.size != (size[1], size[0]):
        im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return im
