"""`convert --target all` (one export/optimize/quantize, every target emitted from the same IR)
vs one `convert` per target, on pretrained MobileNetV2 int8 calibrated on photo crops.

Run: .venv/bin/python benchmarks/bench_target_all.py [--samples 32] [--targets onnx,nnapi,...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODEL = ["edgeexport.zoo:mobilenet_v2_pretrained", "--input-shape", "1,3,224,224"]
DEFAULT_TARGETS = "onnx,nnapi,rpi,coreml,metal,vulkan"


def convert(target: str, out: Path, calib: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the convert process): CPU time is what a busy machine
    does not inflate."""
    cmd = [sys.executable, "-m", "edgeexport.cli", "convert", *MODEL, "--target", target,
           "--quantize", "int8", "--calibration-data", str(calib), "-o", str(out), "--json"]
    start, cpu0 = time.perf_counter(), _children_cpu()
    r = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu0
    if r.returncode not in (0, 3):  # 3: converted, parity verdict not "passed" (still timed)
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    verdicts = json.loads(r.stdout)["result"]  # the --json document (README "JSON output")
    verdicts = verdicts if isinstance(verdicts, list) else [verdicts]
    print(f"  {target}: " + ", ".join(f"{d['target']} {d['verdict']}" for d in verdicts),
          file=sys.stderr)
    return seconds, cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=32, help="calibration crops")
    ap.add_argument("--targets", default=DEFAULT_TARGETS,
                    help="targets of the separate converts (all of them for --target all)")
    args = ap.parse_args()
    from edgeexport import profile
    from edgeexport.zoo.photos import calibration_crops

    targets = args.targets.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        calib = Path(tmp) / "calib.npy"
        np.save(calib, calibration_crops(args.samples).astype(np.float32))
        separate = {t: convert(t, Path(tmp) / f"sep-{t}", calib) for t in targets}
        if sorted(targets) != sorted(profile.TARGET_MODULES):
            print(f"note: --target all converts {', '.join(profile.TARGET_MODULES)}")
        together = convert("all", Path(tmp) / "all", calib)
        shared = json.loads((Path(tmp) / "all" / "report.json").read_text())["shared"]
    wall, cpu = sum(s[0] for s in separate.values()), sum(s[1] for s in separate.values())
    print(f"MobileNetV2 int8, {args.samples} calibration crops{'':8}wall s    CPU s")
    for t, (w, c) in separate.items():
        print(f"  convert --target {t:<8}{'':20}{w:7.1f}  {c:7.1f}")
    print(f"  {len(targets)} separate converts{'':22}{wall:7.1f}  {cpu:7.1f}")
    print(f"  convert --target all{'':25}{together[0]:7.1f}  {together[1]:7.1f}   "
          f"({wall / together[0]:.2f}x faster wall, {cpu / together[1]:.2f}x less CPU)")
    print(f"  --target all quantized (calibrated) {shared['quantize_runs']} time(s)"
          "; shared: " + ", ".join(f"{k} {v:.1f} s" for k, v in shared["timings_s"].items()))


if __name__ == "__main__":
    main()
