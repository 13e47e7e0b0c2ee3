"""coreml: runs an .mlpackage with CoreML itself through coremltools' predict. macOS only: on
any other system it reports itself unavailable with the reason (and parity says executed: false).
"""

from __future__ import annotations

import json
import logging
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgeexport.runtimes.base import Runtime, Session

logging.getLogger("coremltools").setLevel(logging.ERROR)

#: compute-unit names (coremltools.ComputeUnit) an artifact may ask for in its metadata
COMPUTE_UNITS = ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")


def macos_only_reason() -> str | None:
    """Why CoreML cannot run here, or None on a Mac with coremltools' native module."""
    if sys.platform != "darwin":
        return (f"CoreML runs only on macOS (coremltools predict needs Apple's CoreML framework); "
                f"this is {platform.system()} {platform.machine()}")
    try:
        import coremltools.libcoremlpython  # noqa: F401
    except ImportError as exc:
        return f"coremltools' native module libcoremlpython is missing ({exc})"
    return None


class CoreMLSession(Session):
    def __init__(self, path: Path, compute_units: str | None = None) -> None:
        import coremltools as ct

        spec = ct.utils.load_spec(str(path))
        meta = dict(spec.description.metadata.userDefined)
        units = compute_units or meta.get("com.edgeexport.compute_units", "ALL")
        self._model = ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, units))
        self._io = json.loads(meta.get("com.edgeexport.io_names", "{}"))
        self._inputs = {d.name: d for d in spec.description.input}
        self.device = f"coreml:{units}"
        self.details = {"compute_units": units, "coremltools": ct.__version__}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ir_to_mil = {ir: mil for mil, ir in self._io.items()}
        data = {}
        for name, arr in feeds.items():
            mil = ir_to_mil.get(name, name)
            arr = np.asarray(arr)
            desc = self._inputs.get(mil)
            if desc is not None and desc.type.WhichOneof("Type") == "imageType":
                space = desc.type.imageType.ColorSpace.Name(desc.type.imageType.colorSpace)
                data[mil] = image_from_planes(arr, space)
                continue
            data[mil] = arr.astype(np.int32) if arr.dtype == np.int64 else arr
        out = self._model.predict(data)
        return {self._io.get(k, k): np.asarray(v) for k, v in out.items()}


def image_from_planes(planes: np.ndarray, color_space: str) -> Any:
    """A 1 x 3 x H x W array of 8-bit planes, in the image input's channel order (RGB or BGR),
    as the PIL image CoreML's predict takes (always RGB: CoreML reorders for BGR itself)."""
    from PIL import Image

    hwc = np.asarray(planes).reshape(planes.shape[-3:]).transpose(1, 2, 0)
    if color_space == "BGR":
        hwc = hwc[..., ::-1]
    return Image.fromarray(np.ascontiguousarray(np.clip(hwc, 0, 255).astype(np.uint8)), "RGB")


class CoreMLRuntime(Runtime):
    name = "coreml"
    formats = ("mlpackage",)

    def unavailable_reason(self) -> str | None:
        return macos_only_reason()

    def load(self, path: Path, **options: Any) -> Session:
        reason = self.unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        from edgeexport.runtimes.mil import check_package_items

        check_package_items(Path(path))
        return CoreMLSession(Path(path), options.get("compute_units"))
