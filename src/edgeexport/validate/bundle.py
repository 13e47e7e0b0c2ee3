"""The bundle that `convert` writes (see DESIGN.md): artifact, manifest.json, report.json,
report.html and parity/ raw little-endian tensors. Written in a staging folder, then renamed.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgeexport.errors import UsageError, first_line
from edgeexport.ir import sha256_file
from edgeexport.paths import resolve_inside

TOOL_PACKAGES = ("edgeexport", "torch", "onnx", "onnx-ir", "onnxscript", "onnxruntime",
                 "ai-edge-litert", "coremltools", "ncnn", "numpy")


def tool_versions() -> dict[str, str]:
    versions = {}
    for pkg in TOOL_PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[pkg] = importlib.metadata.version(pkg)
    return versions


def check_output_dir(out: Path) -> None:
    """Fail early, before any work, when OUT cannot be written (probed by writing, since
    permission bits say nothing for root or on read-only mounts)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a directory; choose another output path")
    parent = out.resolve().parent
    if not parent.is_dir():
        raise UsageError(f"{out}: parent directory {parent} does not exist; create it first")
    probe_dir = out if out.exists() else parent
    try:
        fd, probe = tempfile.mkstemp(prefix=".edgeexport-probe-", dir=probe_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{out}: output directory {probe_dir} is not writable "
                         f"({exc.strerror}); choose another output path") from None


@contextlib.contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A fresh folder next to OUT; on success it replaces OUT, on failure it disappears."""
    out = Path(out)
    check_output_dir(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.resolve().parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a bundle is meant to be shared
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.resolve().parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def write_parity_tensors(folder: Path, samples: list[dict[str, np.ndarray]],
                         expected: list[dict[str, np.ndarray]]) -> list[dict[str, Any]]:
    """Raw little-endian .bin files (what native apps read) listed for the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (feeds, outs) in enumerate(zip(samples, expected)):
        for kind, tensors in (("input", feeds), ("expected", outs)):
            for name, arr in tensors.items():
                arr = np.asarray(arr, order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
                le = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
                fname = f"sample{i}_{kind}_{_safe(name)}.bin"
                (folder / fname).write_bytes(le.tobytes())
                entries.append({"sample": i, "kind": kind, "tensor": name,
                                "path": f"parity/{fname}", "shape": list(arr.shape),
                                "dtype": arr.dtype.name})
    return entries


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def file_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file below root except the manifest itself, by relative path."""
    hashes = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            hashes[p.relative_to(root).as_posix()] = sha256_file(p)
    return hashes


def read_manifest(out: Path) -> dict[str, Any]:
    """The manifest of a bundle, once the bundle has been checked against it (`verify`);
    validate, bench and anything else that executes a bundle reads it through here."""
    out = Path(out)
    path = out / "manifest.json"
    if not path.is_file():
        raise UsageError(f"{out}: not a bundle (no manifest.json); pass a folder written by "
                         "`edgeexport convert`")
    resolve_inside(out, "manifest.json", path, "manifest")  # a symlink out of the bundle
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid JSON ({first_line(exc)}); convert the model "
                         "again") from None
    if not (isinstance(manifest, dict) and isinstance(manifest.get("files"), dict)
            and isinstance(manifest.get("artifact"), str)
            and isinstance(manifest.get("parity", []), list)):
        raise UsageError(f"{path}: not a bundle manifest (no artifact or files table); "
                         "convert the model again")
    verify(out, manifest)
    return manifest


def verify(out: Path, manifest: dict[str, Any]) -> None:
    """Refuse (UsageError, naming the file) a bundle that differs from what its manifest
    records, before anything in it runs: a path that leaves the folder (absolute, `..`, a
    symlink), a listed file missing or with another sha256, a file that is not listed, an ONNX
    artifact whose external data or an .mlpackage whose item index points outside the folder."""
    from edgeexport import runtimes
    from edgeexport.ir import check_external_data
    from edgeexport.runtimes.mil import check_package_items

    out = Path(out)
    source = out / "manifest.json"
    listed = manifest["files"]
    for rel, digest in listed.items():
        full = resolve_inside(out, rel, source, "listed file")
        if not full.is_file():
            raise UsageError(f"{out / rel}: listed in {source} but missing; the bundle is "
                             "incomplete, convert the model again")
        if sha256_file(full) != digest:
            raise UsageError(f"{out / rel}: sha256 differs from the one {source} records; the "
                             "file was changed after convert, so the bundle is refused "
                             "(convert the model again)")
    for folder, dirs, files in os.walk(out):
        for name in dirs + files:
            rel = (Path(folder) / name).relative_to(out).as_posix()
            resolve_inside(out, rel, source, "bundle entry")
            if name in files and rel != "manifest.json" and rel not in listed:
                raise UsageError(f"{out / rel}: not listed in {source} (added after convert?); "
                                 "remove it or convert the model again")
    named = [("artifact", manifest["artifact"]), ("ir", manifest.get("ir", manifest["artifact"]))]
    named += [("parity", e.get("path") if isinstance(e, dict) else None)
              for e in manifest.get("parity", [])]
    for what, rel in named:
        full = resolve_inside(out, rel, source, what)
        if not full.exists():
            raise UsageError(f"{source}: {what} {rel!r} does not exist in the bundle; convert "
                             "the model again")
        try:
            fmt = runtimes.artifact_format(full) if what != "parity" else None
        except ValueError:
            raise UsageError(f"{source}: {what} {rel!r} is a folder but not an .mlpackage; "
                             "convert the model again") from None
        if fmt == "onnx":
            check_external_data(full)
        elif fmt == "mlpackage":
            check_package_items(full)


def read_report(out: Path) -> dict[str, Any]:
    """The bundle's report.json, or {} when it has none (a bundle copied without it)."""
    path = Path(out) / "report.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc}); convert the model again") from None


def load_parity_tensors(out: Path, manifest: dict[str, Any]
                        ) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
    samples: dict[int, dict[str, np.ndarray]] = {}
    expected: dict[int, dict[str, np.ndarray]] = {}
    for e in manifest.get("parity", []):
        path = resolve_inside(out, e["path"], Path(out) / "manifest.json", "parity")
        try:
            dtype = np.dtype(e["dtype"])
            arr = np.frombuffer(path.read_bytes(), dtype=dtype.newbyteorder("<"))
            arr = arr.reshape(e["shape"]).astype(dtype)
        except (TypeError, ValueError, KeyError) as exc:
            raise UsageError(f"{path}: does not hold the {e.get('dtype')} tensor of shape "
                             f"{e.get('shape')} that the manifest lists ({first_line(exc)}); "
                             "convert the model again") from None
        (samples if e["kind"] == "input" else expected).setdefault(e["sample"], {})[
            e["tensor"]] = arr
    n = max(list(samples) + [-1]) + 1
    return [samples[i] for i in range(n)], [expected[i] for i in range(n)]
