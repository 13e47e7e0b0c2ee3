"""Op coverage sweep: PyTorch's OpInfo samples (core ATen ops, float32) exported, optionally
emitted for a target, executed on the real runtime and compared with PyTorch eager.

Used by benchmarks/opinfo_sweep.py (prints per-family tables) and by slow tests (floors).
"""

from __future__ import annotations

import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np


@dataclass
class CaseResult:
    op: str
    family: str
    sample: int
    status: str  # passed | mismatch | export-failed | not-delegated | emit-failed | run-failed
    detail: str = ""
    #: how the exporter lowered it: "direct" or "torch.onnx (why)" ("" when export failed)
    lowering: str = ""


#: ops whose outputs are uninitialised memory: nothing to compare with (eager can even give the
#: same finite garbage twice, which passes the "ran twice, same result" check)
UNINITIALISED = frozenset({"empty", "empty_like", "empty_strided", "empty_permuted", "new_empty",
                           "new_empty_strided"})


def core_float32_opinfos() -> list[Any]:
    """OpInfos whose ATen op is in the core ATen opset and that have float32 CPU samples;
    random ops and ops returning uninitialised memory are left out (no reference to compare)."""
    import torch
    from torch.testing._internal.common_methods_invocations import op_db

    chosen = []
    for info in op_db:
        if torch.float32 not in info.supported_dtypes("cpu"):
            continue
        name = (info.aten_name or info.name).split(".")[-1]
        if name in UNINITIALISED:
            continue
        packet = getattr(torch.ops.aten, name, None)
        overload = getattr(packet, "default", None) if packet is not None else None
        if overload is None or torch.Tag.core not in overload.tags:
            continue
        if torch.Tag.nondeterministic_seeded in overload.tags:
            continue  # random ops (randn): PyTorch's draw is not a reference for the device's
        chosen.append(info)
    return chosen


def family(info: Any) -> str:
    kind = type(info).__name__
    if kind == "UnaryUfuncInfo":
        return "unary"
    if kind == "BinaryUfuncInfo":
        return "binary"
    if kind == "ReductionOpInfo":
        return "reduction"
    name = info.name
    if name.startswith("nn.functional."):
        return "nn.functional"
    if name.startswith("linalg.") or name in ("mm", "bmm", "matmul", "addmm", "baddbmm"):
        return "linalg"
    return "tensor"


class _OpModule:
    """Builds an nn.Module calling one OpInfo sample with its non-tensor arguments baked in."""

    @staticmethod
    def build(info: Any, sample: Any) -> tuple[Any, tuple] | None:
        import torch

        flat = [sample.input, *sample.args]
        tensors: list[torch.Tensor] = []
        template: list[Any] = []
        for a in flat:
            if isinstance(a, torch.Tensor):
                if (a.dtype != torch.float32 or a.layout != torch.strided or a.numel() == 0
                        or a.dim() == 0 and not tensors):
                    return None  # dense float32 only (sparse.mm's CSR samples are not)
                template.append(("t", len(tensors)))
                tensors.append(a.detach().clone())
            elif isinstance(a, (list, tuple)) and any(isinstance(x, torch.Tensor) for x in a):
                return None  # tensor lists (cat, stack): left to the model tests
            else:
                template.append(("c", a))
        kwargs = dict(sample.kwargs)
        if any(isinstance(v, torch.Tensor) for v in kwargs.values()):
            return None
        op = info.op

        class OpModule(torch.nn.Module):
            def forward(self, *xs: torch.Tensor) -> Any:
                args = [xs[v] if k == "t" else v for k, v in template]
                return op(*args, **kwargs)

        return OpModule().eval(), tuple(tensors)


def _qualifies(outputs: Any) -> bool:
    import torch

    outs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    return all(isinstance(o, torch.Tensor) and o.numel() > 0 and o.dtype in (
        torch.float32, torch.int64, torch.bool, torch.int32) and bool(torch.isfinite(
            o.float()).all()) for o in outs)


def _same(a: Any, b: Any) -> bool:
    import torch

    a = a if isinstance(a, (tuple, list)) else (a,)
    b = b if isinstance(b, (tuple, list)) else (b,)
    return all(torch.equal(x, y) for x, y in zip(a, b))


