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
