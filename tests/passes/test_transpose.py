from ._helpers import check_pass, text_model

from edgeexport import ir as eir
from edgeexport.passes import TransposePairsPass


def test_inverse_pair_cancels():
    text = """
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[1,3,4,5] x) => (float[1,3,4,5] y) {
      a = Transpose<perm=[0,2,3,1]>(x)
      b = Transpose<perm=[0,3,1,2]>(a)
      y = Relu(b)
    }
    """
    model = check_pass(TransposePairsPass(), text_model(text), expect_change=True)
    assert eir.op_types(model) == ["Relu"]


def test_pair_merges_into_one():
    text = """
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[2,3,4] x) => (float[3,2,4] y) {
      a = Transpose<perm=[1,2,0]>(x)
      y = Transpose<perm=[0,2,1]>(a)
    }
    """
    model = check_pass(TransposePairsPass(), text_model(text), expect_change=True)
    assert eir.op_types(model) == ["Transpose"]
    assert model.graph.outputs[0].name == "y"


def test_single_transpose_is_left_alone():
    text = """
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[2,3,4] x) => (float[4,3,2] y) {
      y = Transpose<perm=[2,1,0]>(x)
    }
    """
    check_pass(TransposePairsPass(), text_model(text), expect_change=False)
