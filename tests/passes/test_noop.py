from ._helpers import check_pass, text_model

from edgeexport import ir as eir
from edgeexport.passes import RemoveNoOpsPass

MODEL = """
<ir_version: 10, opset_import: ["" : 20]>
g (float[2,3] x) => (float[2,3] y) {
  a = Identity(x)
  b = Dropout(a)
  c = Cast<to=1>(b)
  d = Relu(c)
  y = Identity(d)
}
"""


def test_removes_identity_dropout_and_noop_cast():
    model = check_pass(RemoveNoOpsPass(), text_model(MODEL), expect_change=True)
    assert eir.op_types(model) == ["Relu"]
    assert model.graph.outputs[0].name == "y"


def test_nothing_to_do():
    model = text_model(MODEL.replace("c = Cast<to=1>(b)", "c = Cast<to=10>(b)")
                       .replace("d = Relu(c)", "d = Relu(b)"))
    check_pass(RemoveNoOpsPass(), model, expect_change=True)
    check_pass(RemoveNoOpsPass(), model, expect_change=False)
