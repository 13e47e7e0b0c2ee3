import numpy as np
from ._helpers import check_pass, text_model

from edgeexport import ir as eir
from edgeexport.passes import SimplifyShapesPass

# x.reshape(x.shape[0], -1) as tracers write it: Shape -> Gather -> Unsqueeze -> Concat -> Reshape
MODEL = """
<ir_version: 10, opset_import: ["" : 20]>
g (float[2,3,4] x) => (float[2,12] y) {
  s = Shape(x)
  i0 = Constant<value = int64 {0}>()
  d0 = Gather<axis=0>(s, i0)
  ax = Constant<value = int64[1] {0}>()
  u = Unsqueeze(d0, ax)
  m1 = Constant<value = int64[1] {-1}>()
  shape = Concat<axis=0>(u, m1)
  y = Reshape(x, shape)
}
"""


def test_static_shape_chain_becomes_constant():
    model = check_pass(SimplifyShapesPass(), text_model(MODEL), expect_change=True)
    assert eir.op_types(model) == ["Reshape"]
    assert np.array_equal(eir.initializer_array(model.graph.node(0).inputs[1]), [2, -1])


def test_dynamic_shape_is_left_alone():
    text = MODEL.replace("float[2,3,4] x", "float[N,3,4] x").replace("float[2,12] y",
                                                                     "float[N,12] y")
    model = text_model(text)
    assert not SimplifyShapesPass()(model).modified
    assert "Shape" in eir.op_types(model)
