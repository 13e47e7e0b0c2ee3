"""`convert --target all` (one export/optimize/quantize, every target emitted from the same IR)
vs one `convert` per target, on pretrained MobileNetV2 int8 calibrated on photo crops.

Run: .venv/bin/python benchmarks/bench_target_all.py [--samples 32] [--targets onnx,nnapi,...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODEL = ["edgeexport.zoo:mobilenet_v2_pretrained", "--input-shape", "1,3,224,224"]
DEFAULT_TARGETS = "onnx,nnapi,rpi,coreml,metal,vulkan"


def convert(target: str, out: Path, calib: Path) -> float:
    cmd = [sys.executable, "-m", "edgeexport.cli", "convert", *MODEL, "--target", target,
           "--quantize", "int8", "--calibration-data", str(calib), "-o", str(out), "--json"]
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
    seconds = time.perf_counter() - start
    if r.returncode not in (0, 3):  # 3: converted, parity verdict not "passed" (still timed)
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return seconds


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
    total = sum(separate.values())
    print(f"MobileNetV2 int8, {args.samples} calibration crops")
    for t, s in separate.items():
        print(f"  convert --target {t:<8} {s:7.1f} s")
    print(f"  {len(targets)} separate converts   {total:7.1f} s")
    print(f"  convert --target all      {together:7.1f} s  ({total / together:.2f}x faster)")


if __name__ == "__main__":
    main()
