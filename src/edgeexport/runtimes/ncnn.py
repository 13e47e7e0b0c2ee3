"""ncnn runtimes: the vulkan target's `.param/.bin` executed by the `ncnn` package on a Vulkan
device (Mesa lavapipe here, any GPU elsewhere) and on the CPU, reporting the device really used.

ncnn quietly runs on the CPU when Vulkan cannot start; a session says so (`device == "cpu"`,
`fallback` set) so that such a run is never counted as Vulkan parity.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgeexport.runtimes.base import Runtime, Session

#: set to 1 to make Vulkan unavailable to ncnn (its loader gets an ICD list naming nothing)
DISABLE_ENV = "EDGEEXPORT_DISABLE_VULKAN"
_NO_ICD = "/nonexistent/edgeexport-vulkan-disabled.json"
_ICD_DIRS = ("/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d")
IO_SUFFIX = ".io.json"


def configure_vulkan_env() -> str:
    """Choose the Vulkan driver before ncnn creates its instance; returns how it was chosen.

    A configured ICD (VK_ICD_FILENAMES / VK_DRIVER_FILES) or a GPU device node is left to the
    Vulkan loader; otherwise lavapipe is pinned so that CI machines always have a device.
    """
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        os.environ["VK_ICD_FILENAMES"] = os.environ["VK_DRIVER_FILES"] = _NO_ICD
        return f"disabled by {DISABLE_ENV}"
    for var in ("VK_ICD_FILENAMES", "VK_DRIVER_FILES"):
        if os.environ.get(var):
            return f"{var}={os.environ[var]}"
    if glob.glob("/dev/dri/renderD*") or os.path.exists("/dev/nvidia0"):
        return "system Vulkan loader (GPU device present)"
    icds = sorted(p for d in _ICD_DIRS for p in glob.glob(os.path.join(d, "lvp_icd*.json")))
    if not icds:
        return "system Vulkan loader (no GPU, lavapipe not installed)"
    os.environ["VK_ICD_FILENAMES"] = os.environ["VK_DRIVER_FILES"] = icds[0]
    return f"lavapipe pinned ({icds[0]})"


_ENV_CHOICE: str | None = None


def _ncnn() -> Any:
    """Import ncnn once, after the Vulkan driver choice is in the environment."""
    global _ENV_CHOICE
    if _ENV_CHOICE is None:
        _ENV_CHOICE = configure_vulkan_env()
    import ncnn

    return ncnn


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """ncnn prints its GPU table (or vkCreateInstance errors) to fd 2 when it creates the Vulkan
    instance; the report carries that information, so keep the command line clean."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_GPU_COUNT: int | None = None


def vulkan_devices() -> list[dict[str, Any]]:
    """The Vulkan devices ncnn sees (empty when Vulkan cannot start)."""
    global _GPU_COUNT
    ncnn = _ncnn()
    if _GPU_COUNT is None:
        with _quiet_stderr():
            _GPU_COUNT = ncnn.get_gpu_count()
    devices = []
    for i in range(_GPU_COUNT):
        info = ncnn.get_gpu_info(i)
        kinds = {0: "discrete", 1: "integrated", 2: "virtual", 3: "cpu"}
        devices.append({"index": i, "name": info.device_name(),
                        "type": kinds.get(info.type(), str(info.type())),
                        "api_version": info.api_version(), "driver_version": info.driver_version()})
    return devices


def read_io(param: Path) -> dict[str, Any] | None:
    """The emitter's description of the blobs (IR names, shapes), when it is beside the .param."""
    path = param.with_name(param.stem + IO_SUFFIX)
    if not path.exists():
        return None
    return json.loads(path.read_text())


