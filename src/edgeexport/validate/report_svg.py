"""The two pictures of report.html, drawn as inline SVG (no scripts, no network): per-layer SQNR
of each runtime against the reference, and the strip of nodes the target takes or leaves.
"""

from __future__ import annotations

import html
import math
from typing import Any

W, LEFT, RIGHT = 1000, 48, 12
#: one colour per runtime in the plot
COLORS = ("#1565c0", "#6a1b9a", "#00838f", "#ef6c00", "#2e7d32")
BAD = "#c62828"
DELEGATED, FALLBACK = "#43a047", "#e65100"


def _esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _num(v: Any) -> float | None:
    """A JSON number of report.json ('inf' and friends are strings there)."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return float(v) if isinstance(v, (int, float)) else None


def layer_label(row: dict[str, Any]) -> str:
    return f"{row['module']} · {row['node']}" if row.get("module") else row["node"]


def cosine_as_sqnr(min_cosine: float | None) -> float | None:
    """The SQNR a tensor needs for the cosine bound when the error is not a scaling: cosine =
    1 - noise/(2 signal) to first order, so SQNR = -10 log10(2 (1 - cosine))."""
    if min_cosine is None or min_cosine >= 1:
        return None
    return -10 * math.log10(2 * (1 - min_cosine))


def sqnr_plot(runs: dict[str, Any], tolerance: dict[str, Any]) -> str:
    """SQNR (dB) of every compared tensor, in graph order, one line per runtime; layers over
    the tolerance in red, the first one marked with a vertical line; a hover title per point."""
    h, top, bottom = 300, 16, 40
    series = {k: r["layers"] for k, r in runs.items() if r.get("layers")}
    if not series:
        return ""
    n = max(len(rows) for rows in series.values())
    finite = [v for rows in series.values() for r in rows
              if (v := _num(r.get("sqnr_db"))) is not None and math.isfinite(v)]
    tol_db = cosine_as_sqnr(tolerance.get("min_cosine"))
    y_max = max(finite + [tol_db or 0, 20.0]) * 1.08 + 6  # room on top for identical tensors
    y_min = min(finite + [0.0])

    def x(i: int) -> float:
        return LEFT + (W - LEFT - RIGHT) * (i + 0.5) / n

    def y(v: float) -> float:
        v = min(max(v, y_min), y_max)
        return top + (h - top - bottom) * (1 - (v - y_min) / (y_max - y_min))

    out = [f'<svg width="{W}" height="{h}" '
           f'viewBox="0 0 {W} {h}" role="img" aria-label="per-layer SQNR" class="plot">']
    step = 10 if y_max - y_min <= 80 else 20 if y_max - y_min <= 200 else 50
    for t in range(int(math.ceil(y_min / step)) * step, int(y_max) + 1, step):
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
                   f'stroke="#e6e6e6"/><text x="{LEFT - 6}" y="{y(t) + 4:.1f}" '
                   f'text-anchor="end" class="tick">{t}</text>')
    if tol_db is not None:
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(tol_db):.1f}" '
                   f'y2="{y(tol_db):.1f}" stroke="{BAD}" stroke-dasharray="5 4"/>'
                   f'<text x="{W - RIGHT}" y="{y(tol_db) - 4:.1f}" text-anchor="end" '
                   f'class="tick" fill="{BAD}">≈ cosine {tolerance["min_cosine"]:g}</text>')
    out.append(f'<text x="14" y="{(h - bottom) / 2:.0f}" class="axis" '
               f'transform="rotate(-90 14 {(h - bottom) / 2:.0f})" text-anchor="middle">'
               'SQNR dB</text><text x="{0}" y="{1}" class="axis" text-anchor="middle">'
               'layer (graph order) — hover a point for its module, op and errors</text>'
               .format((W + LEFT) / 2, h - 8))
    for k, (name, rows) in enumerate(series.items()):
        color = COLORS[k % len(COLORS)]
        pts = []
        for i, r in enumerate(rows):
            v = _num(r.get("sqnr_db"))
            pts.append((x(i), y(v if v is not None and math.isfinite(v) else
                                (y_max if v is None or v > 0 else y_min)), r))
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="'
                   + " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in pts) + '"/>')
        first = runs[name].get("first_over_tolerance")
        for i, (px, py, r) in enumerate(pts):
            bad = r.get("over_tolerance")
            if not bad and n > 300:
                continue  # dense graphs: the line carries it, dots only where it matters
            title = (f"{name}: #{i} {layer_label(r)} ({r['op']}) SQNR {r.get('sqnr_db')} dB, "
                     f"max_abs_err {r.get('max_abs_err')}, max_rel_err {r.get('max_rel_err')}")
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="{4 if bad else 3}" '
                       f'fill="{BAD if bad else color}"><title>{_esc(title)}</title></circle>')
        if first:
            i = next(j for j, r in enumerate(rows) if r["tensor"] == first["tensor"])
            out.append(f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{top}" y2="{h - bottom}" '
                       f'stroke="{BAD}"/><text x="{x(i) + 4:.1f}" y="{top + 12}" class="tick" '
                       f'fill="{BAD}">first over tolerance ({_esc(name)}): '
                       f'{_esc(layer_label(first))}</text>')
        out.append(f'<rect x="{LEFT + 8 + 150 * k}" y="{h - 30}" width="10" height="10" '
                   f'fill="{color}"/><text x="{LEFT + 22 + 150 * k}" y="{h - 21}" '
                   f'class="tick">{_esc(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def partition_strip(cells: list[dict[str, Any]]) -> str:
    """One cell per node, green where the target takes it and orange where it falls back (the
    hover title says why), over a row naming the top-level PyTorch module of each stretch."""
    if not cells:
        return ""
    h, band = 74, 34
    cw = (W - 2) / len(cells)
    out = [f'<svg width="{W}" height="{h}" '
           f'viewBox="0 0 {W} {h}" role="img" aria-label="partition strip" class="strip">']
    for i, c in enumerate(cells):
        color = DELEGATED if c["delegated"] else FALLBACK
        title = (f"#{i} {c['node']} ({c['op']})"
                 + (f" — {c['module']}" if c.get("module") else "")
                 + (": runs on the target" if c["delegated"] else f": FALLBACK — {c['reason']}"))
        width = max(cw - (0.6 if cw > 3 else 0), 0.5)  # a hairline gap while cells are wide
        out.append(f'<rect x="{1 + i * cw:.2f}" y="1" width="{width:.2f}" height="{band}" '
                   f'fill="{color}"><title>{_esc(title)}</title></rect>')
    # stretches of the same top-level module, labelled when there is room for the name
    start = 0
    for i in range(1, len(cells) + 1):
        top_mod = _top(cells[start])
        if i < len(cells) and _top(cells[i]) == top_mod:
            continue
        x0, x1 = 1 + start * cw, 1 + i * cw
        out.append(f'<line x1="{x0:.1f}" x2="{x0:.1f}" y1="{band + 3}" y2="{band + 14}" '
                   f'stroke="#888"/>')
        if top_mod and (x1 - x0) > 7 * len(top_mod):
            out.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{band + 16}" text-anchor="middle" '
                       f'class="tick">{_esc(top_mod)}</text>')
        start = i
    out.append(f'<text x="1" y="{h - 4}" class="tick">graph order →  '
               f'<tspan fill="{DELEGATED}">■</tspan> on the target  '
               f'<tspan fill="{FALLBACK}">■</tspan> falls back to the CPU (hover a cell for why)'
               '</text></svg>')
    return "".join(out)


def _top(cell: dict[str, Any]) -> str:
    return (cell.get("module") or "").split(".")[0]
