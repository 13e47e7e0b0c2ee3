"""The table of bad inputs: each case writes its files under a temporary folder and returns the
command line. Every one must end in exit 2 with one stderr line naming the file (see
test_bad_input_table.py). Files come from the fuzz seed corpus (tests/fuzz/corpus/).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

CORPUS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus"
TINY = "tests.fuzz.make_corpus:tiny"
SHAPE = ("--input-shape", "x=1,3,8,8")


@dataclass(frozen=True)
class Case:
    id: str
    #: writes its files in the folder, returns the arguments after `edgeexport`
    build: Callable[[Path], list[str]]
    #: text the one stderr line must hold (the file's name, what to do), case-insensitive
    says: tuple[str, ...]


def _copy(tmp: Path, name: str, as_name: str | None = None) -> Path:
    dst = tmp / (as_name or name)
    shutil.copyfile(CORPUS / name, dst)
    return dst


def _write(tmp: Path, name: str, data: bytes) -> Path:
    (tmp / name).write_bytes(data)
    return tmp / name


def _convert(model: str, tmp: Path, *extra: str, target: str = "onnx") -> list[str]:
    return ["convert", model, "--target", target, "-o", str(tmp / "out"), *extra]


# ONNX files edited with onnx's own API --------------------------------------------------------
def _onnx(tmp: Path, name: str, edit: Callable) -> Path:
    import onnx

    model = onnx.load(CORPUS / "tiny.onnx")
    edit(model)
    path = tmp / name
    path.write_bytes(model.SerializeToString())
    return path


def _dim(value: int) -> Callable:
    def edit(model) -> None:
        model.graph.input[0].type.tensor_type.shape.dim[2].dim_value = value
    return edit


def _domain(model) -> None:
    model.graph.node[0].domain = "com.example.private"
    model.opset_import.add(domain="com.example.private", version=1)


def _opset(version: int) -> Callable:
    def edit(model) -> None:
        model.opset_import[0].version = version
    return edit


def _unknown_op(model) -> None:
    model.graph.node[0].op_type = "FrobnicateConv"


def _onnx_case(id: str, edit: Callable, *says: str) -> Case:
    return Case(id, lambda t: _convert(str(_onnx(t, f"{id}.onnx", edit)), t), (f"{id}.onnx",
                                                                                *says))


# TFLite files edited with the schema classes that ship in ai-edge-litert -----------------------
def _tflite(tmp: Path, name: str, edit: Callable) -> Path:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as fb

    model = fb.ModelT.InitFromPackedBuf(bytearray((CORPUS / "tiny.tflite").read_bytes()), 0)
    edit(model)
    builder = flatbuffers.Builder(1 << 16)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return _write(tmp, name, bytes(builder.Output()))


def _op_input(index: int) -> Callable:
    def edit(model) -> None:
        model.subgraphs[0].operators[0].inputs[0] = index
    return edit


def _tensor_buffer(model) -> None:
    model.subgraphs[0].tensors[1].buffer = 9999


def _short_buffer(model) -> None:
    sub = model.subgraphs[0]
    weights = sub.tensors[sub.operators[0].inputs[1]]
    buf = model.buffers[weights.buffer]
    buf.data = buf.data[:8]


def _opcode(model) -> None:
    model.subgraphs[0].operators[0].opcodeIndex = 77


def _graph_output(model) -> None:
    model.subgraphs[0].outputs = [4242]


def _negative_shape(model) -> None:
    model.subgraphs[0].tensors[0].shape = [1, -5, 8, 3]


def _no_subgraph(model) -> None:
    model.subgraphs = []


def _builtin_code(model) -> None:
    model.operatorCodes[0].builtinCode = 9000
    model.operatorCodes[0].deprecatedBuiltinCode = 127


def _tflite_case(id: str, edit: Callable, *says: str) -> Case:
    return Case(id, lambda t: ["run", str(_tflite(t, f"{id}.tflite", edit))],
                (f"{id}.tflite", *says))


# ncnn files ----------------------------------------------------------------------------------
def _ncnn(tmp: Path, name: str, param: Callable[[str], str] | None = None,
          weights: Callable[[bytes], bytes] | None = None) -> Path:
    text = (CORPUS / "tiny.param").read_text()
    data = (CORPUS / "tiny.bin").read_bytes()
    (tmp / f"{name}.param").write_text(param(text) if param else text)
    (tmp / f"{name}.bin").write_bytes(weights(data) if weights else data)
    return tmp / f"{name}.param"


def _ncnn_case(id: str, *, param: Callable | None = None, weights: Callable | None = None,
               says: tuple[str, ...] = ()) -> Case:
    which = ".bin" if weights and not param else ".param"
    return Case(id, lambda t: ["run", str(_ncnn(t, id, param, weights))], (f"{id}{which}", *says))


def _lines(edit: Callable[[list[str]], None]) -> Callable[[str], str]:
    def apply(text: str) -> str:
        lines = text.splitlines()
        edit(lines)
        return "\n".join(lines) + "\n"
    return apply


def _set(i: int, old: str, new: str) -> Callable[[str], str]:
    def edit(lines: list[str]) -> None:
        lines[i] = lines[i].replace(old, new, 1)
    return _lines(edit)


# arrays: calibration data, samples, run inputs ------------------------------------------------
def _npy(tmp: Path, name: str, arr: np.ndarray) -> str:
    np.save(tmp / name, arr, allow_pickle=True)
    return str(tmp / name)


def _x(*shape: int, fill: float | None = None, dtype=np.float32) -> np.ndarray:
    arr = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    if fill is not None:
        arr.flat[3] = fill
    return arr


def _calib(id: str, arr: Callable[[], np.ndarray], *says: str) -> Case:
    return Case(id, lambda t: _convert(TINY, t, *SHAPE, "--quantize", "int8",
                                       "--calibration-data", _npy(t, f"{id}.npy", arr())),
                (f"{id}.npy", *says))


def _samples(id: str, arr: Callable[[], np.ndarray], *says: str) -> Case:
    return Case(id, lambda t: _convert(TINY, t, *SHAPE, "--samples", _npy(t, f"{id}.npy", arr())),
                (f"{id}.npy", *says))


def _run_input(id: str, arr: Callable[[], np.ndarray], *says: str, artifact: str = "tiny.onnx"
               ) -> Case:
    return Case(id, lambda t: ["run", str(_copy(t, artifact)), "--input",
                               "x=" + _npy(t, f"{id}.npy", arr())], (f"{id}.npy", *says))


# bundles -------------------------------------------------------------------------------------
def _bundle(tmp: Path, edit: Callable[[Path], None] | None = None) -> Path:
    out = tmp / "bundle"
    shutil.copytree(CORPUS / "bundle", out)
    if edit:
        edit(out)
    return out


def _manifest(text: str) -> Callable[[Path], None]:
    return lambda b: (b / "manifest.json").write_text(text)


def _manifest_edit(fn: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(b: Path) -> None:
        data = json.loads((b / "manifest.json").read_text())
        fn(data)
        (b / "manifest.json").write_text(json.dumps(data))
    return edit


def _validate(id: str, edit: Callable[[Path], None], *says: str, command: str = "validate"
              ) -> Case:
    return Case(id, lambda t: [command, str(_bundle(t, edit))], says)


# output folders ------------------------------------------------------------------------------
def _user_folder(tmp: Path) -> Path:
    out = tmp / "out"
    (out / "sub").mkdir(parents=True)
    (out / "labels.txt").write_text("cat\ndog\n")
    (out / "sub" / "other.bin").write_bytes(b"\1\2\3")
    return out


def _previous_bundle(tmp: Path, extra: bool = False) -> Path:
    out = tmp / "out"
    shutil.copytree(CORPUS / "bundle", out)
    if extra:
        (out / "notes.txt").write_text("mine")
    return out


def _under_file(tmp: Path) -> list[str]:
    (tmp / "afile").write_text("x")
    return ["convert", TINY, *SHAPE, "--target", "onnx", "-o", str(tmp / "afile" / "out")]


CASES: list[Case] = [
    # model files --------------------------------------------------------------------------
    Case("missing-model", lambda t: _convert(str(t / "nope.pt"), t), ("nope.pt", "no such file")),
    Case("model-is-dir", lambda t: _convert(str(t), t), ("is a directory",)),
    Case("empty-pt", lambda t: _convert(str(_write(t, "empty.pt", b"")), t), ("empty.pt", "empty")),
    Case("random-pt", lambda t: _convert(str(_write(t, "noise.pt", bytes(range(256)) * 16)), t,
                                         *SHAPE), ("noise.pt", "not a model file")),
    Case("truncated-torchscript",
         lambda t: _convert(str(_write(t, "cut.pt", (CORPUS / "tiny.pt").read_bytes()[:3000])), t,
                            *SHAPE), ("cut.pt", "truncated or corrupt")),
    Case("truncated-pt2",
         lambda t: _convert(str(_write(t, "cut.pt2", (CORPUS / "tiny.pt2").read_bytes()[:7000])),
                            t), ("cut.pt2",)),
    Case("empty-onnx", lambda t: _convert(str(_write(t, "empty.onnx", b"")), t),
         ("empty.onnx", "empty")),
    Case("random-onnx",
         lambda t: _convert(str(_write(t, "noise.onnx", np.random.default_rng(1).bytes(2048))), t),
         ("noise.onnx",)),
    Case("truncated-onnx",
         lambda t: _convert(str(_write(t, "cut.onnx", (CORPUS / "tiny.onnx").read_bytes()[:900])),
                            t), ("cut.onnx",)),
    _onnx_case("onnx-negative-dim", _dim(-3), "-3"),
    _onnx_case("onnx-zero-dim", _dim(0), "dimension"),
    _onnx_case("onnx-huge-dim", _dim(2**40), str(2**40)),
    _onnx_case("onnx-unknown-domain", _domain, "com.example.private"),
    _onnx_case("onnx-opset-too-new", _opset(99), "opset 99"),
    _onnx_case("onnx-opset-too-old", _opset(3), "invalid onnx model"),
    _onnx_case("onnx-unknown-op", _unknown_op, "FrobnicateConv"),
    Case("inspect-random-onnx",
         lambda t: ["inspect", str(_write(t, "noise2.onnx", np.random.default_rng(2).bytes(999))),
                    "--target", "rpi"], ("noise2.onnx",)),
    Case("state-dict", lambda t: _state_dict(t), ("weights.pt", "state_dict")),
    # --input-shape ---------------------------------------------------------------------------
    Case("shape-syntax", lambda t: _convert(TINY, t, "--input-shape", "1,3,a,b"),
         ("--input-shape",)),
    Case("shape-zero", lambda t: _convert(TINY, t, "--input-shape", "1,3,0,8"), ("--input-shape",)),
    Case("shape-2pow40", lambda t: _convert(TINY, t, "--input-shape", f"1,3,{2**40},8"),
         ("--input-shape", str(2**40))),
    Case("shape-huge-total", lambda t: _convert(TINY, t, "--input-shape", "64,3,65536,65536"),
         ("--input-shape", "elements")),
    Case("shape-dtype", lambda t: _convert(TINY, t, "--input-shape", "1,3,8,8:complex64"),
         ("--input-shape", "dtype")),
    Case("shape-rank", lambda t: _convert(str(_copy(t, "tiny.pt2")), t, "--input-shape", "1,3,8"),
         ("tiny.pt2", "rank")),
    Case("shape-count", lambda t: _convert(str(_copy(t, "tiny.onnx")), t, *SHAPE, *SHAPE),
         ("tiny.onnx", "input")),
    Case("unknown-factory", lambda t: _convert("no_such_pkg.models:build", t, *SHAPE),
         ("no_such_pkg", "cannot import")),
    # -o --------------------------------------------------------------------------------------
    Case("out-user-folder", lambda t: (_user_folder(t), _convert(TINY, t, *SHAPE))[1],
         ("out", "labels.txt", "new or empty")),
    Case("out-user-folder-force",
         lambda t: (_user_folder(t), _convert(TINY, t, *SHAPE, "--force"))[1],
         ("out", "labels.txt", "never replaced")),
    Case("out-previous-bundle", lambda t: (_previous_bundle(t), _convert(TINY, t, *SHAPE))[1],
         ("out", "--force")),
    Case("out-bundle-plus-user-file",
         lambda t: (_previous_bundle(t, extra=True), _convert(TINY, t, *SHAPE, "--force"))[1],
         ("out", "notes.txt")),
    Case("out-is-file", lambda t: (_write(t, "out", b"x"), _convert(TINY, t, *SHAPE))[1],
         ("out", "not a directory")),
    Case("out-under-file", _under_file, ("afile", "not a folder")),
    Case("out-proc", lambda t: ["convert", TINY, *SHAPE, "--target", "onnx", "-o",
                                "/proc/edgeexport-out"], ("/proc", "not writable")),
    Case("out-all-user-folder",
         lambda t: (_user_folder(t), _convert(TINY, t, *SHAPE, target="all"))[1],
         ("out", "labels.txt")),
    Case("export-under-file",
         lambda t: (_write(t, "afile", b"x"), ["export", TINY, *SHAPE, "-o",
                                               str(t / "afile" / "m.onnx")])[1],
         ("afile", "not a folder")),
    # calibration data ------------------------------------------------------------------------
    _calib("calib-nan", lambda: _x(8, 3, 8, 8, fill=np.nan), "nan", "sample"),
    _calib("calib-inf", lambda: _x(8, 3, 8, 8, fill=np.inf), "inf"),
    _calib("calib-empty", lambda: _x(0, 3, 8, 8), "no calibration samples"),
    _calib("calib-complex", lambda: _x(4, 3, 8, 8).astype(np.complex64), "complex64"),
    _calib("calib-strings", lambda: np.array([["a"] * 8] * 4), "dtype"),
    _calib("calib-object", lambda: np.array([None, 1], dtype=object), "calib-object.npy"),
    _calib("calib-wrong-shape", lambda: _x(4, 3, 9, 9), "shape"),
    Case("calib-missing", lambda t: _convert(TINY, t, *SHAPE, "--quantize", "int8",
                                             "--calibration-data", str(t / "none.npy")),
         ("none.npy", "not found")),
    Case("calib-corrupt", lambda t: _convert(TINY, t, *SHAPE, "--quantize", "int8",
                                             "--calibration-data",
                                             str(_write(t, "bad.npy", b"\x93NUMPY garbage"))),
         ("bad.npy", "cannot read")),
    Case("calib-npz-key", lambda t: _convert(TINY, t, *SHAPE, "--quantize", "int8",
                                             "--calibration-data", _npz(t, y=_x(4, 3, 8, 8))),
         ("data.npz", "x")),
    Case("calib-npz-nan", lambda t: _convert(TINY, t, *SHAPE, "--quantize", "int8",
                                             "--calibration-data",
                                             _npz(t, x=_x(4, 3, 8, 8, fill=np.nan))),
         ("data.npz", "nan")),
    # --samples -------------------------------------------------------------------------------
    _samples("samples-nan", lambda: _x(2, 3, 8, 8, fill=np.nan), "nan"),
    _samples("samples-inf", lambda: _x(2, 3, 8, 8, fill=-np.inf), "inf"),
    _samples("samples-empty", lambda: _x(0, 3, 8, 8), "no"),
    _samples("samples-wrong-shape", lambda: _x(2, 4, 8, 8), "shape"),
    _samples("samples-bool", lambda: np.ones((2, 3, 8, 8), bool), "dtype"),
    Case("preprocess-bad", lambda t: _convert(TINY, t, *SHAPE, "--quantize", "int8",
                                              "--calibration-data", str(_images(t)),
                                              "--preprocess", "resize=abc"), ("--preprocess",)),
    Case("max-error-bad", lambda t: _convert(TINY, t, *SHAPE, "--quantize", "int8",
                                             "--max-error", "speed=fast"), ("--max-error",)),
    # run: artifacts --------------------------------------------------------------------------
    Case("run-missing", lambda t: ["run", str(t / "gone.tflite")], ("gone.tflite", "no such")),
    Case("run-empty-tflite", lambda t: ["run", str(_write(t, "empty.tflite", b""))],
         ("empty.tflite", "empty")),
    Case("run-truncated-tflite",
         lambda t: ["run", str(_write(t, "cut.tflite", (CORPUS / "tiny.tflite").read_bytes()[:1200]
                                      ))], ("cut.tflite",)),
    Case("run-random-tflite",
         lambda t: ["run", str(_write(t, "noise.tflite", b"\0\0\0\0TFL3"
                                      + np.random.default_rng(3).bytes(3000)))], ("noise.tflite",)),
    _tflite_case("tfl-op-input", _op_input(999), "tensor 999"),
    _tflite_case("tfl-op-input-neg", _op_input(-7), "tensor -7"),
    _tflite_case("tfl-buffer-index", _tensor_buffer, "buffer 9999"),
    _tflite_case("tfl-short-buffer", _short_buffer, "bytes"),
    _tflite_case("tfl-opcode", _opcode, "operator code 77"),
    _tflite_case("tfl-graph-output", _graph_output, "tensor 4242"),
    _tflite_case("tfl-negative-shape", _negative_shape, "-5"),
    _tflite_case("tfl-no-subgraph", _no_subgraph, "subgraph"),
    _tflite_case("tfl-builtin-code", _builtin_code, "9000"),
    Case("run-random-param", lambda t: ["run", str(_random_ncnn(t))], ("noise.param",)),
    _ncnn_case("ncnn-magic", param=_set(0, "7767517", "7767518"), says=("magic",)),
    _ncnn_case("ncnn-counts", param=_set(1, "4 4", "9 4"), says=("layers",)),
    _ncnn_case("ncnn-blob-ref", param=_set(3, " x relu", " nosuchblob relu"),
               says=("nosuchblob",)),
    _ncnn_case("ncnn-negative-count", param=_set(3, "1 1 x", "-1 1 x"), says=("count",)),
    _ncnn_case("ncnn-short-bin", weights=lambda b: b[:100], says=("bytes",)),
    _ncnn_case("ncnn-random-bin", weights=lambda b: np.random.default_rng(4).bytes(len(b) // 3),
               says=("bytes",)),
    _ncnn_case("ncnn-huge-param", param=_set(2, "0=8", "0=100000000"), says=("elements",)),
    Case("ncnn-missing-bin", lambda t: ["run", str(_missing_bin(t))], ("lonely.bin", "missing")),
    Case("run-random-onnx",
         lambda t: ["run", str(_write(t, "noise.onnx", np.random.default_rng(5).bytes(1500)))],
         ("noise.onnx",)),
    # run: inputs -----------------------------------------------------------------------------
    _run_input("run-wrong-shape", lambda: _x(1, 3, 9, 9), "shape"),
    _run_input("run-wrong-shape-tflite", lambda: _x(1, 3, 9, 9), "shape", artifact="tiny.tflite"),
    _run_input("run-strings", lambda: np.array(["a", "b"]), "dtype"),
    Case("run-input-unnamed",
         lambda t: ["run", str(_copy(t, "tiny.onnx")), "--input", _npy(t, "x.npy", _x(1, 3, 8, 8))],
         ("x.npy", "NAME=FILE")),
    Case("run-input-unknown-name",
         lambda t: ["run", str(_copy(t, "tiny.onnx")), "--input",
                    "y=" + _npy(t, "y.npy", _x(1, 3, 8, 8))], ("y.npy", "its inputs: x")),
    Case("run-input-corrupt",
         lambda t: ["run", str(_copy(t, "tiny.onnx")), "--input",
                    "x=" + str(_write(t, "bad.npy", b"garbage"))], ("bad.npy", "cannot read")),
    Case("run-unknown-runtime",
         lambda t: ["run", str(_copy(t, "tiny.onnx")), "--runtime", "tpu"], ("tpu",)),
    Case("run-runtime-format",
         lambda t: ["run", str(_copy(t, "tiny.onnx")), "--runtime", "litert"], ("litert",)),
    # validate / bench ------------------------------------------------------------------------
    Case("validate-not-bundle", lambda t: ["validate", str(t)], ("manifest.json",)),
    _validate("manifest-not-json", _manifest("{not json"), "manifest.json", "json"),
    _validate("manifest-empty", _manifest(""), "manifest.json"),
    _validate("manifest-list", _manifest("[1, 2]"), "manifest.json"),
    _validate("manifest-no-target", _manifest_edit(lambda m: m.pop("target")), "manifest.json",
              "target"),
    _validate("manifest-unknown-target", _manifest_edit(lambda m: m.update(target="tpu")),
              "manifest.json", "tpu"),
    _validate("bundle-missing-artifact", lambda b: (b / "model.onnx").unlink(), "model.onnx",
              "missing"),
    _validate("bundle-missing-parity", lambda b: (b / "parity" / "sample0_input_x.bin").unlink(),
              "sample0_input_x.bin"),
    _validate("bundle-short-parity",
              lambda b: (b / "parity" / "sample0_input_x.bin").write_bytes(b"\0" * 10),
              "sample0_input_x.bin"),
    _validate("bench-missing-artifact", lambda b: (b / "model.onnx").unlink(), "model.onnx",
              command="bench"),
]


def _state_dict(tmp: Path) -> list[str]:
    import torch

    torch.save(torch.nn.Linear(4, 2).state_dict(), tmp / "weights.pt")
    return _convert(str(tmp / "weights.pt"), tmp, "--input-shape", "1,4")


def _npz(tmp: Path, **arrays: np.ndarray) -> str:
    np.savez(tmp / "data.npz", **arrays)
    return str(tmp / "data.npz")


def _images(tmp: Path) -> Path:
    from PIL import Image

    folder = tmp / "images"
    folder.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / "a.png")
    return folder


def _random_ncnn(tmp: Path) -> Path:
    rng = np.random.default_rng(6)
    _write(tmp, "noise.bin", rng.bytes(400))
    return _write(tmp, "noise.param", b"7767517\n" + rng.bytes(300))


def _missing_bin(tmp: Path) -> Path:
    _copy(tmp, "tiny.param", "lonely.param")
    return tmp / "lonely.param"
