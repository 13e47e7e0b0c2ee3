"""OpInfo sweep: for the core ATen ops of PyTorch's op_db with float32 samples, the fraction that
export, convert to .tflite and match PyTorch on LiteRT (fp32 tolerance), printed per op family.

    .venv/bin/python benchmarks/opinfo_tflite.py [--limit N] [--ops add,mul] [--json out.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path


def core_opinfos(names: set[str] | None) -> list:
    import torch
    from torch.testing._internal.common_methods_invocations import op_db

    out, seen = [], set()
    for op in op_db:
        if names and op.name not in names:
            continue
        if (op.name, op.variant_test_name) in seen or not op.supports_dtype(torch.float32, "cpu"):
            continue
        aten = getattr(torch.ops.aten, op.aten_name or op.name.split(".")[-1], None)
        overload = getattr(aten, "default", None) if aten is not None else None
        if overload is None or torch.Tag.core not in overload.tags:
            continue
        seen.add((op.name, op.variant_test_name))
        out.append(op)
    return out


class _Call:
    """nn.Module calling the op with the sample's tensors as inputs, the rest as constants."""

    @staticmethod
    def build(op, sample):
        import torch

        flat = [sample.input, *sample.args]
        tensors = [a for a in flat if isinstance(a, torch.Tensor)]
        if not tensors or any(t.dtype != torch.float32 for t in tensors):
            return None, None
        kinds = [isinstance(a, torch.Tensor) for a in flat]
        kwargs = sample.kwargs

        class M(torch.nn.Module):
            def forward(self, *xs):
                it = iter(xs)
                args = [next(it) if k else a for k, a in zip(kinds, flat)]
                out = op.op(*args, **kwargs)
                return out[0] if isinstance(out, (tuple, list)) else out

        return M().eval(), tuple(t.detach().clone() for t in tensors)


def family_of(model) -> str:
    from edgeexport import profile

    fams = collections.Counter(profile.EDGE_PROFILE[n.op_type].family for n in model.graph
                               if n.op_type in profile.EDGE_PROFILE)
    for fam in ("conv", "linear", "pool", "norm", "resize", "reduce", "activation", "logic",
                "elementwise", "shape"):
        if fams.get(fam):
            return fam
    return "misc"


def check(op, tmp: Path) -> tuple[str, str, str]:
    """(family, 'passed' | stage, detail)."""
    import torch

    from edgeexport import passes
    from edgeexport.delegates.tflite import emit_model
    from edgeexport.exporter import export
    from edgeexport.runtimes.litert import LiteRtSession
    from edgeexport.validate import error_stats

    samples = list(op.sample_inputs("cpu", torch.float32))
    module = args = None
    for s in samples:
        module, args = _Call.build(op, s)
        if module is not None:
            break
    if module is None:
        return "n/a", "skip", "no all-float32 sample"
    with torch.no_grad():
        want = module(*args)
    if not isinstance(want, torch.Tensor) or want.numel() == 0:
        return "n/a", "skip", "no tensor output"
    try:
        result = export(module, example_inputs=args)
        passes.optimize(result.model)
    except Exception as exc:  # the exporter's limits are reported, not hidden
        return "n/a", "export", str(exc).splitlines()[0][:120]
    fam = family_of(result.model)
    try:
        data = emit_model(result.model).data
    except Exception as exc:
        return fam, "emit", str(exc).splitlines()[0][:120]
    path = tmp / f"{op.name}.tflite"
    path.write_bytes(data)
    try:
        feeds = {s.name: a for s, a in zip(result.inputs, result.sample)}
        got = LiteRtSession(path).run(feeds)
    except Exception as exc:
        return fam, "litert", str(exc).splitlines()[0][:120]
    out = result.model.graph.outputs[0].name
    stats = error_stats(result.expected[0], got[out])
    if stats.max_rel_err <= 1e-4 or stats.max_abs_err <= 1e-5:
        return fam, "passed", ""
    return fam, "parity", f"max_rel_err {stats.max_rel_err:.2e}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--ops", default="")
    ap.add_argument("--json", help="write the per-op results here")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    import logging

    logging.disable(logging.WARNING)
    ops = core_opinfos(set(a.ops.split(",")) if a.ops else None)
    if a.limit:
        ops = ops[:a.limit]
    tmp = Path(tempfile.mkdtemp(prefix="opinfo-tflite-"))
    results = []
    start = time.perf_counter()
    for op in ops:
        name = op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")
        fam, stage, detail = check(op, tmp)
        results.append({"op": name, "family": fam, "result": stage, "detail": detail})
        if a.verbose:
            print(f"{name:<32} {fam:<12} {stage:<8} {detail}", file=sys.stderr)
    counted = [r for r in results if r["result"] != "skip"]
    by_fam: dict[str, list] = collections.defaultdict(list)
    for r in counted:
        by_fam[r["family"]].append(r)
    print(f"OpInfo sweep: {len(ops)} core ATen ops with float32 samples, {len(counted)} with an "
          f"all-float32 sample ({time.perf_counter() - start:.0f}s)")
    print(f"{'family':<12} {'passed':>7} {'total':>6} {'fraction':>9}   failures (stage)")
    for fam in sorted(by_fam):
        rs = by_fam[fam]
        ok = sum(r["result"] == "passed" for r in rs)
        fails = ", ".join(f"{r['op']} ({r['result']})" for r in rs if r["result"] != "passed")
        print(f"{fam:<12} {ok:>7} {len(rs):>6} {ok / len(rs):>9.0%}   {fails[:150]}")
    ok = sum(r["result"] == "passed" for r in counted)
    emitted = [r for r in counted if r["result"] != "export"]
    ok_e = sum(r["result"] == "passed" for r in emitted)
    print(f"{'all':<12} {ok:>7} {len(counted):>6} {ok / max(len(counted), 1):>9.0%}")
    print(f"of the ops the exporter captured: {ok_e}/{len(emitted)} "
          f"({ok_e / max(len(emitted), 1):.0%}) convert to .tflite with parity")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
