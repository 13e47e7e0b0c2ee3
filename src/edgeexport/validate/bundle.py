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


def check_output_dir(out: Path, force: bool = False) -> Path:
    """Fail early, before any work, when OUT may not or cannot be written; returns the folder to
    write (a symlinked OUT is followed, so the link keeps pointing at the new bundle).

    edgeexport never deletes what it did not write: a non-empty OUT must be a previous bundle
    (its manifest.json written by edgeexport, no file beside the ones it lists), and replacing
    it takes --force. Missing parents are created when the bundle is written (`staging`)."""
    out = Path(out)
    if out.is_symlink():
        out = out.resolve()
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a directory; choose another output path")
    if out.is_dir() and any(out.iterdir()):
        foreign = foreign_files(out)
        if foreign is not None:
            raise UsageError(f"{out}: the folder holds files edgeexport did not write "
                             f"({foreign}); it is never replaced: choose a new or empty folder")
        if not force:
            raise UsageError(f"{out}: holds a previous bundle; pass --force to replace it, or "
                             "choose a new folder")
    check_writable(out)
    return out


def check_writable(path: Path) -> None:
    """PATH (a file or folder) can be created: its nearest existing ancestor is a writable
    folder (probed by writing, since permission bits say nothing for root or read-only mounts)."""
    path = Path(path)
    probe_dir = path if path.is_dir() else path.parent
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise UsageError(f"{path}: {probe_dir} is a file, not a folder; choose another output "
                         "path")
    try:
        fd, probe = tempfile.mkstemp(prefix=".edgeexport-probe-", dir=probe_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{path}: output directory {probe_dir} is not writable "
                         f"({exc.strerror}); choose another output path") from None


#: files a desktop adds to any folder it shows (Finder, Explorer): never read by edgeexport or the
#: runners, so a bundle that was opened on a Mac is still the bundle its manifest lists
_OS_METADATA = {".DS_Store", "Thumbs.db", "desktop.ini"}


def os_metadata(name: str) -> bool:
    """A desktop's own file: .DS_Store, Thumbs.db, desktop.ini, or an AppleDouble ._NAME."""
    return name in _OS_METADATA or name.startswith("._")


