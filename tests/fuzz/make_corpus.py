"""Rebuild the fuzz seed corpus (tests/fuzz/corpus/): one tiny model in every format a loader
reads. Run once and commit the files: `python -m tests.fuzz.make_corpus`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

CORPUS = Path(__file__).resolve().parent / "corpus"


class Tiny(torch.nn.Module):
    """Conv -> ReLU -> mean -> Linear: a few ops in each format, a few KB."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def tiny() -> Tiny:
    torch.manual_seed(0)
    return Tiny().eval()


def main() -> int:
    CORPUS.mkdir(exist_ok=True)
    model, x = tiny(), torch.randn(1, 3, 8, 8)
    torch.jit.save(torch.jit.trace(model, x), CORPUS / "tiny.pt")
    torch.export.save(torch.export.export(model, (x,)), CORPUS / "tiny.pt2")
    with tempfile.TemporaryDirectory() as tmp:
        for target in ("onnx", "rpi", "vulkan"):
            out = Path(tmp) / target
            subprocess.run([sys.executable, "-m", "edgeexport.cli", "convert",
                            "tests.fuzz.make_corpus:tiny", "--input-shape", "x=1,3,8,8",
                            "--target", target, "-o", str(out)], check=True)
            for f in out.iterdir():
                if f.suffix in (".onnx", ".tflite", ".param", ".bin") and f.name != "ir.onnx":
                    shutil.copyfile(f, CORPUS / ("tiny" + f.suffix))
            if target == "onnx":  # a whole bundle: validate and the manifest fuzz read it
                shutil.rmtree(CORPUS / "bundle", ignore_errors=True)
                shutil.copytree(out, CORPUS / "bundle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
