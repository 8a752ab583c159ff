"""A scripted step model and a character tokenizer: chain i writes ``scripts[i]`` then EOS.

The end-of-thinking marker ``</think>`` is 8 characters = 8 tokens here, like SentencePiece
spells it with several tokens, so detection on decoded text is exercised.
"""

from __future__ import annotations

import torch

CHARS = "abcdefghijklmnopqrstuvwxyz0123456789 .,:;=+-*?<>/\\{}()"
EOS = 0


class CharTokenizer:
    def __init__(self, chars: str = CHARS):
        self.chars = chars
        self.vocab = len(chars) + 1

    def encode(self, text: str) -> list[int]:
        return [self.chars.index(ch) + 1 if ch in self.chars else EOS for ch in text]

    def decode(self, ids) -> str:
        return "".join(self.chars[i - 1] for i in ids if i != EOS)


class ScriptedBackend:
    """Row r of the batch is chain ``self.rows[r]``; its next token is the next script char."""

    def __init__(self, scripts: list[str], tok: CharTokenizer | None = None):
        self.tok = tok or CharTokenizer()
        self.scripts = [self.tok.encode(s) + [EOS] for s in scripts]
        self.calls = 0
        self.batch_sizes: list[int] = []
        self.rows: list[int] = []
        self.pos: dict[int, int] = {}

    def _logits(self):
        out = torch.full((len(self.rows), self.tok.vocab), -100.0)
        for r, chain in enumerate(self.rows):
            script = self.scripts[chain]
            out[r, script[min(self.pos[chain], len(script) - 1)]] = 100.0
        return out

    def prefill(self, prompt_ids, n):
        self.calls += 1
        self.batch_sizes.append(n)
        self.rows = list(range(n))
        self.pos = {i: 0 for i in range(n)}
        return self._logits()

    def decode(self, tokens, keep):
        self.calls += 1
        self.rows = [self.rows[p] for p in keep]
        self.batch_sizes.append(len(self.rows))
        for chain, tok in zip(self.rows, tokens.tolist()):
            assert tok == self.scripts[chain][self.pos[chain]], "fed token differs from the script"
            self.pos[chain] += 1
        return self._logits()


def run(scripts, tok=None, **cfg_kwargs):
    from effeval.methods.short_mk.sampler import ShortMKConfig, sample_short_mk

    tok = tok or CharTokenizer()
    backend = ScriptedBackend(scripts, tok)
    cfg = ShortMKConfig(k=len(scripts), **cfg_kwargs)
    result = sample_short_mk(
        backend, tok.encode("q?"), cfg, decode=tok.decode, encode=tok.encode, eos_ids=[EOS]
    )
    return result, backend
