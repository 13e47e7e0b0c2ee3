"""ONNX external data is read only from inside the model's folder: an initializer whose
`location` is absolute, climbs out with `..` or is a symlink out of the folder is refused by
export, convert and run (exit 2, one line naming the file and the path), even when the command
runs in the model's own folder and the file name has no folder part."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.cli.test_bad_input import _assert_clean_refusal
from tests.conftest import run_cli

SECRET = b"secret-outside-the-model-folder!" * 2  # 64 bytes


def external_model(path: Path, location: str) -> None:
    """y = x + w, with w (64 uint8) stored as external data at `location`."""
    w = TensorProto(name="w", data_type=TensorProto.UINT8, dims=[64])
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "64")):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("x", TensorProto.UINT8, [64])
    y = helper.make_tensor_value_info("y", TensorProto.UINT8, [64])
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    path.write_bytes(model.SerializeToString())


def _layout(tmp_path: Path, how: str) -> Path:
    """tmp/secret.bin outside tmp/model/, and tmp/model/model.onnx pointing at it `how`."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET)
    folder = tmp_path / "model"
    folder.mkdir()
    depth = len(folder.resolve().parts)
    location = {"absolute": str(secret),
                "dotdot": "../" * depth + str(secret.resolve()).lstrip("/"),
                "symlink": "weights.bin"}[how]
    if how == "symlink":
        (folder / "weights.bin").symlink_to(secret)
    external_model(folder / "model.onnx", location)
    np.save(folder / "x.npy", np.zeros(64, np.uint8))
    return folder


HOW = ["absolute", "dotdot", "symlink"]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("runtime", ["reference", "onnxruntime"])
def test_run_refuses_external_data_outside(how: str, runtime: str, tmp_path: Path) -> None:
    folder = _layout(tmp_path, how)
    proc = run_cli("run", "model.onnx", "--input", "x=x.npy", "--runtime", runtime, "-o",
                   "y.npz", cwd=folder)
    _assert_clean_refusal(proc, folder, "model.onnx", "external data", "outside"
                          if how != "absolute" else "absolute")
    assert not (folder / "y.npz").exists() and proc.stdout == ""  # nothing of it printed


@pytest.mark.parametrize("how", HOW)
def test_export_and_convert_refuse_external_data_outside(how: str, tmp_path: Path) -> None:
    folder = _layout(tmp_path, how)
    proc = run_cli("export", "model.onnx", "-o", "out.onnx", cwd=folder)
    _assert_clean_refusal(proc, folder, "model.onnx", "external data")
    assert not (folder / "out.onnx").exists()
    proc = run_cli("convert", "model.onnx", "--target", "onnx", "-o", "out", cwd=folder)
    _assert_clean_refusal(proc, folder, "model.onnx", "external data")


def test_external_data_inside_the_folder_still_runs(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "w.bin").write_bytes(bytes(range(64)))
    external_model(folder / "model.onnx", "w.bin")
    np.save(folder / "x.npy", np.ones(64, np.uint8))
    for runtime in ("reference", "onnxruntime"):
        proc = run_cli("run", "model.onnx", "--input", "x=x.npy", "--runtime", runtime, "-o",
                       f"{runtime}.npz", cwd=folder)
        assert proc.returncode == 0, proc.stderr[-2000:]
        np.testing.assert_array_equal(np.load(folder / f"{runtime}.npz")["y"],
                                      np.arange(1, 65, dtype=np.uint8))


def test_the_check_sees_every_tensor(tmp_path: Path) -> None:
    """Constant-node attributes and subgraphs carry tensors too."""
    from edgeexport.errors import UsageError
    from edgeexport.ir import check_external_data

    t = TensorProto(name="c", data_type=TensorProto.UINT8, dims=[1])
    t.data_location = TensorProto.EXTERNAL
    entry = t.external_data.add()
    entry.key, entry.value = "location", "../c.bin"
    then = helper.make_graph([helper.make_node("Constant", [], ["z"], value=t)], "then", [],
                             [helper.make_tensor_value_info("z", TensorProto.UINT8, [1])])
    node = helper.make_node("If", ["cond"], ["z"], then_branch=then, else_branch=then)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("z", TensorProto.UINT8, [1])])
    onnx.save(helper.make_model(graph), tmp_path / "if.onnx")
    with pytest.raises(UsageError, match=r"\.\./c\.bin"):
        check_external_data(tmp_path / "if.onnx")
