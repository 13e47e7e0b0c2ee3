"""`edgeexport quantize` (edgeexport.quantize.cli): writes the quantized .onnx and its report;
bad calibration data is one line on stderr and exit 2."""

from __future__ import annotations

import json

import numpy as np

from edgeexport import ir as eir
from edgeexport.quantize.cli import main


def test_quantize_command(cnn, tmp_path, capsys):
    src = tmp_path / "m.onnx"
    eir.save(cnn.model, src)
    np.save(tmp_path / "c.npy", np.random.default_rng(0).standard_normal(
        (8, 3, 64, 64)).astype(np.float32))
    out = tmp_path / "q.onnx"
    code = main([str(src), "--scheme", "int8", "--calibration-data", str(tmp_path / "c.npy"),
                 "--calibration-method", "minmax", "-o", str(out), "--report",
                 str(tmp_path / "r.json")])
    assert code == 0 and out.exists()
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["scheme"] == "int8" and report["calibration"]["samples"] == 8
    assert "QuantizeLinear" in eir.op_types(eir.load(out))
    # same input and options: byte-identical file
    again = tmp_path / "q2.onnx"
    main([str(src), "--scheme", "int8", "--calibration-data", str(tmp_path / "c.npy"),
          "--calibration-method", "minmax", "-o", str(again)])
    assert out.read_bytes() == again.read_bytes()
    capsys.readouterr()
    np.save(tmp_path / "bad.npy", np.zeros((8, 3, 32, 32), np.float32))
    code = main([str(src), "--scheme", "int8", "--calibration-data", str(tmp_path / "bad.npy"),
                 "-o", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and "does not fit input" in err and len(err.strip().splitlines()) == 1
