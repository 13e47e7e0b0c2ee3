from ._helpers import check_pass, text_model

from edgeexport import ir as eir
from edgeexport.passes import MatMulAddToGemmPass


def test_matmul_add_becomes_gemm():
    text = """
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[4,6] x) => (float[4,5] y) {
      m = MatMul(x, w)
      y = Add(m, b)
    }
    """
    model = check_pass(MatMulAddToGemmPass(), text_model(text, w=(6, 5), b=(5,)),
                       expect_change=True)
    assert eir.op_types(model) == ["Gemm"]


def test_rank3_matmul_is_not_gemm():
    # Gemm is 2-D only: a transformer's [batch, seq, hidden] MatMul must stay
    text = """
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[1,4,6] x) => (float[1,4,5] y) {
      m = MatMul(x, w)
      y = Add(m, b)
    }
    """
    check_pass(MatMulAddToGemmPass(), text_model(text, w=(6, 5), b=(5,)), expect_change=False)
