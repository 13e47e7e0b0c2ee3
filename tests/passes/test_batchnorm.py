import numpy as np
import onnx_ir as ir
from ._helpers import check_pass, text_model

from edgeexport import ir as eir
from edgeexport.passes import FoldBatchNormPass


def _bn_model(op: str) -> ir.Model:
    conv = {"Conv": "c = Conv<pads=[1,1,1,1]>(x, w, b)",
            "ConvTranspose": "c = ConvTranspose<pads=[1,1,1,1]>(x, w, b)"}[op]
    wshape = (8, 3, 3, 3) if op == "Conv" else (3, 8, 3, 3)
    text = f"""
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[1,3,8,8] x) => (float[1,8,8,8] y) {{
      {conv}
      y = BatchNormalization<epsilon=1e-5>(c, scale, bias, mean, var)
    }}
    """
    model = text_model(text, w=wshape, b=(8,), scale=(8,), bias=(8,), mean=(8,), var=(8,))
    var = model.graph.initializers["var"]
    var.const_value = ir.tensor(np.abs(var.const_value.numpy()) + 0.5, name="var")
    return model


def test_folds_into_conv_and_conv_transpose():
    for op in ("Conv", "ConvTranspose"):
        model = check_pass(FoldBatchNormPass(), _bn_model(op), expect_change=True)
        assert eir.op_types(model) == [op]


def test_folds_into_gemm():
    text = """
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[4,6] x) => (float[4,5] y) {
      c = Gemm<transB=1>(x, w, b)
      y = BatchNormalization(c, scale, bias, mean, var)
    }
    """
    model = text_model(text, w=(5, 6), b=(5,), scale=(5,), bias=(5,), mean=(5,), var=(5,))
    var = model.graph.initializers["var"]
    var.const_value = ir.tensor(np.abs(var.const_value.numpy()) + 0.5, name="var")
    model = check_pass(FoldBatchNormPass(), model, expect_change=True)
    assert eir.op_types(model) == ["Gemm"]


def test_nothing_to_do():
    text = """
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[1,3,8,8] x) => (float[1,3,8,8] y) {
      y = BatchNormalization(x, scale, bias, mean, var)
    }
    """
    model = text_model(text, scale=(3,), bias=(3,), mean=(3,), var=(3,))
    var = model.graph.initializers["var"]
    var.const_value = ir.tensor(np.abs(var.const_value.numpy()) + 0.5, name="var")
    check_pass(FoldBatchNormPass(), model, expect_change=False)