def sweep(target: str | None = None, *, samples_per_op: int = 2, ops: Iterable[str] | None = None,
          progress: bool = False, seed: int = 0) -> list[CaseResult]:
    """Run the sweep. target None: the exporter + reference runtime + onnxruntime.

    OpInfo draws its samples from torch's global generator: the sweep seeds its own fork of it, so
    a run gives the same cases whatever ran before it in the process (and leaves the caller's
    generator as it was)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _sweep(target, samples_per_op, ops, progress)


def _sweep(target: str | None, samples_per_op: int, ops: Iterable[str] | None,
           progress: bool) -> list[CaseResult]:
    import torch

    from edgeexport import delegates, passes, runtimes
    from edgeexport.errors import EdgeExportError
    from edgeexport.exporter import export
    from edgeexport.exporter.capture import quiet_torch
    from edgeexport.metrics import TOLERANCES, error_stats

    tolerance = TOLERANCES["fp32"]
    tgt = delegates.load_target(target) if target else None
    wanted = set(ops) if ops else None
    results: list[CaseResult] = []
    for info in core_float32_opinfos():
        if wanted and info.name not in wanted:
            continue
        fam, used = family(info), 0
        try:
            sample_iter = list(info.sample_inputs("cpu", torch.float32))
        except Exception:
            continue
        for index, sample in enumerate(sample_iter):
            if used >= samples_per_op:
                break
            built = _OpModule.build(info, sample)
            if built is None:
                continue
            module, tensors = built
            try:
                with torch.no_grad(), quiet_torch():
                    eager_out = module(*tensors)
                    again = module(*tensors)
            except Exception:
                continue
            if not _qualifies(eager_out) or not _same(eager_out, again):
                continue  # empty/random outputs have nothing to compare with
            used += 1
            results.append(_one_case(info.name, fam, index, module, tensors, tgt, tolerance,
                                     export, passes, runtimes, error_stats, EdgeExportError))
            if progress:
                r = results[-1]
                print(f"  {r.op:<40} {r.status:<14} {r.detail[:80]}", flush=True)
    return results


def _one_case(name, fam, index, module, tensors, tgt, tolerance, export, passes, runtimes,
              error_stats, EdgeExportError) -> CaseResult:
    lowering = ""

    def case(status: str, detail: str = "") -> CaseResult:
        return CaseResult(name, fam, index, status, detail, lowering)

    try:
        result = export(module, example_inputs=tensors)
        lowering = result.model.metadata_props.get("edgeexport.lowering", "")
        passes.optimize(result.model)
        names = [v.name for v in result.model.graph.outputs]
        expected = dict(zip(names, result.expected))  # PyTorch on the inputs the graph takes
    except EdgeExportError as exc:
        return case("export-failed", str(exc))
    except Exception as exc:
        return case("export-failed", f"{type(exc).__name__}: {exc}")
    feeds = {s.name: a for s, a in zip(result.inputs, result.sample)}
    if tgt is None:
        from edgeexport.runtimes import reference

        from edgeexport import ir as eir

        try:
            got = reference.run(result.model, feeds)
        except Exception as exc:
            return case("run-failed", f"reference: {exc}")
        verdict = _compare(case, expected, got, tolerance, error_stats, "reference")
        if verdict.status != "passed":
            return verdict
        import onnxruntime as ort

        try:
            sess = ort.InferenceSession(eir.to_bytes(result.model),
                                        providers=["CPUExecutionProvider"])
            got = dict(zip(names, sess.run(names, feeds)))
        except Exception as exc:
            return case("run-failed", f"onnxruntime: {str(exc)[:200]}")
        return _compare(case, expected, got, tolerance, error_stats, "onnxruntime")
    cov = tgt.coverage(result.model, None)
    if cov.fallback:
        fb = cov.fallback[0]
        return case("not-delegated", f"{fb.op}: {fb.reason}")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            artifact = tgt.emit(result.model, Path(tmp), None)
        except Exception as exc:
            return case("emit-failed", f"{type(exc).__name__}: {exc}")
        rt = runtimes.get(tgt.runtimes[0])
        try:
            got = rt.load(artifact.path).run(feeds)
        except Exception as exc:
            return case("run-failed", f"{rt.name}: {exc}")
    return _compare(case, expected, got, tolerance, error_stats, tgt.runtimes[0])


def _compare(case, expected: dict, got: dict, tolerance, error_stats,
             runtime: str) -> CaseResult:
    for name, want in expected.items():
        if name not in got:
            return case("run-failed", f"output {name} missing")
        if np.asarray(want).dtype.kind in "biu":
            if not np.array_equal(np.asarray(want), np.asarray(got[name]).reshape(want.shape)):
                return case("mismatch", f"{runtime}: {name}: integer outputs differ")
            continue
        if np.shape(want) != np.shape(got[name]):
            return case("mismatch", f"{runtime}: {name}: shape {np.shape(got[name])}, "
                                    f"PyTorch gives {np.shape(want)}")
        v = tolerance.violations(error_stats(want, got[name]))
        if v:
            return case("mismatch", f"{runtime}: {name}: {'; '.join(v)}")
    return case("passed")


def summarize(results: list[CaseResult]) -> tuple[str, float]:
    """A per-family table and the overall pass fraction."""
    by_family: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        by_family[r.family][r.status] += 1
    statuses = ["passed", "mismatch", "export-failed", "not-delegated", "emit-failed",
                "run-failed"]
    lines = [f"{'family':<15}{'cases':>6}" + "".join(f"{s:>15}" for s in statuses) + f"{'pass %':>9}"]
    total = Counter()
    for fam in sorted(by_family):
        c = by_family[fam]
        n = sum(c.values())
        total.update(c)
        lines.append(f"{fam:<15}{n:>6}" + "".join(f"{c[s]:>15}" for s in statuses)
                     + f"{100 * c['passed'] / n:>8.1f}%")
    n = sum(total.values()) or 1
    lines.append(f"{'all':<15}{n:>6}" + "".join(f"{total[s]:>15}" for s in statuses)
                 + f"{100 * total['passed'] / n:>8.1f}%")
    return "\n".join(lines), total["passed"] / n


__all__ = ["CaseResult", "core_float32_opinfos", "family", "summarize", "sweep"]
