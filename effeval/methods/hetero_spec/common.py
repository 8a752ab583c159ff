"""Shared pieces of every speculative-decoding algorithm here (AR, SLEM, TLI, SLRS).

- ``token_bytes``: each token id of a tokenizer -> the exact bytes it stands for (or ``None``
  for control tokens), across tokenizer families: SentencePiece (``▁`` -> space, byte fallback
  ``<0xNN>`` -> that byte) and byte-level BPE (``Ġ``-style symbols -> their bytes). Tokens can be
  partial UTF-8 sequences, so everything string-level works on bytes.
- ``SamplingConfig`` + ``target_probs``: the target's *processed* next-token distribution
  (temperature, top-k, top-p), computed one way for every algorithm, so "lossless" has one
  meaning: equal to this distribution (greedy = its argmax).
- ``SpecStats`` / ``GenerationResult``: what one request cost.

Every algorithm module exposes ``generate(target, target_tok, drafter, drafter_tok,
prompt_ids, config, *, num_draft_tokens, generator) -> GenerationResult``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from effeval.byte_level import unicode_to_bytes

# SentencePiece byte-fallback pieces ``<0xNN>`` (the one definition; vocab.py and slrs.py use it).
BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def tokenizer_family(tokenizer) -> str:
    """``sentencepiece`` or ``byte_level`` (from the fast tokenizer's decoder); else an error."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = repr(getattr(backend, "decoder", None)) if backend is not None else ""
    if "ByteLevel" in decoder:
        return "byte_level"
    if "ByteFallback" in decoder or "▁" in decoder or hasattr(tokenizer, "sp_model"):
        return "sentencepiece"
    vocab = tokenizer.get_vocab()
    if "<0x0A>" in vocab:
        return "sentencepiece"
    if "Ġ" in vocab or "Ċ" in vocab:
        return "byte_level"
    from effeval.errors import ConfigError

    raise ConfigError(
        f"tokenizer {type(tokenizer).__name__} ({getattr(tokenizer, 'name_or_path', '?')}): cannot map its "
        "tokens to bytes (neither SentencePiece nor byte-level BPE). Fix: use a SentencePiece or "
        "byte-level BPE tokenizer"
    )


def _special_ids(tokenizer) -> set[int]:
    ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    for idx, added in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).items():
        if getattr(added, "special", False):
            ids.add(int(idx))
    return ids


def token_bytes(tokenizer) -> list[bytes | None]:
    """Bytes of every token id (index = id); ``None`` for special/control tokens."""
    cache = getattr(tokenizer, "_effeval_token_bytes", None)
    if cache is not None:
        return cache
    family = tokenizer_family(tokenizer)
    vocab = tokenizer.get_vocab()
    size = max(len(tokenizer), max(vocab.values()) + 1)
    out: list[bytes | None] = [None] * size
    special = _special_ids(tokenizer)
    byte_map = unicode_to_bytes() if family == "byte_level" else None
    for piece, idx in vocab.items():
        if idx in special:
            continue
        if family == "sentencepiece":
            m = BYTE_FALLBACK.match(piece)
            out[idx] = bytes([int(m.group(1), 16)]) if m else piece.replace("▁", " ").encode("utf-8")
        else:
            try:
                out[idx] = bytes(byte_map[ch] for ch in piece)
            except KeyError:  # an added non-special token stored as plain text
                out[idx] = piece.encode("utf-8")
    try:
        tokenizer._effeval_token_bytes = out
    except AttributeError:
        pass
    return out


# ----------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class SamplingConfig:
    """The target's generation config. ``do_sample=False`` means greedy (argmax)."""

    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off
    max_new_tokens: int = 256
    stop_strings: tuple[str, ...] = ()
    eos_token_ids: tuple[int, ...] = ()


def target_probs(logits, config: SamplingConfig):
    """Processed next-token distribution(s) from raw logits ``[..., V]`` in float64.

    Order as in transformers: temperature, then top-k, then top-p (keep the smallest set whose
    mass reaches top_p, always at least one token).
    """
    import torch

    x = logits.to(torch.float64)
    if config.do_sample and config.temperature != 1.0:
        x = x / config.temperature
    if config.top_k and config.top_k < x.shape[-1]:
        kth = torch.topk(x, config.top_k, dim=-1).values[..., -1:]
        x = x.masked_fill(x < kth, float("-inf"))
    probs = torch.softmax(x, dim=-1)
    if config.top_p < 1.0:
        sorted_p, order = torch.sort(probs, dim=-1, descending=True)
        cum = sorted_p.cumsum(-1)
        drop_sorted = (cum - sorted_p) >= config.top_p  # mass before this token already reaches top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


# ----------------------------------------------------------------------------- results


@dataclass
class SpecStats:
    drafted: int = 0  # draft tokens proposed (in the target vocabulary where applicable)
    accepted: int = 0
    accepted_lengths: list[int] = field(default_factory=list)  # per verification step
    target_calls: int = 0
    drafter_calls: int = 0
    new_tokens: int = 0
    wall_time_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.drafted if self.drafted else None

    @property
    def mean_accepted_length(self) -> float | None:
        return sum(self.accepted_lengths) / len(self.accepted_lengths) if self.accepted_lengths else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "drafted": self.drafted,
            "accepted": self.accepted,
            "acceptance_rate": self.acceptance_rate,
            "mean_accepted_length": self.mean_accepted_length,
            "target_calls": self.target_calls,
            "drafter_calls": self.drafter_calls,
            "new_tokens": self.new_tokens,
            "wall_time_s": self.wall_time_s,
            "tokens_per_s": self.new_tokens / self.wall_time_s if self.wall_time_s > 0 else None,
            **self.extra,
        }


@dataclass
class GenerationResult:
    token_ids: list[int]  # new target tokens (after the prompt), EOS excluded, cut at a stop string
    text: str
    stats: SpecStats
    stopped_by: str = "length"  # eos | stop_string | length
