"""report.html: the report.json of a bundle as one self-contained page for people (no scripts, no
network): the verdict and every warning first, then per-layer errors, the partition and details.
"""

from __future__ import annotations

import html
import json
from typing import Any

from edgeexport.validate import findings
from edgeexport.validate.layers import worst
from edgeexport.validate.report_svg import layer_label, partition_strip, sqnr_plot

#: rows of the worst-layers table per runtime
WORST_LAYERS = 10

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1040px;color:#222;
padding:0 1em}h1{font-size:1.45em;margin-bottom:.2em}
h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
.pass{color:#075e00;font-weight:600}.fail{color:#b00020;font-weight:600}.skip{color:#777}
code{background:#f4f4f4;padding:0 3px}.sub{color:#555;margin-top:0}
.verdict{padding:.7em 1em;border-radius:6px;font-size:1.15em;font-weight:600;margin:.8em 0 .4em}
.v-pass{background:#e7f5e4;border:1px solid #7cb36f;color:#1b5e20}
.warn{color:#8a4b00;font-weight:600}
.v-warn{background:#fff5e0;border:1px solid #e0a030;color:#7a4b00}
.v-fail{background:#fdeaea;border:1px solid #d26060;color:#8e0000}
ul.findings{list-style:none;padding:0;margin:.3em 0}
ul.findings li{margin:.25em 0;padding:.3em .6em;border-left:4px solid #bbb;background:#fafafa}
li.error{border-color:#c62828!important}li.warning{border-color:#ef8f00!important}
li.note{border-color:#90a4ae!important}.lvl{font-weight:600;text-transform:uppercase;font-size:.8em;
margin-right:.5em}.topic{color:#555;margin-right:.4em}
svg text{font:11px system-ui,sans-serif}svg text.axis{font-size:12px}tr.bad td{background:#fdeaea}
details pre{max-height:30em;overflow:auto;background:#f8f8f8;padding:.5em}
"""


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    return html.escape(str(v))


def _table(rows: list[dict[str, Any]], cols: list[str], raw: tuple[str, ...] = (),
           row_class: Any = None) -> str:
    """A table of `cols`; the cells of `raw` columns are our own markup, the rest are escaped."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        f"<tr{row_class(r) if row_class else ''}>"
        + "".join(f"<td>{r.get(c, '') if c in raw else _fmt(r.get(c))}</td>" for c in cols)
        + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _verdict(report: dict[str, Any], found: list[dict[str, str]]) -> str:
    executed = [p for p in report.get("parity", []) if p.get("executed")]
    names = ", ".join(p["runtime"] for p in executed) or "no runtime"
    warns = sum(f["level"] == "warning" for f in found)
    if report.get("verdict") == "unverified":
        cls, text = "v-warn", f"Parity UNVERIFIED: {report.get('verdict_reason')}"
    elif not report.get("passed"):
        cls, text = "v-fail", f"Parity FAILED ({names})"
    elif warns:
        cls, text = "v-warn", (f"Parity passed on {names} — read the {warns} warning"
                               f"{'s' if warns > 1 else ''} below")
    else:
        cls, text = "v-pass", f"Parity passed on {names}"
    items = "".join(f'<li class="{f["level"]}"><span class=lvl>{f["level"]}</span>'
                    f'<span class=topic>{html.escape(f["topic"])}</span>'
                    f'{html.escape(f["text"])}</li>' for f in found)
    return (f'<div class="verdict {cls}">{html.escape(text)}</div>'
            + (f'<ul class="findings">{items}</ul>' if items else ""))


def _parity(report: dict[str, Any]) -> str:
    rows = []
    for p in report.get("parity", []):
        status = ("<span class=skip>not executed</span>" if not p["executed"] else
                  "<span class=pass>passed</span>" if p["passed"] else
                  "<span class=warn>UNVERIFIED</span>" if p.get("verdict") == "unverified" else
                  "<span class=fail>FAILED</span>")
        rows.append({**p, "status": status})
    return _table(rows, ["runtime", "status", "device", "max_abs_err", "max_rel_err", "cosine",
                         "sqnr_db", "top1_agreement", "latency_ms", "reason"], raw=("status",))


def _per_layer(report: dict[str, Any]) -> str:
    pl = report.get("per_layer")
    if not pl:
        return "<p>This bundle was made before per-layer data went into report.json: run " \
               "<code>edgeexport validate BUNDLE --per-layer</code>.</p>"
    if not pl.get("computed"):
        return f"<p>Not computed during convert: {html.escape(str(pl.get('reason')))}.</p>"
    runs = pl.get("runtimes") or {}
    skipped = "".join(f"<li>{html.escape(k)}: {html.escape(str(v))}</li>"
                      for k, v in (pl.get("not_compared") or {}).items())
    parts = [f"<p>Every intermediate tensor each runtime exposes, compared with the reference "
             f"runtime (numpy, on <code>ir.onnx</code>) on parity sample {pl.get('sample', 0)}: "
             "SQNR per layer in graph order (higher is closer; identical tensors sit on top). "
             "Red points are over the artifact's tolerance.</p>",
             sqnr_plot(runs, pl.get("tolerance") or {})]
    if skipped:
        parts.append(f"<p>Not compared:</p><ul>{skipped}</ul>")
    for name, r in runs.items():
        rows = [{**row, "layer": layer_label(row)} for row in worst(r["layers"], WORST_LAYERS)]
        bad = r.get("first_over_tolerance")
        first = (f"first over tolerance: <b>{html.escape(layer_label(bad))}</b> "
                 f"({html.escape(bad['op'])})" if bad else "no layer over tolerance")
        parts.append(f"<h3>{html.escape(name)}: {len(r['layers'])} tensors; {first}</h3>"
                     f"<p class=sub>The {len(rows)} furthest from the reference:</p>"
                     + _table(rows, ["node", "module", "op", "max_abs_err", "max_rel_err",
                                     "sqnr_db", "cosine"],
                              row_class=lambda x: ' class="bad"' if x.get("over_tolerance")
                              else ""))
    return "".join(parts)


def _coverage(report: dict[str, Any]) -> str:
    cov = report.get("coverage", {})
    cells = report.get("nodes") or []
    modules = {c["node"]: c.get("module") for c in cells}
    fallback = [{**f, "module": modules.get(f["node"])} for f in cov.get("fallback", [])]
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in cov.get("notes", []))
    strip = partition_strip(cells)
    return (f"<p>{_fmt(cov.get('delegated_ops'))} of {_fmt(cov.get('total_ops'))} target ops run "
            f"on the target in <b>{_fmt(cov.get('partitions'))} partition(s)</b>.</p>"
            + (f"<p class=sub>One cell per IR node ({len(cells)}); a node is orange when any of "
               "the target ops it became falls back.</p>" + strip if strip else "")
            + (f"<ul>{notes}</ul>" if notes else "")
            + (_table(fallback, ["node", "module", "op", "reason"]) if fallback
               else "<p>Every node is taken by the target.</p>"))


def _graph(report: dict[str, Any]) -> str:
    art = str(report.get("artifact", ""))
    ir_file = art if art.endswith(".onnx") else "ir.onnx"  # an .onnx artifact is the IR
    return (f"<p>The graph is <code>{html.escape(str(ir_file))}</code> beside this page; node "
            "names here are its node names. Open it offline with Netron "
            f"(<code>pip install netron; netron {html.escape(str(ir_file))}</code>) or Google's "
            "Model Explorer (<code>pip install ai-edge-model-explorer; model-explorer "
            f"{html.escape(str(ir_file))}</code>); both show each node's <code>namespace</code> "
            "(the PyTorch module path).</p>")


def _quantization(q: dict[str, Any], modules: dict[str, Any]) -> str:
    if not q.get("scheme"):
        return "<p>None: the artifact computes in float.</p>"
    cal = q.get("calibration") or {}
    facts = [f"scheme <b>{html.escape(str(q['scheme']))}</b>"]
    if cal:
        facts.append(f"calibration {_fmt(cal.get('source'))} ({_fmt(cal.get('samples'))} samples, "
                     f"{_fmt(cal.get('method'))})")
    if q.get("vs_float"):
        facts.append("against float: " + ", ".join(f"{k} {_fmt(v)}"
                                                    for k, v in q["vs_float"].items()))
    rows = sorted(({**r, "module": modules.get(r.get("node"))} for r in q.get("per_layer", [])
                   if isinstance(r.get("sqnr_db"), (int, float))),
                  key=lambda r: r["sqnr_db"])[:WORST_LAYERS]
    return ("<p>" + "; ".join(facts) + ".</p>"
            + (f"<p class=sub>The {len(rows)} quantized layers with the lowest SQNR against "
               "float:</p>" + _table(rows, ["node", "module", "op", "output", "sqnr_db", "scale"])
               if rows else ""))


def render(report: dict[str, Any]) -> str:
    found = findings.collect(report)
    title = f"edgeexport report: {report.get('target')} — {report.get('artifact')}"
    timings = _table([{"stage": k, "seconds": v} for k, v in report.get("timings_s", {}).items()],
                     ["stage", "seconds"])
    q = report.get("quantization")
    q = q if isinstance(q, dict) else {"scheme": q}
    modules = {c["node"]: c.get("module") for c in report.get("nodes") or []}
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class=sub>Artifact <code>{html.escape(str(report.get('artifact')))}</code>,
{_fmt(report.get('artifact_bytes'))} bytes;
expected outputs from {_fmt(report.get('expected_from'))};
inputs: {_fmt(report.get('parity_inputs'))}.</p>
{_verdict(report, found)}
<h2>Parity per runtime</h2>{_parity(report)}
<h2>Per-layer error</h2>{_per_layer(report)}
<h2>Coverage and partitions</h2>{_coverage(report)}
<h2>The graph</h2>{_graph(report)}
<h2>Quantization</h2>{_quantization(q, modules)}
<h2>Stage timings</h2>{timings}
<details><summary>Raw report.json</summary><pre>{html.escape(json.dumps(report, indent=1))}</pre>
</details>
</body></html>
"""
