"""Our vulkan target's ncnn model against pnnx's, side by side in one run: conversion time from
the same ONNX IR, file size, ncnn CPU latency and ncnn Vulkan latency (lavapipe here).

    .venv/bin/pip install --no-deps pnnx      # pnnx's wheel names torch, which is already here
    .venv/bin/python benchmarks/bench_vulkan.py [--models mobilenet_v2_pretrained,resnet18]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeexport import ir as eir
from edgeexport.exporter import parse_input_spec
from edgeexport.pipeline import ConvertOptions, Timer, export_and_optimize
from edgeexport.runtimes import get
from edgeexport.target_options import VulkanOptions
from edgeexport.validate import error_stats

SHAPES = {
    "mobilenet_v2_pretrained": "1,3,224,224", "resnet18": "1,3,224,224",
    "resnet_small": "1,3,64,64", "vit_tiny": "1,3,32,32", "mobilevit_xxs_like": "1,3,64,64",
}


def pnnx_exe() -> str:
    try:
        import pnnx
    except ImportError:
        sys.exit("bench_vulkan: pnnx is not installed; run `.venv/bin/pip install --no-deps "
                 "pnnx` (its wheel declares torch, which is already in the venv)")
    return pnnx.EXEC_PATH


def ours(onnx_path: Path, out: Path) -> tuple[Path, float]:
    """Load the IR and emit model.param/bin (fp16 storage, the target's default)."""
    from edgeexport.delegates import load_target

    t = time.perf_counter()
    model = eir.load(onnx_path)
    art = load_target("vulkan").emit(model, out, VulkanOptions(precision="fp16"))
    return art.path, time.perf_counter() - t


def theirs(exe: str, onnx_path: Path, out: Path, shape: str) -> tuple[Path, float]:
    """pnnx on the same ONNX file (it writes fp16 weights by default, as we do)."""
    src = out / "model.onnx"
    shutil.copy(onnx_path, src)
    t = time.perf_counter()
    subprocess.run([exe, str(src), f"inputshape=[{shape}]"], cwd=out, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out / "model.ncnn.param", time.perf_counter() - t


def latencies(runtime: str, params: dict[str, Path], x: np.ndarray, runs: int,
              warmup: int) -> dict[str, tuple]:
    """Median ms per tool, runs interleaved so that load on a shared machine hits both alike."""
    sessions = {}
    for tool, p in params.items():
        try:
            sessions[tool] = get(runtime).load(p, precision="fp16", threads=2)
        except RuntimeError as exc:  # e.g. a pnnx model with a layer ncnn cannot parse
            print(f"bench_vulkan: {tool}: {exc}", file=sys.stderr)
    outs, times = {}, {tool: [] for tool in sessions}
    for _ in range(warmup):  # first runs pay for pipeline creation and thread start-up
        for tool, s in sessions.items():
            outs[tool] = next(iter(s.run({"x": x}).values()))
    for _ in range(runs):
        for tool, s in sessions.items():
            t = time.perf_counter()
            s.run({"x": x})
            times[tool].append((time.perf_counter() - t) * 1000)
    return {tool: (statistics.median(times[tool]), outs[tool], sessions[tool].device)
            for tool in sessions}


def size(param: Path) -> int:
    return param.stat().st_size + param.with_suffix(".bin").stat().st_size


def bench(name: str, exe: str, repeats: int, runs: int, work: Path) -> list[list[str]]:
    shape = SHAPES[name]
    opts = ConvertOptions(target="vulkan", input_specs=[parse_input_spec(shape)])
    result, _ = export_and_optimize(f"edgeexport.zoo:{name}", opts, Timer())
    onnx_path = work / f"{name}.onnx"
    eir.save(result.model, onnx_path)  # the one input both converters get
    conv: dict[str, list[float]] = {"edgeexport": [], "pnnx": []}
    params: dict[str, Path] = {}
    for i in range(repeats):
        for tool in conv:
            out = work / f"{name}-{tool}-{i}"
            out.mkdir()
            param, secs = (ours(onnx_path, out) if tool == "edgeexport"
                           else theirs(exe, onnx_path, out, shape))
            conv[tool].append(secs)
            params[tool] = param
    x = np.random.default_rng(0).standard_normal(
        [int(d) for d in shape.split(",")]).astype(np.float32)
    cpu = latencies("ncnn-cpu", params, x, runs, warmup=5)
    vulkan = latencies("ncnn-vulkan", params, x, max(3, runs // 4), warmup=2)
    rows = []
    for tool, param in params.items():
        if tool not in cpu:
            rows.append([name, tool, f"{statistics.median(conv[tool]):.3f}",
                         f"{size(param) / 1e6:.2f}", "-", "-", "ncnn cannot load it"])
            continue
        cpu_ms, vk_ms, device = cpu[tool][0], vulkan[tool][0], vulkan[tool][2]
        rows.append([name, tool, f"{statistics.median(conv[tool]):.3f}",
                     f"{size(param) / 1e6:.2f}", f"{cpu_ms:.2f}", f"{vk_ms:.1f}", device])
    if len(cpu) < 2:
        return rows
    outs = {tool: cpu[tool][1] for tool in params}
    diff = error_stats(outs["pnnx"].reshape(-1), outs["edgeexport"].reshape(-1))
    ratio_cpu = float(rows[0][4]) / float(rows[1][4])
    ratio_conv = float(rows[0][2]) / float(rows[1][2])
    ratio_size = size(params["edgeexport"]) / size(params["pnnx"])
    ratio_vk = float(rows[0][5]) / float(rows[1][5])
    rows.append([name, "ours/pnnx", f"{ratio_conv:.2f}x", f"{ratio_size:.2f}x",
                 f"{ratio_cpu:.2f}x", f"{ratio_vk:.2f}x", f"outputs cos {diff.cosine:.6f}"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mobilenet_v2_pretrained")
    ap.add_argument("--repeats", type=int, default=3, help="conversions per tool (median)")
    ap.add_argument("--runs", type=int, default=30, help="timed CPU inferences (median)")
    args = ap.parse_args()
    exe = pnnx_exe()
    header = ["model", "tool", "convert_s", "size_MB", "ncnn_cpu_ms", "ncnn_vulkan_ms", "device"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_vulkan_") as tmp:
        for name in args.models.split(","):
            rows += bench(name, exe, args.repeats, args.runs, Path(tmp))
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
