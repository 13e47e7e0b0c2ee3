"""Quantization benchmark: pretrained MobileNetV2, int8 vs fp32 on the real photos shipped by
scikit-image/scikit-learn/matplotlib, ours (each calibration method, and with an accuracy budget)
side by side with onnxruntime's default quantize_static; sizes of int8/fp16/dynamic-int8.

Calibration: 100 random crops/flips of the photos (never the evaluated center crops). Then a
small CNN trained on Fashion-MNIST (Debian dataset-fashion-mnist): fp32 vs int8 accuracy on 10k.
Run: .venv/bin/python benchmarks/bench_quantize.py [--fast]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import types

import numpy as np


def run_onnx(data: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    s = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


def row(label: str, ref: np.ndarray, out: np.ndarray, size: int, fp32: int, secs: float) -> str:
    cos = [float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))) for a, b in zip(ref, out)]
    agree = int((ref.argmax(1) == out.argmax(1)).sum())
    return (f"{label:<42} {agree}/{len(ref):<5} {min(cos):>10.5f} {np.mean(cos):>10.5f} "
            f"{100 * size / fp32:>7.2f}% {secs:>8.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fast", action="store_true", help="skip entropy and the budget search")
    ap.add_argument("--fashion-only", action="store_true")
    args = ap.parse_args()
    if args.fashion_only:
        return
    from edgeexport import ir as eir
    from edgeexport import passes, quantize
    from edgeexport.exporter import export, parse_input_spec
    from edgeexport.zoo.photos import calibration_crops, photo_batch

    result = export("edgeexport.zoo:mobilenet_v2_pretrained",
                    input_specs=[parse_input_spec("1,3,224,224")])
    passes.optimize(result.model)
    fp32_bytes = eir.to_bytes(result.model)
    names, photos = photo_batch()
    ref = run_onnx(fp32_bytes, photos)
    calib = calibration_crops(100)
    tmp = tempfile.mkdtemp()
    calib_path = os.path.join(tmp, "calib.npy")
    np.save(calib_path, calib)
    print(f"MobileNetV2 (ImageNet weights), {len(names)} photos: {', '.join(names)}")
    print(f"fp32 .onnx: {len(fp32_bytes):,} bytes; calibration: 100 crops of the photos\n")
    print(f"{'model':<42} {'top-1':<7} {'min cos':>10} {'mean cos':>10} {'size':>8} "
          f"{'time s':>8}")
    print(row("fp32 (onnxruntime)", ref, ref, len(fp32_bytes), len(fp32_bytes), 0))

    # onnxruntime's default static quantization, same calibration data
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    in_name = result.model.graph.inputs[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{in_name: c[None]} for c in calib])

        def get_next(self):
            return next(self.it, None)

    src, dst = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "ort_int8.onnx")
    with open(src, "wb") as f:
        f.write(fp32_bytes)
    t = time.perf_counter()
    quantize_static(src, dst, Reader())
    secs = time.perf_counter() - t
    with open(dst, "rb") as f:
        data = f.read()
    print(row("onnxruntime quantize_static", ref, run_onnx(data, photos), len(data),
              len(fp32_bytes), secs))

    runs = [(m, None, True) for m in ("minmax", "percentile", "mse")]
    runs.append(("mse", None, False))  # what clip-aware channel scaling adds
    if not args.fast:
        runs += [("entropy", None, True), ("mse", "cosine=0.995", True), ("mse", "top1=1", True)]
    for method, budget, scaling in runs:
        r = types.SimpleNamespace(model=quantize.clone(result.model), inputs=result.inputs)
        t = time.perf_counter()
        info = quantize.apply(r, "int8", calib_path, calibration_method=method,
                              max_error=budget, quiet=True, channel_scaling=scaling)
        secs = time.perf_counter() - t
        data = eir.to_bytes(r.model)
        label = f"edgeexport int8 {method}" + (f" --max-error {budget}" if budget else "") \
            + ("" if scaling else " (no channel scaling)")
        print(row(label, ref, run_onnx(data, photos), len(data), len(fp32_bytes), secs)
              + f"  (calibration {info['calibration']['seconds']:.1f}s"
              + (f", noise weight {info['calibration']['noise_weight']}"
                 if "noise_weight" in info["calibration"] else "")
              + (f", float: {len(info['layers_float'])} layers" if budget else "") + ")")
    for scheme in ("fp16", "dynamic-int8"):
        r = types.SimpleNamespace(model=quantize.clone(result.model), inputs=result.inputs)
        t = time.perf_counter()
        quantize.apply(r, scheme, None)
        data = eir.to_bytes(r.model)
        print(row(f"edgeexport {scheme}", ref, run_onnx(data, photos), len(data),
                  len(fp32_bytes), time.perf_counter() - t))


def fashion_mnist() -> None:
    """Train the test suite's small CNN (1 epoch on 20k images), int8 it, score on 10k."""
    import torch

    from edgeexport import passes, quantize
    from edgeexport.exporter import export, parse_input_spec
    from edgeexport.zoo import fashion_mnist as fmnist

    if not fmnist.available():
        print("\nFashion-MNIST: skipped (apt-get install dataset-fashion-mnist)")
        return
    xtr, ytr, xte, yte = fmnist.load()
    norm = fmnist.normalize
    t = time.perf_counter()
    net = fmnist.train_small_cnn(xtr, ytr)
    train_s = time.perf_counter() - t
    tmp = tempfile.mkdtemp()
    torch.jit.trace(net, torch.zeros(1, 1, 28, 28)).save(os.path.join(tmp, "f.pt"))
    result = export(os.path.join(tmp, "f.pt"), input_specs=[parse_input_spec("1,1,28,28")])
    passes.optimize(result.model)
    np.save(os.path.join(tmp, "c.npy"), norm(xtr[:100]))
    from edgeexport import ir as eir

    print(f"\nFashion-MNIST small CNN (trained {train_s:.1f} s), accuracy on the 10k test images")
    fp32 = eir.to_bytes(result.model)
    acc_f = float(np.mean(run_onnx(fp32, norm(xte)).argmax(1) == yte))
    print(f"  fp32 {100 * acc_f:.2f}%")
    for method in ("minmax", "mse"):
        r = types.SimpleNamespace(model=quantize.clone(result.model), inputs=result.inputs)
        quantize.apply(r, "int8", os.path.join(tmp, "c.npy"), calibration_method=method,
                       quiet=True)
        acc_q = float(np.mean(run_onnx(eir.to_bytes(r.model), norm(xte)).argmax(1) == yte))
        print(f"  int8 {method:<7} {100 * acc_q:.2f}% ({100 * (acc_q - acc_f):+.2f} points)")


if __name__ == "__main__":
    main()
    fashion_mnist()
