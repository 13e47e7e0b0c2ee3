"""The native runner's LiteRT latency against Python LiteRT's on the same .tflite, side by side
in one run, with the same XNNPACK thread count: Python is edgeexport's `litert` runtime
(ai_edge_litert Interpreter: set inputs, invoke, read outputs), native is
`edgeexport-run-native --bench` (LiteRt C API CompiledModel: copy in, run, copy out). Rounds
alternate between the two so that load on the machine hits both alike.

    make native   (or scripts/build-native.sh host)
    .venv/bin/python benchmarks/bench_native.py [--models resnet_small,bert_tiny] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from edgeexport.runtimes import native
from edgeexport.runtimes.litert import LiteRtSession
from edgeexport.validate.bundle import load_parity_tensors, read_manifest
from edgeexport.zoo import EXAMPLES

SHAPES = dict(EXAMPLES.values())  # zoo factory -> --input-shape values


def convert(model: str, out: Path) -> Path:
    cmd = [sys.executable, "-m", "edgeexport.cli", "convert", f"edgeexport.zoo:{model}",
           "--target", "rpi", "-o", str(out)]
    for s in SHAPES[model]:
        cmd += ["--input-shape", s]
    env = {**os.environ, "EDGEEXPORT_NO_QEMU": "1"}  # latency here is x86 only
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return out


def python_round(session: LiteRtSession, feeds: dict, runs: int) -> list[float]:
    from edgeexport.bundle import time_runs

    return time_runs(session, feeds, runs)


def native_round(exe: Path, bundle: Path, runs: int, threads: int) -> dict:
    proc = subprocess.run([str(exe), str(bundle), "--json", "--bench", str(runs), "--threads",
                           str(threads)], capture_output=True, text=True)
    doc = json.loads(proc.stdout)
    if "bench" not in doc:
        sys.exit(f"bench_native: the runner did not run: {doc['parity'][0]['reason']}")
    return doc["bench"]


def pct(v: list[float], q: float) -> float:
    v = sorted(v)
    pos = q / 100 * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet_small,bert_tiny,mobilenet_v2_pretrained")
    ap.add_argument("--threads", type=int, default=1, help="XNNPACK threads on both sides")
    ap.add_argument("--runs", type=int, default=200, help="timed runs per round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    try:
        exe = native.ensure("host")
    except native.NativeUnavailable as exc:
        sys.exit(f"bench_native: {exc}")
    print(f"threads={args.threads}, {args.rounds} alternating rounds x {args.runs} runs; "
          "median of the round medians (ms)")
    head = (f"{'model':<26}{'py median':>10}{'py p10':>8}{'py p90':>8}{'nat median':>11}"
            f"{'nat p10':>8}{'nat p90':>8}{'nat first':>10}{'native/py':>10}")
    print(head)
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            bundle = convert(model, Path(tmp) / model)
            manifest = read_manifest(bundle)
            feeds = load_parity_tensors(bundle, manifest)[0][0]
            session = LiteRtSession(bundle / manifest["artifact"], args.threads)
            py, nat = [], []
            for _ in range(args.rounds):
                py.append(python_round(session, feeds, args.runs))
                nat.append(native_round(exe, bundle, args.runs, args.threads))
            py_med = statistics.median(statistics.median(r) for r in py)
            py_p10 = statistics.median(pct(r, 10) for r in py)
            py_p90 = statistics.median(pct(r, 90) for r in py)
            n_med = statistics.median(b["median_ms"] for b in nat)
            n_p10 = statistics.median(b["p10_ms"] for b in nat)
            n_p90 = statistics.median(b["p90_ms"] for b in nat)
            first = statistics.median(b["first_ms"] for b in nat)
            print(f"{model:<26}{py_med:>10.3f}{py_p10:>8.3f}{py_p90:>8.3f}{n_med:>11.3f}"
                  f"{n_p10:>8.3f}{n_p90:>8.3f}{first:>10.3f}{n_med / py_med:>9.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
