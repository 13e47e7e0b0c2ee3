"""report.html: the report.json of a bundle as one self-contained page for people."""

from __future__ import annotations

import html
import json
from typing import Any

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
.pass{color:#075e00;font-weight:600}.fail{color:#b00020;font-weight:600}.skip{color:#777}
.warn{color:#8a4b00;font-weight:600}.warnings{background:#fff4e0;border:1px solid #e0a040;
padding:.4em 1em}
code{background:#f4f4f4;padding:0 3px}
"""


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    return html.escape(str(v))


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in cols) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(report: dict[str, Any]) -> str:
    parity_rows = []
    for p in report.get("parity", []):
        status = ("<span class=skip>not executed</span>" if not p["executed"] else
                  "<span class=pass>passed</span>" if p["passed"] else
                  "<span class=warn>UNVERIFIED</span>" if p.get("verdict") == "unverified" else
                  "<span class=fail>FAILED</span>")
        parity_rows.append({**p, "status": status})
    parity_html = _table(parity_rows, ["runtime", "device", "max_abs_err", "max_rel_err",
                                       "cosine", "top1_agreement", "latency_ms", "reason"])
    parity_html = parity_html.replace("&lt;span", "<span")  # status cells are our own markup
    statuses = "".join(f"<li>{html.escape(r['runtime'])}: {r['status']}</li>"
                       for r in parity_rows)
    cov = report.get("coverage", {})
    fallback = _table(cov.get("fallback", []), ["node", "op", "reason"]) if cov.get(
        "fallback") else "<p>Every node is taken by the target.</p>"
    timings = _table([{"stage": k, "seconds": v} for k, v in report.get("timings_s", {}).items()],
                     ["stage", "seconds"])
    title = f"edgeexport report: {report.get('target')} — {report.get('artifact')}"
    verdict = report.get("verdict") or ("passed" if report.get("passed") else "failed")
    overall = {"passed": "<span class=pass>parity passed</span>",
               "unverified": "<span class=warn>parity UNVERIFIED</span>"}.get(
        verdict, "<span class=fail>parity FAILED</span>")
    if report.get("verdict_reason"):
        overall += f": {html.escape(report['verdict_reason'])}"
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in report.get("warnings", []))
    warnings = f"<div class=warnings><b>Warnings</b><ul>{warnings}</ul></div>" if warnings else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Artifact <code>{html.escape(str(report.get('artifact')))}</code>,
{_fmt(report.get('artifact_bytes'))} bytes; quantization: {_fmt(report.get('quantization',
{}).get('scheme') if isinstance(report.get('quantization'), dict) else report.get('quantization'))}.
Overall: {overall}.</p>{warnings}
<h2>Parity per runtime</h2><ul>{statuses}</ul>{parity_html}
<h2>Coverage</h2><p>{_fmt(cov.get('delegated_ops'))} of {_fmt(cov.get('total_ops'))} ops
delegated in {_fmt(cov.get('partitions'))} partition(s).</p>{fallback}
<h2>Stage timings</h2>{timings}
<h2>Raw report.json</h2><pre>{html.escape(json.dumps(report, indent=1))}</pre>
</body></html>
"""
