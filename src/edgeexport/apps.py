"""`edgeexport app android|ios BUNDLE -o DIR`: a ready-to-open sample app project, made from the
templates in android/ and ios/, with the bundle inside and its name, labels and preprocessing.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from edgeexport.errors import UsageError
from edgeexport.validate import bundle as bundle_mod
from edgeexport.validate import manifest as manifest_mod

#: where the templates live: the source checkout's android/ and ios/ folders
REPO = Path(__file__).resolve().parents[2]

#: platform -> the targets whose artifact the platform's app runs
PLATFORM_TARGETS = {"android": ("nnapi", "rpi"), "ios": ("coreml", "metal")}

#: the application id the templates carry; each generated app gets its own below it
TEMPLATE_ID = "io.edgeexport.parity"

#: bundle files the app never reads (the IR is for Netron and per-layer parity on the host)
OMITTED = ("ir.onnx", "report.html")

#: what the generated project takes from each template folder (paths relative to it)
TEMPLATE_SKIP = {"build", ".gradle", ".idea", "local.properties", "tools", "README.md",
                 ".build", "xcuserdata", "DerivedData", ".gitignore"}

#: where each platform's project takes the bundle (and app.json, labels.txt) and the vectors;
#: whatever a developer left there in the template folder is not copied
RESOURCES = {"android": "app/src/main/assets",
             "ios": "EdgeExportParity.swiftpm/Resources"}
VECTORS_DIR = {"android": "bundle-core/src/test/vectors",
               "ios": "EdgeExportBundle/Tests/EdgeExportBundleTests/vectors"}


@dataclass
class AppProject:
    platform: str
    out: Path
    name: str
    app_id: str
    bundle_dir: Path
    files: int
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"platform": self.platform, "out": str(self.out), "name": self.name,
                "app_id": self.app_id, "bundle": str(self.bundle_dir), "files": self.files,
                "notes": self.notes}


def preprocessing_from_spec(text: str, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """`--preprocess` text (e.g. 'imagenet') for a bundle made without it, in the contract's
    form: what `edgeexport convert --preprocess` writes into manifest.json for these inputs."""
    inputs = [manifest_mod.Boundary.from_json(t) for t in manifest["inputs"]]
    return manifest_mod.preprocessing(text, inputs)


def _display_name(manifest: dict[str, Any]) -> str:
    model = (manifest.get("source") or {}).get("model") or "model"
    stem = re.split(r"[:/\\]", model)[-1]
    stem = re.sub(r"\.(pt2?|onnx|pkl|pth)$", "", stem)
    words = [w for w in re.split(r"[_\-\s.]+", stem) if w]
    return (" ".join(w[:1].upper() + w[1:] for w in words) or "Model")[:40]


def _app_id(name: str) -> str:
    part = re.sub(r"[^a-z0-9]", "", name.lower()) or "model"
    if part[0].isdigit():
        part = "m" + part
    return f"{TEMPLATE_ID}.{part[:30]}"


def _replacements(platform: str, name: str, app_id: str) -> dict[str, str]:
    """The exact template lines that carry the app's name and id (Kotlin packages stay)."""
    if platform == "android":
        xml = escape(name).replace("'", "\\'").replace('"', '\\"')
        return {f'applicationId = "{TEMPLATE_ID}"': f'applicationId = "{app_id}"',
                '<string name="app_name">EdgeExport Parity</string>':
                    f'<string name="app_name">{xml}</string>'}
    swift = name.replace("\\", "\\\\").replace('"', '\\"')
    return {f'bundleIdentifier: "{TEMPLATE_ID}"': f'bundleIdentifier: "{app_id}"',
            'name: "EdgeExport Parity",': f'name: "{swift}",'}


def _check_target(platform: str, bundle: Path, manifest: dict[str, Any]) -> None:
    target = manifest.get("target")
    fits = PLATFORM_TARGETS[platform]
    if target not in fits:
        other = next((p for p, t in PLATFORM_TARGETS.items() if target in t), None)
        hint = (f"use `edgeexport app {other}`" if other else
                f"convert with --target {' or '.join(fits)}")
        raise UsageError(f"{bundle}: the bundle's target is '{target}', which a {platform} app "
                         f"cannot run ({platform} takes {', '.join(fits)}); {hint}")
    artifact = bundle / manifest.get("artifact", "")
    if not artifact.exists():
        raise UsageError(f"{artifact}: the bundle's artifact is missing; copy the whole folder "
                         "that edgeexport convert wrote")


def _check_version(bundle: Path, manifest: dict[str, Any]) -> None:
    version = manifest.get("schema_version")
    if version != manifest_mod.SCHEMA_VERSION:
        raise UsageError(f"{bundle}: manifest schema_version {version!r}, the apps read "
                         f"{manifest_mod.SCHEMA_VERSION}; re-run edgeexport convert")


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out}: exists and is not an empty folder; choose a new folder for "
                         "the app (nothing there is overwritten)")
    bundle_mod.check_output_dir(out)


