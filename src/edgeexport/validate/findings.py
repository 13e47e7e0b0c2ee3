"""What a reader of a bundle must see before any table: every warning and caveat in report.json
(quantization, coverage, runtimes not run, emulation, per-layer), gathered in one list.
"""

from __future__ import annotations

from typing import Any

#: int8 outputs whose cosine to float is below this are called far from float
FAR_FROM_FLOAT_COSINE = 0.99
#: per-layer quantization SQNR (dB) below which a layer is named as a weak spot
LOW_LAYER_SQNR_DB = 15.0


def collect(report: dict[str, Any]) -> list[dict[str, str]]:
    """[{level: error|warning|note, topic, text}], the worst first."""
    found: list[dict[str, str]] = []

    def add(level: str, topic: str, text: str) -> None:
        found.append({"level": level, "topic": topic, "text": text})

    if report.get("verdict") == "unverified":
        add("error", "parity", f"UNVERIFIED: {report.get('verdict_reason')}")
    for p in report.get("parity", []):
        if p.get("verdict") == "unverified":
            continue  # said once above
        if p.get("executed") and not p.get("passed"):
            add("error", "parity", f"{p['runtime']} FAILED: {'; '.join(p.get('violations', []))}")
        elif not p.get("executed"):
            add("warning", "runtime", f"{p['runtime']} was not executed: {p.get('reason')}")
        for w in (p.get("details") or {}).get("warnings", []):  # e.g. an emulation cap
            add("warning", "runtime", w)
        if (p.get("details") or {}).get("emulated"):
            add("note", "latency", f"{p['runtime']} ran under emulation: its latency "
                f"({p.get('latency_ms')} ms) is not the device's speed")
    if not any(p.get("executed") for p in report.get("parity", [])):
        add("error", "parity", "no runtime could execute the artifact here: nothing was checked")
    _quantization(report.get("quantization") or {}, add)
    for w in (report.get("noise_floor") or {}).get("warnings", []):
        add("warning", "noise floor", w)
    for w in (report.get("fp16_range") or {}).get("warnings", []):
        add("warning", "fp16", w)
    cov = report.get("coverage") or {}
    for note in cov.get("notes", []):
        if note.startswith("WARNING"):
            add("warning", "coverage", note.removeprefix("WARNING:").strip())
    if cov.get("fallback"):
        ops = sorted({f["op"] for f in cov["fallback"]})
        add("warning", "coverage", f"{len(cov['fallback'])} of {cov.get('total_ops')} ops fall "
            f"back to the CPU ({', '.join(ops)}); see the partition strip for why")
    layers = report.get("per_layer") or {}
    for name, r in (layers.get("runtimes") or {}).items():
        bad = r.get("first_over_tolerance")
        if bad:
            add("warning", "per-layer", f"{name}: first layer over tolerance is {bad['node']} "
                f"({bad['op']}{', ' + bad['module'] if bad.get('module') else ''}), "
                f"max_rel_err {_g(bad['max_rel_err'])}")
    if layers and not layers.get("computed", True):
        add("note", "per-layer", f"per-layer comparison skipped: {layers.get('reason')}")
    lowering = report.get("lowering")
    if lowering and lowering != "direct":
        add("note", "export", f"lowered with {lowering}")
    order = {"error": 0, "warning": 1, "note": 2}
    return sorted(found, key=lambda f: order[f["level"]])


def _quantization(q: dict[str, Any], add: Any) -> None:
    for w in q.get("warnings", []):
        add("warning", "quantization", w)
    cos = (q.get("vs_float") or {}).get("cosine")
    if isinstance(cos, (int, float)) and cos < FAR_FROM_FLOAT_COSINE and not any(
            "far from float" in w for w in q.get("warnings", [])):
        add("warning", "quantization", f"the int8 model's outputs are far from float "
            f"(cosine {cos:.4f} on the calibration samples)")
    weak = [r for r in q.get("per_layer", []) if isinstance(r.get("sqnr_db"), (int, float))
            and r["sqnr_db"] < LOW_LAYER_SQNR_DB]
    if weak:
        worst = min(weak, key=lambda r: r["sqnr_db"])
        add("warning", "quantization", f"{len(weak)} quantized layer(s) below "
            f"{LOW_LAYER_SQNR_DB:g} dB SQNR against float; worst {worst['node']} "
            f"({worst['op']}) at {worst['sqnr_db']:.1f} dB")
    if q.get("layers_float"):
        add("note", "quantization", f"{len(q['layers_float'])} layer(s) kept float to meet the "
            "accuracy budget")


def _g(x: object) -> str:
    """A number to 3 digits; a report writes non-finite ones as strings ("nan", "inf")."""
    return f"{x:.3g}" if isinstance(x, (int, float)) else str(x)
