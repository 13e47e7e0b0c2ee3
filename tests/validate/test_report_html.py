"""report.html of real bundles (an nnapi one at Android API 27 with fallbacks, an int8 one) in a
real headless Chromium: it renders, the screenshot shows the pictures, no console errors; and
report.json's per-layer rows, partition strip and warnings, and `validate --per-layer --top N`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeexport.exporter import parse_input_spec
from edgeexport.pipeline import ConvertOptions, convert
from edgeexport.validate.report_html import render
from edgeexport.validate.report_svg import DELEGATED, FALLBACK
from tests.conftest import require, run_cli

NO_QEMU = {"EDGEEXPORT_NO_QEMU": "1"}


def _convert(out: Path, model: str, shape: str, target: str, quantize: str | None = None,
             **options) -> dict:
    opts = ConvertOptions(target=target, input_specs=[parse_input_spec(shape)],
                          quantize=quantize, target_options=argparse.Namespace(**options),
                          timing_runs=1)
    return convert(model, out, opts).report


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEEXPORT_NO_QEMU", "1")  # qemu is not what this tests; its absence shows
        _convert(root / "nnapi27", "edgeexport.zoo:mobilevit_xxs_like", "1,3,64,64", "nnapi",
                 android_api=27)
        _convert(root / "int8", "edgeexport.zoo:resnet_small", "1,3,32,32", "rpi", "int8")
    return {"nnapi27": root / "nnapi27", "int8": root / "int8"}


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        require("chromium is not installed (scripts/system-deps.sh installs it)")
    return exe


def _browse(page: Path, png: Path) -> tuple[str, list[str]]:
    """Screenshot `page` and dump its DOM in headless Chromium; the console lines it logged.

    Chromium's --enable-logging=stderr --v=0 logs every console message of the page (and
    uncaught exceptions, failed loads) as an INFO:CONSOLE line: that is the console, no CDP."""
    exe = _chromium()
    flags = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--enable-logging=stderr", "--v=0", "--window-size=1100,2000",
             # nothing may come from the network: any attempt fails and is logged
             "--host-resolver-rules=MAP * ~NOTFOUND"]
    shot = subprocess.run(flags + [f"--screenshot={png}", page.as_uri()], capture_output=True,
                          text=True, timeout=180)
    dom = subprocess.run(flags + ["--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=180)
    assert shot.returncode == 0 and dom.returncode == 0, shot.stderr[-2000:] + dom.stderr[-2000:]
    console = [ln for ln in (shot.stderr + dom.stderr).splitlines() if ":CONSOLE" in ln]
    return dom.stdout, console


def _colors(png: Path) -> tuple[int, dict[str, int]]:
    """Distinct colours of the screenshot, and how many pixels have the strip's two colours."""
    from PIL import Image

    img = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    distinct = len(np.unique(img, axis=0))
    count = {}
    for name, hexcol in (("delegated", DELEGATED), ("fallback", FALLBACK)):
        rgb = np.array([int(hexcol[i:i + 2], 16) for i in (1, 3, 5)])
        count[name] = int(np.all(img == rgb, axis=1).sum())
    return distinct, count


