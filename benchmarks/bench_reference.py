"""Latency of the numpy reference runtime against onnxruntime on MobileNetV2 (1x3x224x224).

    .venv/bin/python benchmarks/bench_reference.py [--runs 30] [--threads N]

Both runtimes get the same number of threads: numpy's BLAS pool size (or --threads), used as
onnxruntime's intra_op_num_threads. Runs alternate between the two so that load from other
processes on a shared machine hits both alike; the table reports medians. Target: ratio <= 3.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def _blas_threads() -> int:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return len(os.sched_getaffinity(0))
    pools = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return pools[0] if pools else 1


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
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0, help="default: numpy's BLAS threads")
    args = parser.parse_args()

    threads = args.threads or _blas_threads()
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

    median = {k: float(np.median(v)) for k, v in times.items()}
    base = median["onnxruntime"]
    print(f"MobileNetV2 1x3x224x224 float32, {threads} thread(s) each, {args.runs} runs, "
          f"numpy {np.__version__}, onnxruntime {ort.__version__}")
    scale = float(np.abs(theirs).max())
    print(f"max |reference - onnxruntime| = {float(np.abs(ours - theirs).max()):.3g} "
          f"(relative to max |output| {scale:.3g}: "
          f"{float(np.abs(ours - theirs).max()) / scale:.2g})")
    # CPU time (all threads of the process) is steadier than wall time on a shared machine,
    # but counts the busy-waiting of BLAS / onnxruntime worker threads when threads > 1
    print(f"{'runtime':<20} {'median ms':>10} {'p10 ms':>8} {'p90 ms':>8} {'cpu ms':>8} "
          f"{'vs ort':>7}")
    for key, values in times.items():
        p10, p90 = np.percentile(values, [10, 90])
        print(f"{key:<20} {median[key]:>10.1f} {p10:>8.1f} {p90:>8.1f} "
              f"{float(np.median(cpu[key])):>8.1f} {median[key] / base:>6.2f}x")


if __name__ == "__main__":
    main()
