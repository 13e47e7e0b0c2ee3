"""A seeded mutation fuzzer for every loader: byte flips, interesting values, truncations,
splices, and format-aware edits (a zip member, a .param token, a manifest value) over the seed
corpus in tests/fuzz/corpus/. Each mutated file goes through the real CLI (`inspect`, `run`,
`validate`) in a worker process that runs `edgeexport.cli.main` case after case; a worker that
dies by a signal, hangs, prints a traceback or exits 1 marks the input as a crash.

`python -m tests.fuzz.fuzz LOADER SECONDS [SEED]` prints the counts of one run.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
REGRESSIONS = HERE / "regressions"
REPO = HERE.parents[1]
#: seconds one case may take before it counts as a hang (a first torch import included)
CASE_TIMEOUT = float(os.environ.get("EDGEEXPORT_FUZZ_CASE_TIMEOUT", "120"))
_INTERESTING = [0, 1, 0x7F, 0x80, 0xFF]
_INTERESTING_INTS = ["-1", "0", "1", "-2147483648", "2147483647", "4294967296", "1099511627776",
                     "99999999", "-23300", "3"]


# mutations ---------------------------------------------------------------------------------
def mutate_bytes(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 4, 8])):
        op = rng.randrange(7)
        if not buf:
            buf += rng.randbytes(rng.randrange(1, 64))
            continue
        i = rng.randrange(len(buf))
        if op == 0:  # flip one bit
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # an interesting byte
            buf[i] = rng.choice(_INTERESTING)
        elif op == 2:  # an interesting 32-bit value (flatbuffer offsets, counts)
            word = rng.choice([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, len(buf), 999])
            buf[i:i + 4] = word.to_bytes(4, "little")
        elif op == 3:  # truncate
            del buf[rng.randrange(len(buf)):]
        elif op == 4:  # splice a chunk of another seed (or this one) over this spot
            src = rng.choice(others + [bytes(buf)])
            if src:
                j = rng.randrange(len(src))
                chunk = src[j:j + rng.randrange(1, 64)]
                buf[i:i + len(chunk)] = chunk
        elif op == 5:  # delete a chunk
            del buf[i:i + rng.randrange(1, 32)]
        else:  # duplicate a chunk
            chunk = buf[i:i + rng.randrange(1, 32)]
            buf[i:i] = chunk
    return bytes(buf)


def mutate_text(text: str, rng: random.Random) -> str:
    """Token edits that keep a text format parseable enough to reach deep checks."""
    tokens = re.split(r"(\s+|=|,)", text)
    numbers = [i for i, t in enumerate(tokens) if re.fullmatch(r"-?\d+(\.\d+)?", t)]
    for _ in range(rng.choice([1, 1, 2, 3])):
        op = rng.randrange(4)
        if op == 0 and numbers:
            tokens[rng.choice(numbers)] = rng.choice(_INTERESTING_INTS)
        elif op == 1:
            words = [i for i, t in enumerate(tokens) if t.strip() and t not in "=,"]
            if len(words) > 1:
                a, b = rng.sample(words, 2)
                tokens[a], tokens[b] = tokens[b], tokens[a]
        elif op == 2:
            lines = "".join(tokens).splitlines()
            if len(lines) > 2:
                del lines[rng.randrange(2, len(lines))]
            tokens = re.split(r"(\s+|=|,)", "\n".join(lines) + "\n")
        else:
            words = [i for i, t in enumerate(tokens) if t.strip() and t not in "=,"]
            if words:
                tokens[rng.choice(words)] = rng.choice(["x", "", "Input", "nosuch", "1e40"])
        numbers = [i for i, t in enumerate(tokens) if re.fullmatch(r"-?\d+(\.\d+)?", t)]
    return "".join(tokens)


def mutate_zip(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    """Rewrite the archive with one member mutated: it still opens, its content is corrupt."""
    src = zipfile.ZipFile(io.BytesIO(data))
    members = src.infolist()
    victim = rng.choice(members)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for m in members:
            body = src.read(m)
            if m is victim:
                body = mutate_bytes(body, rng, others)
            dst.writestr(m.filename, body)
    return out.getvalue()


def mutate_json(text: str, rng: random.Random) -> str:
    try:
        doc = json.loads(text)
    except ValueError:
        return mutate_bytes(text.encode(), rng, []).decode(errors="replace")
    paths: list[tuple] = []

    def walk(node, path: tuple) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + (i,))

    walk(doc, ())
    path = rng.choice(paths[1:] or [()])
    value = rng.choice([None, -1, 0, 2**40, "", "../x", [], {}, 1.5, "float32", [2**40], True,
                        "sample9_input_x.bin", [1, 3, 8, 9]])
    if not path:
        return json.dumps(value)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if rng.random() < 0.3 and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return json.dumps(doc)


# loaders -----------------------------------------------------------------------------------
@dataclass
class Loader:
    name: str
    #: (rng, folder) -> the command line for one mutated input, written into the folder
    make: Callable[[random.Random, Path], list[str]]


def _seeds() -> list[bytes]:
    return [p.read_bytes() for p in sorted(CORPUS.glob("tiny.*"))]


def _input_npy(folder: Path) -> str:
    path = folder / "x.npy"
    if not path.exists():
        np.save(path, np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32))
    return str(path)


def _model_file(suffix: str, zipped: bool) -> Callable[[random.Random, Path], list[str]]:
    def make(rng: random.Random, folder: Path) -> list[str]:
        seed = (CORPUS / f"tiny{suffix}").read_bytes()
        data = (mutate_zip(seed, rng, _seeds()) if zipped and rng.random() < 0.7
                else mutate_bytes(seed, rng, _seeds()))
        path = folder / f"m{suffix}"
        path.write_bytes(data)
        args = ["inspect", str(path), "--target", "rpi"]
        return args + (["--input-shape", "x=1,3,8,8"] if suffix != ".onnx" or rng.random() < 0.5
                       else [])
    return make


def _tflite(rng: random.Random, folder: Path) -> list[str]:
    path = folder / "m.tflite"
    path.write_bytes(mutate_bytes((CORPUS / "tiny.tflite").read_bytes(), rng, _seeds()))
    return ["run", str(path), "--input", "x=" + _input_npy(folder)]


def _ncnn(rng: random.Random, folder: Path) -> list[str]:
    param, weights = (CORPUS / "tiny.param").read_text(), (CORPUS / "tiny.bin").read_bytes()
    which = rng.random()
    if which < 0.45:
        param = mutate_text(param, rng)
    elif which < 0.6:
        param = mutate_bytes(param.encode(), rng, _seeds()).decode("latin-1")
    else:
        weights = mutate_bytes(weights, rng, _seeds())
    (folder / "m.param").write_bytes(param.encode("latin-1", errors="replace"))
    (folder / "m.bin").write_bytes(weights)
    return ["run", str(folder / "m.param"), "--input", "x=" + _input_npy(folder)]


def _manifest(rng: random.Random, folder: Path) -> list[str]:
    bundle = folder / "bundle"
    if not bundle.exists():
        shutil.copytree(CORPUS / "bundle", bundle)
    text = (CORPUS / "bundle" / "manifest.json").read_text()
    text = mutate_json(text, rng) if rng.random() < 0.8 else mutate_bytes(
        text.encode(), rng, []).decode("latin-1")
    (bundle / "manifest.json").write_text(text, encoding="latin-1", errors="replace")
    return ["validate", str(bundle)]


LOADERS = {
    "pt2": Loader("pt2", _model_file(".pt2", zipped=True)),
    "torchscript": Loader("torchscript", _model_file(".pt", zipped=True)),
    "onnx": Loader("onnx", _model_file(".onnx", zipped=False)),
    "tflite": Loader("tflite", _tflite),
    "ncnn": Loader("ncnn", _ncnn),
    "manifest": Loader("manifest", _manifest),
}


# the worker --------------------------------------------------------------------------------
WORKER = r'''
import json, os, sys, tempfile, warnings, logging
from edgeexport import cli
for line in sys.stdin:
    argv = json.loads(line)
    sys.stdout.flush(); sys.stderr.flush()
    with tempfile.TemporaryFile() as err, open(os.devnull, "wb") as null:
        saved = os.dup(2), os.dup(1)
        os.dup2(err.fileno(), 2); os.dup2(null.fileno(), 1)
        try:
            with warnings.catch_warnings():
                code = cli.main(argv)
        except BaseException as exc:
            import traceback; traceback.print_exc(); code = 99
        finally:
            logging.disable(logging.NOTSET)
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(saved[0], 2); os.dup2(saved[1], 1); os.close(saved[0]); os.close(saved[1])
        err.seek(0)
        text = err.read().decode(errors="replace")
    print(json.dumps({"code": code, "stderr": text[-4000:]}), file=sys.__stdout__, flush=True)
'''


class Worker:
    def __init__(self) -> None:
        env = {**os.environ, "EDGEEXPORT_NO_QEMU": "1",
               "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, env=env, cwd=REPO)

    def run(self, argv: list[str], timeout: float) -> tuple[str, int | None, str]:
        """('ok' | 'crash' | 'hang', exit code, stderr)."""
        import selectors

        assert self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(json.dumps(argv) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return "crash", self.proc.wait(), ""
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            self.close()
            return "hang", None, ""
        line = self.proc.stdout.readline()
        if not line:
            return "crash", self.proc.wait(), ""
        reply = json.loads(line)
        return "ok", reply["code"], reply["stderr"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@dataclass
class Stats:
    loader: str
    tried: int = 0
    exits: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        seen = ", ".join(f"{k}: {v}" for k, v in sorted(self.exits.items(), key=str))
        return (f"{self.loader}: {self.tried} files tried; exits {seen}; "
                f"{len(self.failures)} failures")


def judge(kind: str, code: int | None, err: str) -> str | None:
    """None when the CLI behaved; else what went wrong."""
    if kind == "hang":
        return "hang"
    if kind == "crash":
        return f"crash (exit {code})"
    if code not in (0, 2, 3):
        return f"exit {code}: {err.strip().splitlines()[-1:] }"
    if "Traceback" in err or "internal error" in err:
        return f"traceback: {err.strip().splitlines()[-1:]}"
    return None


def fuzz(loader: str, seconds: float, seed: int = 0, keep: Path | None = REGRESSIONS) -> Stats:
    """Mutate and run until SECONDS have passed (at least one case); failing inputs are copied
    to KEEP (the regression folder) so they become test cases."""
    rng = random.Random(f"{loader}-{seed}")
    stats = Stats(loader)
    worker = Worker()
    deadline = time.monotonic() + seconds
    try:
        with tempfile.TemporaryDirectory(prefix=f"edgeexport-fuzz-{loader}-") as tmp:
            while stats.tried == 0 or time.monotonic() < deadline:
                case = Path(tmp) / f"case{stats.tried % 2}"
                shutil.rmtree(case, ignore_errors=True)
                case.mkdir()
                argv = LOADERS[loader].make(rng, case)
                kind, code, err = worker.run(argv, CASE_TIMEOUT)
                stats.tried += 1
                stats.exits[kind if kind != "ok" else code] += 1
                problem = judge(kind, code, err)
                if problem:
                    stats.failures.append(problem)
                    if keep is not None:
                        _keep(case, loader, keep)
                if kind != "ok":
                    worker.close()
                    worker = Worker()
    finally:
        worker.close()
    return stats


def _keep(case: Path, loader: str, keep: Path) -> None:
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(case.rglob("*"))
                                     if p.is_file())).hexdigest()[:12]
    dst = keep / f"{loader}-{digest}"
    if not dst.exists():
        shutil.copytree(case, dst)


def replay_argv(case: Path) -> list[str]:
    """The command line of a kept regression input: its folder name says the loader."""
    loader = case.name.split("-")[0]
    suffix = {"pt2": ".pt2", "torchscript": ".pt", "onnx": ".onnx"}.get(loader)
    if suffix:
        argv = ["inspect", str(case / f"m{suffix}"), "--target", "rpi", "--input-shape",
                "x=1,3,8,8"]
    elif loader in ("tflite", "ncnn"):
        art = case / ("m.tflite" if loader == "tflite" else "m.param")
        argv = ["run", str(art), "--input", "x=" + str(case / "x.npy")]
    else:
        argv = ["validate", str(case / "bundle")]
    return argv


def main() -> int:
    loader, seconds = sys.argv[1], float(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    stats = fuzz(loader, seconds, seed)
    print(stats.line())
    for f in stats.failures[:20]:
        print("  " + f)
    return 1 if stats.failures else 0


if __name__ == "__main__":
    sys.exit(main())