def test_console_check_sees_errors(tmp_path) -> None:
    """The console check below can fail: a page with a script error is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><p>x</p><script>notAFunction();</script>")
    _, console = _browse(page, tmp_path / "bad.png")
    assert any("notAFunction" in ln for ln in console), console


@pytest.mark.slow
def test_nnapi_page_renders_with_warnings_first(bundles, tmp_path) -> None:
    out = bundles["nnapi27"]
    report = json.loads((out / "report.json").read_text())
    page = (out / "report.html").read_text()
    # self-contained: no scripts, no fetched resources
    assert "<script" not in page and not re.search(r"(src|href)=|url\(|@import", page)
    # the 19-partition warning is in the list above the first table, not only in the dump
    assert report["coverage"]["partitions"] > 1
    warns = [w["text"] for w in report["warnings"] if w["level"] == "warning"]
    assert any(f"{report['coverage']['partitions']} NNAPI partitions" in w for w in warns)
    head = page[:page.index("<h2>")]
    assert "NNAPI partitions" in head and "v-warn" in head
    # per-layer rows from convert, named by module path
    layers = report["per_layer"]["runtimes"]["litert"]["layers"]
    assert report["per_layer"]["computed"] and len(layers) > 30
    assert any(r["module"] and r["module"].startswith("mvit.transformer") for r in layers)
    assert report["per_layer"]["runtimes"]["litert"]["first_over_tolerance"] is None
    # the strip: every IR node, the fallbacks with their reason
    cells = report["nodes"]
    fallbacks = [c for c in cells if not c["delegated"]]
    assert fallbacks and all(c["reason"] for c in fallbacks)
    assert {f["node"] for f in report["coverage"]["fallback"]} <= {c["node"] for c in cells}
    dom, console = _browse(out / "report.html", tmp_path / "nnapi.png")
    assert console == [], console
    assert dom.count("<rect") >= len(cells) and "FALLBACK — RESHAPE: tensor" in dom
    distinct, count = _colors(tmp_path / "nnapi.png")
    # a blank or unstyled page has a handful of colours and none of the strip's
    assert distinct > 50 and count["delegated"] > 500 and count["fallback"] > 500, count


@pytest.mark.slow
def test_int8_page_renders(bundles, tmp_path) -> None:
    out = bundles["int8"]
    report = json.loads((out / "report.json").read_text())
    topics = {(w["level"], w["topic"]) for w in report["warnings"]}
    assert ("warning", "quantization") in topics  # random calibration
    assert ("warning", "runtime") in topics  # the qemu runtime was not executed
    layers = report["per_layer"]["runtimes"]["litert"]["layers"]
    assert layers and all(r["op"] != "QuantizeLinear" for r in layers)
    assert any(r["module"] == "layer1.0.bn2" for r in layers)
    page = (out / "report.html").read_text()
    head = page[:page.index("<h2>")]
    assert "RANDOM data" in head and "litert-aarch64-qemu was not executed" in head
    dom, console = _browse(out / "report.html", tmp_path / "int8.png")
    assert console == [], console
    assert "<polyline" in dom and "layer1.0.bn2" in dom
    distinct, count = _colors(tmp_path / "int8.png")
    # no fallback: the strip's orange is only in the legend's swatch
    assert distinct > 50 and count["delegated"] > 500 and count["fallback"] < 200, count


@pytest.mark.slow
def test_validate_per_layer_top(bundles, tmp_path) -> None:
    """`validate --per-layer --top 3`: a table of the 3 worst layers with their module path;
    with one weight of ir.onnx changed, the first over tolerance is that conv (or what follows)."""
    import onnx

    out = tmp_path / "nnapi27"
    shutil.copytree(bundles["nnapi27"], out)
    proc = run_cli("validate", str(out), "--per-layer", "--top", "3", env=NO_QEMU)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith("litert:") and "3 worst" in ln)
    assert lines[i + 1].split() == ["node", "module", "op", "max_abs_err", "max_rel_err",
                                    "SQNR", "dB"]
    assert all(len(ln.split()) == 6 for ln in lines[i + 2:i + 5])
    assert lines[i + 5].strip() == "first over tolerance: none"
    model = onnx.load(out / "ir.onnx")
    conv = [n for n in model.graph.node if n.op_type == "Conv"][4]
    init = next(t for t in model.graph.initializer if t.name == conv.input[1])
    init.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(init) * np.float32(1.5),
                                               init.name))
    onnx.save(model, out / "ir.onnx")
    manifest = json.loads((out / "manifest.json").read_text())  # else validate refuses it
    manifest["files"]["ir.onnx"] = hashlib.sha256((out / "ir.onnx").read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest))
    proc = run_cli("validate", str(out), "--per-layer", "--top", "3", env=NO_QEMU)
    bad = next(ln for ln in proc.stdout.splitlines() if "first over tolerance" in ln)
    consumers = [n.name for n in model.graph.node if conv.output[0] in n.input]
    assert any(f"first over tolerance: {name} (" in bad for name in [conv.name] + consumers), bad
    # and its PyTorch module: the innermost scope of the node's namespace
    name, module = re.search(r"tolerance: (\S+) \(\w+, ([\w.]+)\)", bad).groups()
    node = next(n for n in model.graph.node if n.name == name)
    ns = next(p.value for p in node.metadata_props if p.key == "namespace")
    assert ns.split("/")[-2] == f"{module}: " + ns.split("/")[-2].split(": ", 1)[1], (ns, bad)


def test_old_report_still_renders() -> None:
    """A report.json from before per-layer data: the page says how to get it."""
    report = {"target": "onnx", "artifact": "model.onnx", "artifact_bytes": 10, "passed": True,
              "quantization": {"scheme": None}, "coverage": {"total_ops": 1, "delegated_ops": 1,
                                                             "partitions": 1, "fallback": []},
              "parity": [{"runtime": "onnxruntime", "executed": True, "passed": True,
                          "reason": None}], "timings_s": {}}
    page = render(report)
    assert "validate BUNDLE --per-layer" in page and "v-pass" in page


def test_per_layer_is_bounded(bundles, monkeypatch) -> None:
    """Past the size limits convert records why per-layer data is missing, and the page says so."""
    from edgeexport import ir as eir
    from edgeexport.metrics import TOLERANCES
    from edgeexport.validate import layers

    out = bundles["int8"]
    monkeypatch.setattr(layers, "MAX_ELEMENTS", 1000)
    got = layers.for_report(eir.load(out / "ir.onnx"), out / "model.tflite", ["litert"], {}, {},
                            TOLERANCES["int8"])
    assert not got["computed"] and "validate --per-layer" in got["reason"]
    report = json.loads((out / "report.json").read_text())
    page = render({**report, "per_layer": got})
    assert "Not computed during convert" in page and "per-layer comparison skipped" in page
