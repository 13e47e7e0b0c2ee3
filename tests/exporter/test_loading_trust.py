""".pt2 files run no code without --trust-pickle: every member torch.export.load would unpickle
is refused (one line naming the file, the member and --trust-pickle, exit 2), and a marker file
proves the payload never ran; torch.export.load itself runs the same payload (the test is live).
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from tests.cli.test_bad_input import _assert_clean_refusal
from tests.conftest import run_cli


class _Net(torch.nn.Module):
    """A parameter, a buffer and a lifted tensor constant: weights and constants both present."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)
        self.register_buffer("shift", torch.ones(2))
        self.scale = torch.tensor([2.0, 3.0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + self.shift * self.scale


class _Payload:
    """Pickles as a call to eval: writes the marker, then returns a valid object (`value`), so
    that an unprotected load goes on and succeeds as if nothing happened."""

    def __init__(self, marker: Path, value: str) -> None:
        self.expr = f"(open({str(marker)!r}, 'w').close(), {value})[1]"

    def __reduce__(self):
        return (eval, (self.expr,))


TORCH = "__import__('torch')"


def _save(folder: Path) -> Path:
    path = folder / "net.pt2"
    torch.export.save(torch.export.export(_Net(), (torch.randn(1, 4),)), path)
    return path


def _rewrite(src: Path, dst: Path, change: dict[str, bytes | None]) -> None:
    """Copy a .pt2 replacing (or adding, or with None dropping) members named without the
    archive's root folder."""
    with zipfile.ZipFile(src) as z:
        root = next(n for n in z.namelist() if n.endswith("/archive_format")).rsplit("/", 1)[0]
        members = {n[len(root) + 1:]: z.read(n) for n in z.namelist()}
    members.update(change)
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in members.items():
            if data is not None:
                z.writestr(f"{root}/{name}", data)


def _torch_save(obj: object) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _config(src: Path, member: str) -> dict:
    with zipfile.ZipFile(src) as z:
        name = next(n for n in z.namelist() if n.endswith(member))
        return json.loads(z.read(name))


def _mark(src: Path, member: str, fqn: str, **changes: object) -> bytes:
    config = _config(src, member)
    config["config"][fqn].update(changes)
    return json.dumps(config).encode()


WEIGHTS_CFG, CONSTANTS_CFG = ("data/weights/model_weights_config.json",
                              "data/constants/model_constants_config.json")


def _case(name: str, src: Path, marker: Path) -> tuple[dict[str, bytes | None], str]:
    """(members to change, the member the refusal must name) for each pickle a .pt2 can hold."""
    weight = _config(src, WEIGHTS_CFG)["config"]["fc.weight"]["path_name"]
    tensor = f"{TORCH}.zeros(2, 4)"
    if name == "sample_inputs":
        member = "data/sample_inputs/model.pt"
        return {member: _torch_save(_Payload(marker, f"(({TORCH}.zeros(1, 4),), {{}})"))}, member
    if name == "weight_use_pickle":
        member = f"data/weights/{weight}"
        return {WEIGHTS_CFG: _mark(src, WEIGHTS_CFG, "fc.weight", use_pickle=True),
                member: _torch_save(_Payload(marker, tensor))}, member
    if name == "constant_use_pickle":
        member = "data/constants/tensor_0"
        return {CONSTANTS_CFG: _mark(src, CONSTANTS_CFG, "scale", use_pickle=True),
                member: _torch_save(_Payload(marker, f"{TORCH}.tensor([2.0, 3.0])"))}, member
    if name in ("opaque_constant", "opaque_constant_unmarked"):
        member = "data/constants/opaque_obj_0"  # read with plain pickle.loads by torch
        return {CONSTANTS_CFG: _mark(src, CONSTANTS_CFG, "scale", path_name="opaque_obj_0",
                                     use_pickle=name == "opaque_constant"),
                member: pickle.dumps(_Payload(marker, f"{TORCH}.tensor([2.0, 3.0])"))}, member
    if name == "custom_object_constant":  # TorchScript's pickler: no Python payload to show
        member = "data/constants/custom_obj_0"
        return {CONSTANTS_CFG: _mark(src, CONSTANTS_CFG, "scale", path_name="custom_obj_0",
                                     use_pickle=True), member: b"\x80\x02N."}, member
    if name == "legacy_weights":
        member = "data/weights/model.pt"
        state = (f"{{'fc.weight': {TORCH}.zeros(2, 4), 'fc.bias': {TORCH}.zeros(2), "
                 f"'shift': {TORCH}.ones(2)}}")
        return {member: _torch_save(_Payload(marker, state))}, member
    if name == "legacy_constants":
        member = "data/constants/model.pt"
        return {member: _torch_save(_Payload(marker, f"{{'scale': {TORCH}.ones(2)}}"))}, member
    raise AssertionError(name)


CASES = ["sample_inputs", "weight_use_pickle", "constant_use_pickle", "opaque_constant",
         "opaque_constant_unmarked", "custom_object_constant", "legacy_weights",
         "legacy_constants"]
#: the payloads torch.export.load demonstrably runs. Custom objects go to TorchScript's own
#: unpickler, which resolves no Python globals; an opaque_obj_ entry not marked use_pickle fails
#: in torch's raw-tensor reader first. Both are refused all the same.
LIVE = set(CASES) - {"custom_object_constant", "opaque_constant_unmarked"}


@pytest.mark.parametrize("name", CASES)
def test_pickled_member_is_refused_and_never_runs(name: str, tmp_path: Path) -> None:
    marker = tmp_path / "PAYLOAD_RAN"
    change, member = _case(name, _save(tmp_path), marker)
    evil = tmp_path / "evil.pt2"
    _rewrite(tmp_path / "net.pt2", evil, change)
    if name in LIVE:  # the payload is real: torch's own loader executes it
        try:
            torch.export.load(evil)
        except Exception:
            pass
        assert marker.exists(), "the payload should run under torch.export.load"
        marker.unlink()
    proc = run_cli("convert", str(evil), "--target", "onnx", "-o", str(tmp_path / "out"))
    _assert_clean_refusal(proc, tmp_path, "evil.pt2", member, "--trust-pickle")
    assert not marker.exists()
    if name == "sample_inputs":  # export reads the model the same way
        proc = run_cli("export", str(evil), "-o", str(tmp_path / "out.onnx"))
        _assert_clean_refusal(proc, tmp_path, "evil.pt2", member, "--trust-pickle")
        assert not marker.exists() and not (tmp_path / "out.onnx").exists()


def test_trust_pickle_keeps_torch_loader(tmp_path: Path) -> None:
    marker = tmp_path / "PAYLOAD_RAN"
    change, _ = _case("sample_inputs", _save(tmp_path), marker)
    evil = tmp_path / "evil.pt2"
    _rewrite(tmp_path / "net.pt2", evil, change)
    proc = run_cli("convert", str(evil), "--target", "onnx", "-o", str(tmp_path / "out"),
                   "--trust-pickle")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert marker.exists()  # the user vouched for the file: torch.export.load ran it


def test_graph_target_outside_aten_is_refused(tmp_path: Path) -> None:
    """A node calling torch.os.system (any callable the deserializer can reach by name) is
    refused by the ExportedProgram verifier while loading, before anything runs."""
    src = _save(tmp_path)
    marker = tmp_path / "GRAPH_RAN"
    with zipfile.ZipFile(src) as z:
        name = next(n for n in z.namelist() if n.endswith("models/model.json"))
        program = json.loads(z.read(name))
    program["graph_module"]["graph"]["nodes"].insert(0, {
        "target": "torch.os.system", "name": "evil", "metadata": {}, "outputs": [],
        "inputs": [{"name": "command", "kind": 1, "arg": {"as_string": f"touch {marker}"}}]})
    evil = tmp_path / "evil.pt2"
    _rewrite(src, evil, {"models/model.json": json.dumps(program).encode()})
    proc = run_cli("convert", str(evil), "--target", "onnx", "-o", str(tmp_path / "out"))
    _assert_clean_refusal(proc, tmp_path, "evil.pt2")
    assert not marker.exists()


def test_plain_pt2_converts_without_the_flag(tmp_path: Path) -> None:
    """What torch.export.save writes (raw weights and constants, tensor sample inputs) loads
    with the same graph, weights and sample inputs as torch.export.load, and converts."""
    from edgeexport.exporter.pt2 import load_program

    src = _save(tmp_path)
    ours, theirs = load_program(src), torch.export.load(src)
    assert str(ours.graph) == str(theirs.graph)
    for key, value in theirs.state_dict.items():
        assert torch.equal(ours.state_dict[key], value)
    assert torch.equal(ours.constants["scale"], theirs.constants["scale"])
    assert torch.equal(ours.example_inputs[0][0], theirs.example_inputs[0][0])
    proc = run_cli("convert", str(src), "--target", "onnx", "-o", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "parity: PASSED" in proc.stdout
