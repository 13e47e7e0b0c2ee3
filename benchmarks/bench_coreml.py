"""Conversion time to a CoreML ML Program: edgeexport beside coremltools.convert, both starting
from the same ExportedProgram of the same model, in one run.

    .venv/bin/python benchmarks/bench_coreml.py [--model mobilenet_v2_pretrained] [--runs 3]

Both sides take the ExportedProgram that coremltools documents as its input (torch.export, then
run_decompositions({})) and end with the .mlpackage saved on disk: coremltools.convert + save
beside edgeexport's direct lowering + passes + emit. A second table times the end to end from
the nn.Module (capture included) and the emitter alone (IR -> .mlpackage).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

logging.getLogger("coremltools").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")

SHAPES = {"mobilenet_v2_pretrained": "1,3,224,224", "resnet18": "1,3,224,224",
          "resnet_small": "1,3,64,64", "mobilevit_xxs_like": "1,3,64,64", "vit_tiny": "1,3,32,32"}


def _median(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up: imports, op registries, caches
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2_pretrained", choices=sorted(SHAPES))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import contextlib
    import io

    import coremltools as ct
    import torch

    from edgeexport import passes, zoo
    from edgeexport.delegates.coreml import TARGET
    from edgeexport.exporter import parse_input_spec
    from edgeexport.exporter.aten import lower_program
    from edgeexport.pipeline import ConvertOptions, Timer, export_and_optimize
    from edgeexport.target_options import CoremlOptions

    shape = tuple(int(d) for d in SHAPES[args.model].split(","))
    module = getattr(zoo, args.model)().eval()
    example = (torch.randn(*shape),)
    t = time.perf_counter()
    ep = torch.export.export(module, example).run_decompositions({})
    t_torch_export = time.perf_counter() - t
    opts = ConvertOptions(target="coreml", input_specs=[parse_input_spec(SHAPES[args.model])])
    t = time.perf_counter()
    result, _ = export_and_optimize(f"edgeexport.zoo:{args.model}", opts, Timer())
    t_ir = time.perf_counter() - t
    tmp = Path(tempfile.mkdtemp(prefix="bench-coreml-"))
    rows = []
    try:
        for precision in ("fp16", "fp32"):
            ct_prec = ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32
            ours, theirs = tmp / f"ours-{precision}", tmp / f"ct-{precision}.mlpackage"
            ours.mkdir()

            def run_ct() -> None:
                shutil.rmtree(theirs, ignore_errors=True)
                with contextlib.redirect_stderr(io.StringIO()):  # its progress bars
                    model = ct.convert(ep, convert_to="mlprogram",
                                       minimum_deployment_target=ct.target.iOS16,
                                       compute_precision=ct_prec, skip_model_load=True)
                model.save(os.fspath(theirs))

            def run_ours() -> None:  # from the same ExportedProgram
                model = lower_program(ep, ["x"], ["output"])
                passes.optimize(model)
                TARGET.emit(model, ours, CoremlOptions(precision=precision))

            def emit_only() -> None:
                TARGET.emit(result.model, ours, CoremlOptions(precision=precision))

            t_ct = _median(run_ct, args.runs)
            t_ours = _median(run_ours, args.runs)
            t_emit = _median(emit_only, args.runs)
            rows.append((precision, t_ct, t_ours, t_emit, _size(theirs),
                         _size(ours / "model.mlpackage")))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"model {args.model} {shape}, median of {args.runs} runs after a warm-up, "
          f"coremltools {ct.__version__}, torch {torch.__version__}")
    print(f"capture (not in the first table): torch.export + run_decompositions "
          f"{t_torch_export:.2f} s; edgeexport export+passes from the nn.Module {t_ir:.2f} s")
    print()
    header = (f"{'precision':<10}{'coremltools.convert(EP)':>26}{'edgeexport(EP)':>18}"
              f"{'ratio':>8}{'ct size':>12}{'ours size':>12}")
    print(header)
    print("-" * len(header))
    for precision, t_ct, t_ours, _, s_ct, s_ours in rows:
        print(f"{precision:<10}{t_ct:>24.3f} s{t_ours:>16.3f} s{t_ours / t_ct:>8.2f}"
              f"{s_ct:>12,}{s_ours:>12,}")
    print()
    print("end to end from the nn.Module, and the emitter alone:")
    for precision, t_ct, _, t_emit, _, _ in rows:
        print(f"  {precision}: coremltools {t_torch_export + t_ct:.2f} s, "
              f"edgeexport {t_ir + t_emit:.2f} s; emit(IR) alone {t_emit:.3f} s "
              f"({t_emit / t_ct:.2f}x coremltools.convert)")


if __name__ == "__main__":
    main()
