"""GELU, LayerNorm, HardSwish/HardSigmoid and SiLU written out elementwise fuse into one op."""

from ._helpers import check_pass, text_model

from edgeexport import ir as eir
from edgeexport.passes import FuseGeluPass, FuseHardSwishPass, FuseLayerNormPass, FuseSiluPass

HEAD = '<ir_version: 10, opset_import: ["" : 20]>\n'


def test_gelu_erf():
    text = HEAD + """
    g (float[2,8] x) => (float[2,8] y) {
      r2 = Constant<value = float {1.4142135}>()
      one = Constant<value = float {1.0}>()
      half = Constant<value = float {0.5}>()
      a = Div(x, r2)
      e = Erf(a)
      p = Add(e, one)
      m = Mul(x, p)
      y = Mul(m, half)
    }
    """
    model = check_pass(FuseGeluPass(), text_model(text), expect_change=True)
    assert [o for o in eir.op_types(model) if o != "Constant"] == ["Gelu"]


def test_gelu_tanh():
    text = HEAD + """
    g (float[2,8] x) => (float[2,8] y) {
      three = Constant<value = float {3.0}>()
      c = Constant<value = float {0.044715}>()
      k = Constant<value = float {0.7978846}>()
      one = Constant<value = float {1.0}>()
      half = Constant<value = float {0.5}>()
      x3 = Pow(x, three)
      cx3 = Mul(x3, c)
      s = Add(x, cx3)
      ks = Mul(s, k)
      t = Tanh(ks)
      p = Add(t, one)
      hx = Mul(x, half)
      y = Mul(hx, p)
    }
    """
    model = check_pass(FuseGeluPass(), text_model(text), expect_change=True)
    gelu = [n for n in model.graph if n.op_type == "Gelu"]
    assert len(gelu) == 1 and gelu[0].attributes.get_string("approximate") == "tanh"


def test_layernorm():
    text = HEAD + """
    g (float[2,5,8] x) => (float[2,5,8] y) {
      axes = Constant<value = int64[1] {-1}>()
      two = Constant<value = float {2.0}>()
      eps = Constant<value = float {1e-5}>()
      mean = ReduceMean<keepdims=1>(x, axes)
      d = Sub(x, mean)
      dd = Pow(d, two)
      var = ReduceMean<keepdims=1>(dd, axes)
      ve = Add(var, eps)
      sd = Sqrt(ve)
      n = Div(d, sd)
      ns = Mul(n, scale)
      y = Add(ns, bias)
    }
    """
    model = text_model(text, scale=(8,), bias=(8,))
    model = check_pass(FuseLayerNormPass(), model, expect_change=True)
    assert [o for o in eir.op_types(model) if o != "Constant"] == ["LayerNormalization"]


def test_hardswish_and_hardsigmoid():
    text = HEAD + """
    g (float[2,8] x) => (float[2,8] y, float[2,8] z) {
      three = Constant<value = float {3.0}>()
      zero = Constant<value = float {0.0}>()
      six = Constant<value = float {6.0}>()
      a = Add(x, three)
      c = Clip(a, zero, six)
      m = Mul(c, x)
      y = Div(m, six)
      a2 = Add(z0, three)
      c2 = Clip(a2, zero, six)
      z = Div(c2, six)
    }
    """.replace("(float[2,8] x)", "(float[2,8] x, float[2,8] z0)")
    model = check_pass(FuseHardSwishPass(), text_model(text), expect_change=True)
    ops = [o for o in eir.op_types(model) if o != "Constant"]
    assert sorted(ops) == ["HardSigmoid", "HardSwish"]


def test_silu_canonical_form():
    text = HEAD + """
    g (float[2,8] x) => (float[2,8] y) {
      one = Constant<value = float {1.0}>()
      n = Neg(x)
      e = Exp(n)
      d = Add(e, one)
      y = Div(x, d)
    }
    """
    model = check_pass(FuseSiluPass(), text_model(text), expect_change=True)
    assert sorted(o for o in eir.op_types(model) if o != "Constant") == ["Mul", "Sigmoid"]


def test_fusions_leave_plain_math_alone():
    text = HEAD + """
    g (float[2,8] x) => (float[2,8] y) {
      two = Constant<value = float {2.0}>()
      a = Mul(x, two)
      y = Add(a, x)
    }
    """
    for p in (FuseGeluPass, FuseHardSwishPass, FuseLayerNormPass, FuseSiluPass):
        check_pass(p(), text_model(text), expect_change=False)