class NcnnSession(Session):
    """One ncnn Net. `vulkan` asks for the GPU; `device` says where it really runs."""

    def __init__(self, param: Path, vulkan: bool, threads: int | None = None,
                 precision: str | None = None) -> None:
        ncnn = _ncnn()
        self.param, self.weights = Path(param), Path(param).with_suffix(".bin")
        if not self.weights.exists():
            raise FileNotFoundError(f"{self.weights}: the ncnn weights are missing beside "
                                    f"{self.param.name}")
        self.io = read_io(self.param)
        self.precision = precision or (self.io or {}).get("precision", "fp32")
        fp16 = self.precision == "fp16"
        devices = vulkan_devices() if vulkan else []
        net = ncnn.Net()
        opt = net.opt
        opt.use_vulkan_compute = bool(vulkan and devices)
        # fp32 parity needs every reduced-precision path off; fp16 uses ncnn's defaults
        opt.use_fp16_storage = opt.use_fp16_packed = opt.use_fp16_arithmetic = fp16
        opt.use_bf16_storage = False
        if threads:
            opt.num_threads = int(threads)
        gpu = None
        if vulkan and devices:
            gpu = devices[ncnn.get_default_gpu_index()]
            net.set_vulkan_device(gpu["index"])
        if net.load_param(str(self.param)) != 0:
            raise RuntimeError(f"ncnn could not parse {self.param}")
        if net.load_model(str(self.weights)) != 0:
            raise RuntimeError(f"ncnn could not load {self.weights}")
        self.net = net
        on_gpu = bool(vulkan and gpu is not None and net.opt.use_vulkan_compute)
        self.device = gpu["name"] if on_gpu else "cpu"
        #: why a Vulkan session ran on the CPU (None when it did not, or was not asked to)
        self.fallback: str | None = None
        if vulkan and not on_gpu:
            why = ("no Vulkan device (the Vulkan instance could not start)" if not devices
                   else "ncnn turned Vulkan compute off while loading")
            self.fallback = (f"Vulkan unavailable: {why}; ncnn ran on the CPU, so this is not "
                             "Vulkan parity (driver choice: " + str(_ENV_CHOICE) + ")")
        self.details = {
            "requested": "vulkan" if vulkan else "cpu",
            "vulkan": on_gpu,
            "vulkan_device": gpu if on_gpu else None,
            "vulkan_driver_choice": _ENV_CHOICE,
            "precision": self.precision,
            "fp16_storage": fp16,
            "ncnn": getattr(ncnn, "__version__", "?"),
        }
        if self.fallback:
            self.details["fallback"] = self.fallback
        if self.io is not None:
            self.inputs = [(i["name"], i["blob"], tuple(i["ncnn_shape"]), i.get("feed", "float32"))
                           for i in self.io["inputs"]]
            self.outputs = [(o["name"], o["blob"], tuple(o["shape"])) for o in self.io["outputs"]]
        else:  # a model from another tool (pnnx): blob names stand for IR names
            self.inputs = [(n, n, None, "float32") for n in net.input_names()]
            self.outputs = [(n, n, None) for n in net.output_names()]

    def _extractor(self, feeds: dict[str, np.ndarray]) -> Any:
        ncnn = _ncnn()
        ex = self.net.create_extractor()
        # keep intermediates: several outputs (and run_all) read blobs other layers consumed
        ex.set_light_mode(False)
        for i, (name, blob, shape, feed) in enumerate(self.inputs):
            arr = feeds[name] if name in feeds else list(feeds.values())[i]
            if feed == "int32":  # ncnn's Embed reads the bits of its input as int32 ids
                arr = np.ascontiguousarray(arr, dtype=np.int32).view(np.float32)
            else:
                arr = np.ascontiguousarray(arr, dtype=np.float32)
            arr = arr.reshape(shape) if shape is not None else np.squeeze(arr, 0)
            # ncnn.Mat(array) borrows the array's memory with an unaligned channel step; the
            # clone owns aligned memory (the Vulkan upload reads whole aligned channels)
            if ex.input(blob, ncnn.Mat(arr).clone()) != 0:
                raise RuntimeError(f"ncnn rejected input blob '{blob}'")
        return ex

    @staticmethod
    def _extract(ex: Any, blob: str, shape: tuple[int, ...] | None) -> np.ndarray:
        ret, mat = ex.extract(blob)
        if ret != 0:
            raise RuntimeError(f"ncnn failed to compute blob '{blob}' (error {ret})")
        arr = np.array(mat, dtype=np.float32, copy=True)
        return arr.reshape(shape) if shape is not None else arr[None]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ex = self._extractor(feeds)
        return {name: self._extract(ex, blob, shape) for name, blob, shape in self.outputs}

    def run_all(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every IR value that has a blob of its own, extracted by blob name."""
        if self.io is None:
            raise NotImplementedError("per-layer parity needs the emitter's model.io.json")
        ex = self._extractor(feeds)
        out = {}
        for name, entry in self.io["blobs"].items():
            out[name] = self._extract(ex, entry["blob"], tuple(entry["shape"]))
        return out


class _NcnnRuntime(Runtime):
    formats = ("ncnn",)
    vulkan = False

    def unavailable_reason(self) -> str | None:
        try:
            _ncnn()
        except ImportError:
            return "the ncnn package is not installed (pip install 'edgeexport[vulkan]')"
        return None

    def load(self, path: Path, **options: Any) -> Session:
        path = Path(path)
        if path.suffix == ".bin":
            path = path.with_suffix(".param")
        return NcnnSession(path, self.vulkan, options.get("threads"), options.get("precision"))


class NcnnVulkanRuntime(_NcnnRuntime):
    """ncnn on a Vulkan device; a session that fell back to the CPU says so (`fallback`)."""

    name = "ncnn-vulkan"
    vulkan = True


class NcnnCpuRuntime(_NcnnRuntime):
    name = "ncnn-cpu"
    vulkan = False
