"""CI cannot pass without executing: a test whose runtime (or data) is missing fails when CI=true
(conftest.require), and every other skip in tests/ is one of the few listed here, with why."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tests.conftest as conftest

TESTS = Path(__file__).resolve().parent
#: the only files that may skip by themselves, and why their skips are not a missing runtime
ALLOWED = {
    "conftest.py": "require(): skips outside CI only",
    "delegates/test_coreml_ops.py": "an op the coreml registry refuses at that --ios (its reason)",
    "delegates/test_coreml_macos.py": "CoreML predict cannot exist off macOS",
    "runtimes/test_mil_interpreter.py": "checks the off-macOS behaviour of the coreml runtime",
    "runtimes/test_reference_onnx_nodes.py": "ONNX node cases the reference does not claim",
    "cli/test_bad_input.py": "root ignores directory permission bits",
}
SKIPS = {"skip", "skipif", "importorskip", "xfail"}


def _skips(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in SKIPS:
            found.append(f"{node.attr} (line {node.lineno})")
    return found


def test_skips_are_only_the_listed_ones() -> None:
    bad = {}
    for path in sorted(TESTS.rglob("*.py")):
        rel = path.relative_to(TESTS).as_posix()
        if rel != "test_ci_skips.py" and rel not in ALLOWED and _skips(path):
            bad[rel] = _skips(path)
    assert bad == {}, f"use tests.conftest.require*, which fails in CI: {bad}"
    for rel in ALLOWED:
        assert (TESTS / rel).exists(), rel


def test_a_missing_runtime_fails_in_ci_and_skips_elsewhere(monkeypatch) -> None:
    conftest.require(None)  # nothing missing: the test goes on
    monkeypatch.setattr(conftest, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI=true and this test cannot run: no qemu"):
        conftest.require("no qemu")
    monkeypatch.setattr(conftest, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="no qemu"):
        conftest.require("no qemu")
    with pytest.raises(pytest.skip.Exception, match="not_a_module_here is not installed"):
        conftest.require_module("not_a_module_here")


def test_ci_run_sets_ci() -> None:
    run = (TESTS.parent / ".ci" / "run").read_text()
    assert "export CI=true" in run
