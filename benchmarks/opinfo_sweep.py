"""OpInfo sweep: core ATen ops with float32 samples, exported (and emitted for a target), run on
the real runtime and compared with PyTorch eager. Prints the pass fraction per op family.

    python benchmarks/opinfo_sweep.py                 # exporter + reference runtime
    python benchmarks/opinfo_sweep.py --target rpi    # ... emitted as .tflite, run on LiteRT
"""

from __future__ import annotations

import argparse
import time

from edgeexport.validate.opinfo import sweep, summarize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default=None, help="onnx, nnapi, rpi, coreml, metal, vulkan")
    ap.add_argument("--samples-per-op", type=int, default=2)
    ap.add_argument("--verbose", action="store_true", help="one line per case")
    ap.add_argument("--op", action="append", help="only these OpInfo names")
    ap.add_argument("--seed", type=int, default=0, help="torch seed for OpInfo's random samples")
    args = ap.parse_args()
    start = time.perf_counter()
    results = sweep(args.target, samples_per_op=args.samples_per_op, ops=args.op,
                    progress=args.verbose, seed=args.seed)
    table, fraction = summarize(results)
    print(f"OpInfo sweep, target: {args.target or 'exporter + reference runtime'}; "
          f"{len(results)} cases from {len({r.op for r in results})} ops in "
          f"{time.perf_counter() - start:.0f} s")
    print(table)
    failures = [r for r in results if r.status != "passed"]
    if failures:
        print("\nfailures:")
        for r in failures:
            print(f"  {r.op:<36} {r.status:<14} {r.detail[:110]}")
    print(f"\npass fraction: {100 * fraction:.1f}%")


if __name__ == "__main__":
    main()
