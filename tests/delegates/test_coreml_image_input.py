"""--coreml-image-input: parity is measured on 8-bit pixels with PyTorch given the tensor they
imply (pixels * scale + bias), and manifest.json describes the image the artifact takes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from edgeexport.delegates.base import ImageInput
from edgeexport.exporter import parse_input_spec
from edgeexport.pipeline import ConvertOptions, convert
from edgeexport.validate import TOLERANCES, check_runtime
from edgeexport.zoo import resnet_small


def _convert(out: Path, samples: Path | None = None, **image: object) -> tuple[dict, dict]:
    ns = argparse.Namespace(precision="fp32", coreml_image_input="x", **image)
    opts = ConvertOptions(target="coreml", input_specs=[parse_input_spec("x=1,3,32,32")],
                          output_names=["logits"], target_options=ns, timing_runs=0,
                          samples=str(samples) if samples else None)
    outcome = convert("edgeexport.zoo:resnet_small", out, opts)
    return outcome.report, outcome.manifest


def _parity_files(out: Path, manifest: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    arrays = {}
    for e in manifest["parity"]:
        arr = np.fromfile(out / e["path"], np.dtype(e["dtype"]).newbyteorder("<"))
        arrays[(e["sample"], e["kind"])] = arr.reshape(e["shape"])
    n = len(manifest["parity"]) // 2
    return [(arrays[(i, "input")], arrays[(i, "expected")]) for i in range(n)]


def test_image_input_parity_and_manifest(tmp_path: Path) -> None:
    """BGR, per-channel bias: the interpreter runs the program's own scale/bias ops on the
    pixels; fed the float tensor PyTorch sees (the old parity path), it is far off."""
    scale, bias = 1 / 127.5, (-1.0, -0.5, 0.25)
    report, manifest = _convert(tmp_path / "out", coreml_image_scale=scale,
                                coreml_image_bias="-1,-0.5,0.25", coreml_color_layout="BGR")
    mil = {p["runtime"]: p for p in report["parity"]}["mil-interpreter"]
    assert report["verdict"] == "passed" and mil["max_rel_err"] <= 1e-5, mil
    assert "8-bit pixels" in report["parity_inputs"]
    x = manifest["inputs"][0]
    assert (x["name"], x["dtype"], x["layout"], x["shape"]) == ("x", "uint8", "NCHW",
                                                                [1, 3, 32, 32])
    cm = x["coreml"]
    assert (cm["type"], cm["height"], cm["width"], cm["color_layout"], cm["scale"],
            cm["bias"]) == ("imageType", 32, 32, "BGR", scale, list(bias))
    assert x["pytorch"]["dtype"] == "float32" and x["pytorch"]["layout"] == "NCHW"
    [(pixels, expected)] = _parity_files(tmp_path / "out", manifest)
    assert pixels.dtype == np.uint8 and pixels.max() > 200 and pixels.min() < 50
    # PyTorch on the tensor the pixels imply, in the planes' own (BGR) channel order
    implied = pixels.astype(np.float32) * np.float32(scale) + \
        np.array(bias, np.float32).reshape(1, 3, 1, 1)
    with torch.no_grad():
        want = resnet_small()(torch.from_numpy(implied)).numpy()
    np.testing.assert_allclose(expected, want, rtol=1e-5, atol=1e-6)
    old = check_runtime("mil-interpreter", tmp_path / "out" / manifest["artifact"],
                        [{"x": implied}], [{"logits": want}], TOLERANCES["fp32"], timing_runs=0)
    assert old.executed and not old.passed
    # validate --per-layer: the IR (float input) gets the tensor the pixels imply
    from edgeexport.bundle import per_layer_errors as per_layer

    layers = per_layer(tmp_path / "out", manifest, {"x": pixels})["mil-interpreter"]
    assert len(layers["layers"]) > 10 and layers["first_over_tolerance"] is None


def test_samples_become_the_pixels_they_came_from(tmp_path: Path) -> None:
    image = ImageInput("x", 1 / 255, (-0.5, -0.5, -0.5))
    pixels = np.random.default_rng(2).integers(0, 256, (2, 1, 3, 32, 32)).astype(np.uint8)
    np.save(tmp_path / "s.npy", np.stack([image.preprocess(p) for p in pixels]))
    report, manifest = _convert(tmp_path / "out", tmp_path / "s.npy",
                                coreml_image_scale=1 / 255, coreml_image_bias="-0.5")
    assert report["verdict"] == "passed"
    fed = [p for p, _ in _parity_files(tmp_path / "out", manifest)]
    assert len(fed) == 3  # the random sample (as random pixels), then the two samples
    np.testing.assert_array_equal(fed[1:], pixels)


def test_image_input_round_trip_and_clipping() -> None:
    image = ImageInput("x", 0.02, (-1.0, 0.0, 1.0), "RGB")
    pixels = np.arange(256, dtype=np.uint8)[None, None, None, :].repeat(3, 1)
    np.testing.assert_array_equal(image.pixels_for(image.preprocess(pixels)), pixels)
    far = np.full((1, 3, 1, 2), [[[-9.0, 99.0]]], np.float32)
    assert image.pixels_for(far).tolist() == [[[[0, 255]]] * 3]


def test_coreml_predict_gets_rgb_images_of_the_planes() -> None:
    from edgeexport.runtimes.coreml import image_from_planes

    planes = np.random.default_rng(4).integers(0, 256, (1, 3, 4, 5)).astype(np.uint8)
    rgb = np.asarray(image_from_planes(planes, "RGB"))
    np.testing.assert_array_equal(rgb, planes[0].transpose(1, 2, 0))
    bgr = np.asarray(image_from_planes(planes, "BGR"))  # planes B, G, R -> pixels R, G, B
    np.testing.assert_array_equal(bgr, planes[0, ::-1].transpose(1, 2, 0))
