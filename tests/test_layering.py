"""The code layout rules of STYLE.md, checked: formats stay inside their delegate (and runtime),
and a stage never imports a later stage."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "edgeexport"

#: third-party format packages -> the only places allowed to import them
FORMAT_OWNERS = {
    "flatbuffers": ("delegates/tflite", "delegates/nnapi", "delegates/rpi", "runtimes/litert"),
    "ai_edge_litert": ("delegates/tflite", "delegates/nnapi", "delegates/rpi",
                       "runtimes/litert"),
    "coremltools": ("delegates/coreml", "delegates/metal", "runtimes/mil", "runtimes/coreml"),
    "ncnn": ("delegates/vulkan", "runtimes/ncnn"),
}
STAGES = ["exporter", "passes", "quantize", "delegates", "runtimes", "validate"]
#: the reference kernels are the op definitions the edge profile points at (OpSpec.reference_kernel);
#: any stage may evaluate an op with them (constant folding, dequantizing a constant)
SHARED = ("edgeexport.runtimes.reference.kernels",)


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _modules() -> list[tuple[str, Path]]:
    return [(p.relative_to(SRC).as_posix(), p) for p in sorted(SRC.rglob("*.py"))]


def test_format_packages_stay_in_their_delegates() -> None:
    bad = []
    for rel, path in _modules():
        for name in _imports(path):
            top = name.split(".")[0]
            owners = FORMAT_OWNERS.get(top)
            if owners and not rel.startswith(owners):
                bad.append(f"{rel} imports {name}")
    assert bad == [], bad


def test_no_stage_imports_a_later_stage() -> None:
    bad = []
    for rel, path in _modules():
        stage = rel.split("/")[0]
        if stage not in STAGES:
            continue
        later = STAGES[STAGES.index(stage) + 1:]
        for name in _imports(path):
            parts = name.split(".")
            if name.startswith(SHARED):
                continue
            if parts[0] == "edgeexport" and len(parts) > 1 and parts[1] in later:
                bad.append(f"{rel} imports {name}")
    assert bad == [], bad
