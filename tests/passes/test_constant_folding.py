from ._helpers import check_pass, text_model

from edgeexport import ir as eir
from edgeexport.passes import ConstantFoldingPass

MODEL = """
<ir_version: 10, opset_import: ["" : 20]>
g (float[2,4] x) => (float[2,4] y) {
  two = Constant<value = float {2.0}>()
  w2 = Mul(w, two)
  wt = Transpose<perm=[1,0]>(w2)
  y = Add(x, wt)
}
"""


def test_folds_constant_chain():
    model = check_pass(ConstantFoldingPass(), text_model(MODEL, w=(4, 2)), expect_change=True)
    assert eir.op_types(model) == ["Add"]


def test_nothing_to_do_and_keeps_quantize_ops():
    text = """
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[2,4] x) => (float[2,4] y) {
      s = Constant<value = float {0.05}>()
      z = Constant<value = int8 {0}>()
      wq = QuantizeLinear(w, s, z)
      wd = DequantizeLinear(wq, s, z)
      y = Add(x, wd)
    }
    """
    model = text_model(text, w=(2, 4))
    check_pass(ConstantFoldingPass(), model, expect_change=False)
    assert "DequantizeLinear" in eir.op_types(model)


def test_does_not_fold_random_ops():
    text = """
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[2,4] x) => (float[2,4] y) {
      r = RandomNormal<shape=[2,4]>()
      y = Add(x, r)
    }
    """
    model = text_model(text)
    assert not ConstantFoldingPass()(model).modified
    assert "RandomNormal" in eir.op_types(model)


def test_folds_what_onnx_reference_cannot_evaluate():
    """onnx.reference's GatherElements fails on [1, 8] indices into a [1, 512] table (HF BERT's
    token-type ids after a torch.onnx export): our own kernel folds it, so no target is asked to
    run a node that is only a constant."""
    import numpy as np
    import onnx_ir as ir

    text = """
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[1,8] x) => (float[1,8] y) {
      idx = Constant<value = int64[1,8] {0, 1, 2, 3, 4, 5, 6, 7}>()
      picked = GatherElements<axis=1>(table, idx)
      y = Add(x, picked)
    }
    """
    model = text_model(text, table=(1, 512))
    want = model.graph.initializers["table"].const_value.numpy()[:, :8]
    model = check_pass(ConstantFoldingPass(), model, expect_change=True)
    assert eir.op_types(model) == ["Add"]
    folded = next(v for v in model.graph.initializers.values() if v.shape == ir.Shape([1, 8]))
    np.testing.assert_array_equal(folded.const_value.numpy(), want)