def _labels(manifest: dict[str, Any], labels: str | None
            ) -> tuple[list[str], dict[str, Any]] | None:
    """--labels for a bundle made without them: the names and the contract's `labels` entry."""
    if not labels:
        return None
    names = manifest_mod.read_labels(labels)
    sizes = {o["name"]: (o["pytorch"]["shape"] or [None])[-1] for o in manifest["outputs"]}
    return names, manifest_mod.labels_entry(labels, names, sizes)


def _copy_template(src: Path, dst: Path, replace: dict[str, str], skip: tuple[str, ...]) -> int:
    if not src.is_dir():
        raise UsageError(f"{src}: app templates not found; `edgeexport app` runs from a source "
                         "checkout of edgeexport (the android/ and ios/ folders)")
    count, used = 0, set()
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if (any(part in TEMPLATE_SKIP for part in rel.parts) or path.is_dir()
                or any(rel.as_posix().startswith(p + "/") for p in skip)):
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        data = path.read_bytes()
        if path.suffix in (".kts", ".kt", ".xml", ".swift", ".properties", ".json", ".plist"):
            text = data.decode()
            for old, new in replace.items():
                if old in text:
                    used.add(old)
                    text = text.replace(old, new)
            data = text.encode()
        target.write_bytes(data)
        target.chmod(path.stat().st_mode & 0o777)
        count += 1
    if used != set(replace):  # a template edit dropped the line that carries the name or id
        raise RuntimeError(f"{src}: template lines not found: {sorted(set(replace) - used)}")
    return count


def _copy_bundle(bundle: Path, dst: Path) -> int:
    count = 0
    for path in sorted(bundle.rglob("*")):
        rel = path.relative_to(bundle)
        if path.is_dir() or rel.as_posix() in OMITTED:
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dst / rel)
        count += 1
    return count


def make_app(platform: str, bundle: str | Path, out: str | Path, *, name: str | None = None,
             preprocess: str | None = None, labels: str | None = None) -> AppProject:
    """Write the sample app project for `platform` with `bundle` inside; see module doc."""
    if platform not in PLATFORM_TARGETS:
        raise UsageError(f"platform '{platform}': choose android or ios")
    bundle, out = Path(bundle), Path(out)
    if not bundle.is_dir():
        raise UsageError(f"{bundle}: not a bundle folder; pass the -o folder of edgeexport convert")
    manifest = bundle_mod.read_manifest(bundle)
    _check_version(bundle, manifest)
    _check_target(platform, bundle, manifest)
    _check_out(out)
    notes = []
    # the manifest's own preprocessing and labels win; --preprocess/--labels only fill a gap,
    # written in the manifest's form to app.json (the app reads either the same way)
    pre = None
    if preprocess and manifest.get("preprocessing"):
        notes.append("--preprocess ignored: the manifest's preprocessing is used")
    elif preprocess:
        pre = preprocessing_from_spec(preprocess, manifest)
    image_inputs = [i for i in manifest["inputs"] if len(i.get("shape") or []) == 4]
    if not (pre or manifest.get("preprocessing")) and len(image_inputs) == 1 \
            and len(manifest["inputs"]) == 1:
        notes.append("no preprocessing in the manifest and no --preprocess: the app runs parity "
                     "and latency; photo classification needs e.g. --preprocess imagenet")
    label_list = None
    if labels and manifest.get("labels"):
        notes.append("--labels ignored: the manifest's labels are used")
    else:
        label_list = _labels(manifest, labels)
    name = name or _display_name(manifest)
    app_id = _app_id(name)
    config = {
        "name": name,
        "bundle": "bundle",
        "preprocessing": pre,
        # path relative to app.json's folder (the manifest's own is relative to the bundle)
        "labels": label_list[1] if label_list is not None else None,
        "omitted": [p for p in OMITTED if p in (manifest.get("files") or {})],
        "latency_runs": 50,
    }
    with bundle_mod.staging(out) as stage:
        res = stage / RESOURCES[platform]
        vec = stage / VECTORS_DIR[platform]
        files = _copy_template(REPO / platform, stage, _replacements(platform, name, app_id),
                               skip=(RESOURCES[platform] + "/bundle", VECTORS_DIR[platform]))
        # the core's tests read the shared vectors; a generated project carries a copy
        vec.mkdir(parents=True)
        for f in sorted((REPO / "tests" / "vectors").glob("*.json")):
            shutil.copy2(f, vec / f.name)
            files += 1
        files += _copy_bundle(bundle, res / "bundle")
        bundle_mod.write_json(res / "app.json", config)
        files += 1
        if label_list is not None:
            (res / manifest_mod.LABELS_FILE).write_text("\n".join(label_list[0]) + "\n")
            files += 1
    return AppProject(platform, out, name, app_id, out / res.relative_to(stage) / "bundle",
                      files, notes)
