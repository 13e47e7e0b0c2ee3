"""FoldBatchNormIntoLinearPass: BatchNorm1d over a Linear's features (through a Reshape that keeps
the last axis, as in LeViT) folds into the MatMul weight and bias; other BNs are left alone."""

import numpy as np
import onnx_ir as ir

from ._helpers import check_pass, text_model

from edgeexport import ir as eir
from edgeexport.passes import FoldBatchNormIntoLinearPass


def _positive_var(model: ir.Model) -> ir.Model:
    var = model.graph.initializers["var"]
    var.const_value = ir.tensor(np.abs(var.const_value.numpy()) + 0.5, name="var")
    return model


def test_folds_through_a_reshape_into_matmul_and_bias():
    text = """
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[2,3,6] x) => (float[2,3,5] y) <int64[2] s6 = {6, 5}, int64[3] s3 = {2, 3, 5}> {
      m = MatMul(x, w)
      a = Add(m, b)
      flat = Reshape(a, s6)
      n = BatchNormalization<epsilon=1e-5>(flat, scale, bias, mean, var)
      y = Reshape(n, s3)
    }
    """
    model = _positive_var(text_model(text, w=(6, 5), b=(5,), scale=(5,), bias=(5,), mean=(5,),
                                     var=(5,)))
    model = check_pass(FoldBatchNormIntoLinearPass(), model, expect_change=True)
    assert eir.op_types(model) == ["MatMul", "Add", "Reshape", "Reshape"]


def test_bn_as_the_last_op_after_a_bias_free_matmul_keeps_the_output_name():
    text = """
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[4,6] x) => (float[4,5] y) {
      m = MatMul(x, w)
      y = BatchNormalization(m, scale, bias, mean, var)
    }
    """
    model = _positive_var(text_model(text, w=(6, 5), scale=(5,), bias=(5,), mean=(5,), var=(5,)))
    model = check_pass(FoldBatchNormIntoLinearPass(), model, expect_change=True)
    assert eir.op_types(model) == ["MatMul", "Add"]
    assert [v.name for v in model.graph.outputs] == ["y"]


def test_nothing_to_do():
    # a BN over conv channels, and one over a MatMul whose output another node also reads
    text = """
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[1,3,8,8] x, float[4,6] z) => (float[1,3,8,8] y, float[4,5] y2, float[4,5] m) {
      y = BatchNormalization(x, scale3, bias3, mean3, var)
      m = MatMul(z, w)
      y2 = BatchNormalization(m, scale, bias, mean, var5)
    }
    """
    model = text_model(text, scale3=(3,), bias3=(3,), mean3=(3,), var=(3,), w=(6, 5),
                       scale=(5,), bias=(5,), mean=(5,), var5=(5,))
    for name in ("var", "var5"):
        v = model.graph.initializers[name]
        v.const_value = ir.tensor(np.abs(v.const_value.numpy()) + 0.5, name=name)
    check_pass(FoldBatchNormIntoLinearPass(), model, expect_change=False)