def foreign_files(folder: Path) -> str | None:
    """None when FOLDER is a bundle edgeexport wrote (manifest.json of ours, and every other file
    listed in it); else the first file that makes it someone else's."""
    manifest = folder / "manifest.json"
    try:
        data = json.loads(manifest.read_text())
        listed = set(data["files"]) | {"manifest.json"}
        ours = data["format_version"] == 1 and "edgeexport" in data["tool_versions"]
    except (OSError, ValueError, KeyError, TypeError):
        ours = False
    if not ours:
        first = min((p.name for p in folder.iterdir()), default="")
        return f"{first}, and no manifest.json written by edgeexport"
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if (p.is_symlink() or p.is_file()) and rel not in listed and not (
                p.is_file() and os_metadata(p.name)):
            return rel
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(parent: Path, name: str) -> None:
    """Staging and old-bundle folders left by a process that was killed (SIGKILL, power loss):
    their names carry the writer's pid, and a dead pid's folders are ours to remove."""
    for kind in ("staging", "old"):
        for p in parent.glob(f".{name}.{kind}-*"):
            pid = p.name[len(f".{name}.{kind}-"):].split("-")[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def staging(out: Path, force: bool = False) -> Iterator[Path]:
    """A fresh folder next to OUT; on success it replaces OUT, on failure (or Ctrl-C, SIGTERM)
    it disappears, and so do the parent folders it had to create."""
    out = check_output_dir(out, force)
    parent = out.parent
    made = []
    for p in [parent, *parent.parents]:
        if p.exists():
            break
        made.append(p)
    parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(parent, out.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-{os.getpid()}-", dir=parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a bundle is meant to be shared
    try:
        yield tmp
        # checked again: the folder may have changed while the bundle was being made
        check_output_dir(out, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in made:  # innermost first; a folder someone else filled meanwhile stays
            with contextlib.suppress(OSError):
                p.rmdir()
        raise
    with _signals_held():  # the two renames happen together or not at all
        old = None
        if out.exists():
            old = parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
        os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C / SIGTERM wait until the block is done (delivered right after it)."""
    import signal

    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, OSError, ValueError):  # no sigmask here: nothing to hold
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


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
    check_manifest(path, manifest)
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
            if (name in files and rel != "manifest.json" and rel not in listed
                    and not os_metadata(name)):
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


#: manifest keys `validate` and `bench` read, and their JSON types
_MANIFEST_KEYS = {"target": str, "artifact": str, "tolerances": dict, "parity": list}


def check_manifest(path: Path, manifest: Any) -> None:
    """The manifest has what validate/bench read, and the files it names are there with the
    sizes it declares; UsageError naming the file otherwise (never a traceback)."""
    from edgeexport import delegates

    fix = "convert the model again to rewrite the bundle"
    if not isinstance(manifest, dict):
        raise UsageError(f"{path}: holds a JSON {type(manifest).__name__}, not a bundle "
                         f"manifest; {fix}")
    for key, kind in _MANIFEST_KEYS.items():
        if not isinstance(manifest.get(key), kind):
            raise UsageError(f"{path}: '{key}' is missing or not a JSON {kind.__name__}; {fix}")
    if manifest["target"] not in delegates.target_names():
        raise UsageError(f"{path}: unknown target '{manifest['target']}' (known: "
                         f"{', '.join(delegates.target_names())}); {fix}")
    _check_tolerances(path, manifest["tolerances"], fix)
    root = path.parent
    artifact = root / manifest["artifact"]
    if not artifact.exists():
        raise UsageError(f"{artifact}: the bundle's artifact is missing; {fix}")
    seen: dict[str, set[int]] = {"input": set(), "expected": set()}
    for e in manifest["parity"]:
        if not _parity_entry_ok(e):
            raise UsageError(f"{path}: parity entry {str(e)[:80]} is malformed; {fix}")
        seen[e["kind"]].add(e["sample"])
    if seen["input"] != set(range(len(seen["input"]))) or seen["expected"] != seen["input"]:
        raise UsageError(f"{path}: the parity samples are not numbered 0..N-1 with inputs and "
                         f"expected outputs for each; {fix}")
    for e in manifest["parity"]:
        f = root / e["path"]
        want = int(np.prod(e["shape"], dtype=np.int64)) * np.dtype(e["dtype"]).itemsize
        if not f.is_file():
            raise UsageError(f"{f}: the parity tensor is missing; {fix}")
        if f.stat().st_size != want:
            raise UsageError(f"{f}: holds {f.stat().st_size} bytes, the manifest declares "
                             f"{e['shape']} {e['dtype']} ({want} bytes); {fix}")


def _parity_entry_ok(e: Any) -> bool:
    """One `parity` entry of the manifest as write_parity_tensors writes it."""
    try:
        return (isinstance(e, dict) and e["kind"] in ("input", "expected")
                and type(e["sample"]) is int and e["sample"] >= 0
                and isinstance(e["tensor"], str) and isinstance(e["path"], str)
                and isinstance(e["shape"], list)
                and all(type(d) is int and 0 <= d < 2**31 for d in e["shape"])
                and isinstance(e["dtype"], str) and np.dtype(e["dtype"]).kind in "biuf")
    except (KeyError, TypeError):
        return False


def _check_tolerances(path: Path, tol: dict[str, Any], fix: str) -> None:
    import dataclasses

    from edgeexport.metrics import Tolerance

    names = {f.name for f in dataclasses.fields(Tolerance)}
    for key, value in tol.items():
        ok = isinstance(value, str) if key in ("name", "bound") else (
            value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)))
        if key not in names or not ok:
            raise UsageError(f"{path}: tolerance {key}={str(value)[:40]} is not one edgeexport "
                             f"writes ({', '.join(sorted(names))}); {fix}")
    if "name" not in tol:
        raise UsageError(f"{path}: the tolerances have no name; {fix}")


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
