"""Latency of the numpy reference runtime against onnxruntime on MobileNetV2 (1x3x224x224).

    .venv/bin/python benchmarks/bench_reference.py [--runs 60] [--threads 1]

Both runtimes get the same number of threads (--threads, default 1): numpy's BLAS pool and the
reference's block pool, and onnxruntime's intra_op_num_threads. Runs alternate between the two
so that load from other processes on a shared machine hits both alike. The table reports wall
and CPU time (the process's, all threads) per run, medians and p10, and both ratios. Target:
reference <= 3x onnxruntime.

On a loaded machine, more than one thread mostly measures spinning: OpenBLAS's idle workers
busy-wait for a long time after each GEMM. numpy's OpenBLAS also picks its kernels by CPU model
(printed in the header); on CPUs it does not know it falls back to older ones, which
OPENBLAS_CORETYPE (e.g. SkylakeX on an AVX-512 CPU) overrides when set before numpy loads.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

from edgeexport._blas import has_avx512, prefer_avx512_kernels

CORETYPE = prefer_avx512_kernels()  # the same choice the edgeexport command makes

import numpy as np  # noqa: E402  (after the BLAS kernel choice)


def _blas() -> str:
    from threadpoolctl import threadpool_info

    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    if not pools:
        return "no BLAS found"
    pool = pools[0]
    return (f"{pool.get('internal_api')} {pool.get('version')} "
            f"({pool.get('architecture') or '?'} kernels)")


def _export(path: Path) -> None:
    import torch

    from edgeexport import ir as eir
    from edgeexport.zoo.mobilenet import MobileNetV2

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(MobileNetV2().eval(), (torch.randn(1, 3, 224, 224),),
                                    dynamo=True, opset_version=20, verbose=False)
    eir.save(program.model, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1, help="threads for each runtime")
    args = parser.parse_args()

    threads = args.threads
    # set before the kernels load: BLAS (via threadpoolctl) and the depthwise block pool
    os.environ["EDGEEXPORT_REFERENCE_THREADS"] = str(threads)
    from threadpoolctl import threadpool_limits

    import onnxruntime as ort

    from edgeexport import ir as eir
    from edgeexport.runtimes.reference import Interpreter

    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(threads, user_api="blas"):
        path = Path(tmp) / "mobilenet_v2.onnx"
        _export(path)
        model = eir.load(path)
        name = model.graph.inputs[0].name
        x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)

        reference = Interpreter(model)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        runners = {"reference (numpy)": lambda: reference.run({name: x}),
                   "onnxruntime": lambda: session.run(None, {name: x})}
        ours = next(iter(runners["reference (numpy)"]().values()))
        theirs = runners["onnxruntime"]()[0]
        times: dict[str, list[float]] = {k: [] for k in runners}
        cpu: dict[str, list[float]] = {k: [] for k in runners}
        for _ in range(3):  # warm-up: allocator, BLAS threads, onnxruntime's arena
            for run in runners.values():
                run()
        for _ in range(args.runs):
            for key, run in runners.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                run()
                times[key].append((time.perf_counter() - start) * 1e3)
                cpu[key].append((time.process_time() - start_cpu) * 1e3)

    print(f"MobileNetV2 1x3x224x224 float32, {threads} thread(s) each, {args.runs} alternating "
          f"runs, numpy {np.__version__} with {_blas()}, onnxruntime {ort.__version__}")
    error = float(np.abs(ours - theirs).max())
    scale = float(np.abs(theirs).max())
    print(f"max |reference - onnxruntime| = {error:.3g} (max |output| {scale:.3g}, "
          f"relative {error / scale:.2g})")
    wall = {k: np.asarray(v) for k, v in times.items()}
    used = {k: np.asarray(v) for k, v in cpu.items()}
    # CPU time is steadier than wall time on a shared machine (it leaves out waiting for a
    # core), but with threads > 1 it also counts worker threads that busy-wait
    print(f"{'runtime':<18} {'wall ms':>8} {'p10':>6} {'p90':>6} {'cpu ms':>7} {'p10':>6} "
          f"{'wall/ort':>8} {'cpu/ort':>8}")
    base_wall, base_cpu = np.median(wall["onnxruntime"]), np.median(used["onnxruntime"])
    for key in runners:
        w, c = wall[key], used[key]
        print(f"{key:<18} {np.median(w):>8.1f} {np.percentile(w, 10):>6.1f} "
              f"{np.percentile(w, 90):>6.1f} {np.median(c):>7.1f} {np.percentile(c, 10):>6.1f} "
              f"{np.median(w) / base_wall:>7.2f}x {np.median(c) / base_cpu:>7.2f}x")
    ratio_wall = np.median(wall["reference (numpy)"]) / base_wall
    ratio_cpu = np.median(used["reference (numpy)"]) / base_cpu
    verdict = "met" if max(ratio_wall, ratio_cpu) <= 3 else "NOT met"
    print(f"reference / onnxruntime: {ratio_wall:.2f}x wall, {ratio_cpu:.2f}x CPU "
          f"(medians; target <= 3x: {verdict})")
    kernels = _blas()
    if has_avx512() and "SkylakeX" not in kernels and "Cooperlake" not in kernels:
        print(f"note: this CPU has AVX-512 (as onnxruntime uses) but numpy's OpenBLAS runs "
              f"{kernels}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')} "
              "in the environment. Compare with ISA-matched kernels: "
              "OPENBLAS_CORETYPE=SkylakeX python benchmarks/bench_reference.py")


if __name__ == "__main__":
    main()
