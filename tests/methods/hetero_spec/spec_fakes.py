"""Test doubles for speculative decoding: a tiny byte-string tokenizer, hash-seeded tiny LMs,
scripted drafters (oracle / anti-oracle) over real tokenizers, and ``EnumeratingCoins``, which
runs an algorithm once per branch of its randomness to get the exact law of its output."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from effeval.methods.hetero_spec.vocab import Vocab


class TinyTokenizer:
    """Tokens are byte strings; id 0 is EOS. Encoding is greedy longest-match."""

    def __init__(self, pieces: list[str]):
        self.pieces = ["</s>"] + pieces
        self._effeval_family = "fake"
        self._effeval_token_bytes = [None] + [p.encode() for p in pieces]
        self.eos_token_id = 0
        self.pad_token_id = 0
        self.bos_token_id = None
        self.all_special_ids = [0]

    def __len__(self):
        return len(self.pieces)

    def get_vocab(self):
        return {p: i for i, p in enumerate(self.pieces)}

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": Vocab.of(self).longest_match(text.encode())}

    def decode(self, ids, skip_special_tokens=True):
        return b"".join(self._effeval_token_bytes[i] or b"" for i in ids).decode("utf-8", errors="replace")


class FakeCache:
    def __init__(self):
        self.ids: list[int] = []

    def crop(self, n):
        del self.ids[n:]

    def get_seq_length(self):
        return len(self.ids)


class FakeLM(torch.nn.Module):
    """A causal LM whose logits are a deterministic function of the context (``score(ids)``)."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.config = SimpleNamespace(vocab_size=vocab_size)
        self.device = torch.device("cpu")

    def get_output_embeddings(self):
        return None

    def score(self, ids: tuple[int, ...]) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, input_ids, use_cache=True, cache=None, **_):
        cache = cache if cache is not None else FakeCache()
        rows = []
        for token in input_ids[0].tolist():
            cache.ids.append(token)
            rows.append(self.score(tuple(cache.ids)))
        return SimpleNamespace(logits=torch.stack(rows)[None], cache=cache)


class HashLM(FakeLM):
    """Random-looking but deterministic logits per context (seeded by the context's hash)."""

    def __init__(self, vocab_size: int, seed: int, scale: float = 0.7):
        super().__init__(vocab_size)
        self.seed, self.scale = seed, scale

    def score(self, ids):
        g = torch.Generator().manual_seed((hash((self.seed,) + ids) & 0x7FFFFFFF) + 1)
        return torch.randn(self.vocab_size, generator=g, dtype=torch.float64) * self.scale


class ScriptedDrafter(FakeLM):
    """A drafter over a real tokenizer that knows the target's greedy output for one prompt.

    ``agree=True`` (oracle): prefers the drafter token that spells exactly the target's next
    token, else the longest token that continues the reference text. ``agree=False``
    (anti-oracle): always proposes a token whose first byte differs from the next reference byte,
    so no draft can ever match."""

    def __init__(
        self, drafter_tok, prompt_text: str, continuation: bytes, target_boundaries: list[int], agree: bool
    ):
        vocab = Vocab.of(drafter_tok)
        super().__init__(len(vocab.bytes))
        self.vocab, self.agree = vocab, agree
        ref_ids = vocab.encode_text(prompt_text, add_special_tokens=True)
        self.prompt_bytes = vocab.ids_bytes(ref_ids)
        self.reference = self.prompt_bytes + continuation
        self.boundaries = {len(self.prompt_bytes) + b for b in target_boundaries}
        self.next_boundary = sorted(self.boundaries)
        self.single_bytes = [vocab.by_bytes.get(bytes([b])) for b in range(256)]

    def score(self, ids):
        memo = self.__dict__.setdefault("_memo", {})
        if ids not in memo:
            memo[ids] = self._score(ids)
        return memo[ids]

    def _score(self, ids):
        logits = torch.zeros(self.vocab_size, dtype=torch.float64)
        done = self.vocab.ids_bytes(ids)
        if not self.reference.startswith(done) or len(done) >= len(self.reference):
            return logits
        rest = self.reference[len(done) :]
        if not self.agree:
            for b in (ord("~"), ord("#"), ord("@")):
                if b != rest[0] and self.single_bytes[b] is not None:
                    logits[self.single_bytes[b]] = 50.0
                    return logits
        nxt = next((b for b in self.next_boundary if b > len(done)), None)
        for size in range(1, min(self.vocab.max_token_len, len(rest)) + 1):
            idx = self.vocab.by_bytes.get(rest[:size])
            if idx is not None:
                end = len(done) + size
                logits[idx] = (
                    10.0 + size + (1000.0 if end == nxt else 100.0 if end in self.boundaries else 0.0)
                )
        return logits


class EnumeratingCoins:
    """Coins that follow a script of choices; new choice points record their alternatives."""

    def __init__(self, script: list):
        self.script, self.pos, self.prob, self.pending = list(script), 0, 1.0, []

    def _choose(self, options):
        options = [(v, p) for v, p in options if p > 0]
        if self.pos < len(self.script):
            value = self.script[self.pos]
        else:
            value = options[0][0]
            self.pending += [self.script[: self.pos] + [v] for v, _ in options[1:]]
            self.script.append(value)
        self.prob *= dict(options)[value]
        self.pos += 1
        return value

    def accept(self, prob):
        prob = float(prob)
        return self._choose([(True, min(1.0, prob)), (False, 1.0 - min(1.0, prob))])

    def categorical(self, probs):
        probs = probs.detach().to(torch.float64).cpu()
        probs = probs / probs.sum()
        return self._choose([(i, float(probs[i])) for i in torch.nonzero(probs).flatten().tolist()])


def enumerate_law(run) -> dict:
    """Exact output law of ``run(coins) -> outcome`` over every branch of its randomness."""
    law: dict = {}
    stack = [[]]
    while stack:
        coins = EnumeratingCoins(stack.pop())
        outcome = run(coins)
        law[outcome] = law.get(outcome, 0.0) + coins.prob
        stack += coins.pending
    return law
