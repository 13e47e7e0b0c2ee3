"""A BERT-style encoder: int64 token ids and an attention mask in, hidden states and pooled out;
a mean-pooled sentence-embedding head over it, and BERT's uncased WordPiece tokenizer.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 1000
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    intermediate: int = 128
    max_positions: int = 64
    type_vocab_size: int = 2


class BertLayer(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.heads, self.dh = cfg.heads, cfg.hidden // cfg.heads
        self.query = nn.Linear(cfg.hidden, cfg.hidden)
        self.key = nn.Linear(cfg.hidden, cfg.hidden)
        self.value = nn.Linear(cfg.hidden, cfg.hidden)
        self.attn_out = nn.Linear(cfg.hidden, cfg.hidden)
        self.attn_norm = nn.LayerNorm(cfg.hidden, eps=1e-12)
        self.intermediate = nn.Linear(cfg.hidden, cfg.intermediate)
        self.output = nn.Linear(cfg.intermediate, cfg.hidden)
        self.out_norm = nn.LayerNorm(cfg.hidden, eps=1e-12)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, self.dh).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        scores = q @ k.transpose(-1, -2) / (self.dh ** 0.5) + bias
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)
        x = self.attn_norm(x + self.attn_out(ctx))
        return self.out_norm(x + self.output(nn.functional.gelu(self.intermediate(x))))


class TinyBert(nn.Module):
    def __init__(self, cfg: BertConfig = BertConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden)
        self.position_embeddings = nn.Embedding(cfg.max_positions, cfg.hidden)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden)
        self.norm = nn.LayerNorm(cfg.hidden, eps=1e-12)
        self.layers = nn.ModuleList([BertLayer(cfg) for _ in range(cfg.layers)])
        self.pooler = nn.Linear(cfg.hidden, cfg.hidden)

    def forward(self, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.encode(input_ids, attention_mask)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return x, pooled

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The last layer's hidden states, [batch, tokens, hidden]."""
        n = input_ids.shape[1]
        positions = torch.arange(n, dtype=torch.long).unsqueeze(0)
        x = (self.word_embeddings(input_ids) + self.position_embeddings(positions)
             + self.token_type_embeddings(torch.zeros_like(input_ids)))
        x = self.norm(x)
        # 0 where attended, a large negative number where masked (as HF BERT does)
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, bias)
        return x


def bert_tiny(seed: int = 0, **overrides: int) -> TinyBert:
    """A 2-layer, 64-wide BERT-style encoder (random, seeded) in eval mode."""
    torch.manual_seed(seed)
    return TinyBert(BertConfig(**overrides)).eval()


class SentenceEncoder(nn.Module):
    """sentence-transformers' Transformer -> mean Pooling -> Normalize: outputs the unit-length
    mean of the attended tokens' hidden states, and the hidden states themselves."""

    def __init__(self, bert: TinyBert) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.bert.encode(input_ids, attention_mask)
        mask = attention_mask.unsqueeze(-1).to(x.dtype)
        mean = (x * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        embedding = mean / mean.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        return embedding, x


class WordPiece:
    """BERT's uncased tokenizer: clean, split CJK characters, lower-case, strip accents, split
    on punctuation, then greedy longest-match WordPiece over `vocab.txt`."""

    def __init__(self, vocab_file: str | Path, max_length: int = 512) -> None:
        words = Path(vocab_file).read_text(encoding="utf-8").split("\n")
        self.vocab = {w: i for i, w in enumerate(words) if w}
        self.max_length = max_length
        self.cls, self.sep = self.vocab["[CLS]"], self.vocab["[SEP]"]
        self.pad, self.unk = self.vocab["[PAD]"], self.vocab["[UNK]"]

    def tokenize(self, text: str) -> list[str]:
        out: list[str] = []
        for word in _basic_split(text):
            out += self._wordpiece(word)
        return out

    def encode(self, text: str) -> list[int]:
        """[CLS] tokens [SEP] as ids, truncated to `max_length`."""
        ids = [self.vocab.get(t, self.unk) for t in self.tokenize(text)]
        return [self.cls] + ids[:self.max_length - 2] + [self.sep]

    def __call__(self, texts: list[str], length: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """int64 (input_ids, attention_mask), [len(texts), length]: padded with [PAD] to
        `length` (default: the longest text)."""
        rows = [self.encode(t) for t in texts]
        n = length or max(len(r) for r in rows)
        ids = np.full((len(rows), n), self.pad, np.int64)
        mask = np.zeros((len(rows), n), np.int64)
        for i, r in enumerate(rows):
            r = r[:n - 1] + [self.sep] if len(r) > n else r
            ids[i, :len(r)], mask[i, :len(r)] = r, 1
        return ids, mask

    def _wordpiece(self, word: str) -> list[str]:
        if len(word) > 100:  # BERT's max_input_chars_per_word
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            if end == start:  # no prefix of the rest is in the vocabulary
                return ["[UNK]"]
            pieces.append(piece)
            start = end
        return pieces


def _basic_split(text: str) -> list[str]:
    chars = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        if _is_cjk(cp):
            chars += [" ", ch, " "]
        else:
            chars.append(" " if ch in " \t\n\r" or unicodedata.category(ch) == "Zs" else ch)
    words = []
    for word in "".join(chars).split():
        word = "".join(c for c in unicodedata.normalize("NFD", word.lower())
                       if unicodedata.category(c) != "Mn")
        current = ""
        for ch in word:
            if _is_punctuation(ch):
                words += [current, ch] if current else [ch]
                current = ""
            else:
                current += ch
        if current:
            words.append(current)
    return words


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    # BERT counts every non-alphanumeric printable ASCII character as punctuation ('$', '^', '`')
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in (
        (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))
