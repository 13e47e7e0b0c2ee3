from ._helpers import check_pass, text_model

from edgeexport import ir as eir
from edgeexport.passes import DeadCodeEliminationPass


def test_removes_dead_nodes_and_initializers():
    text = """
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[2,4] x) => (float[2,4] y) {
      dead = Mul(x, w)
      dead2 = Relu(dead)
      y = Relu(x)
    }
    """
    model = check_pass(DeadCodeEliminationPass(), text_model(text, w=(2, 4)),
                       expect_change=True)
    assert eir.op_types(model) == ["Relu"]
    assert not model.graph.initializers
