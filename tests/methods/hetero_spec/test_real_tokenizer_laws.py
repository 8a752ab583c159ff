"""Sampling exactness on REAL tokenizers: the first- and second-token laws of TLI, SLRS and
sampled SLEM, compared with the target's exact processed distribution by a chi-square test, with
plain target sampling (AR) as the control.

Target: Mistral's 32k SentencePiece (byte fallback ``<0xNN>``, ``▁`` spaces); drafter: tekken,
131k byte-level BPE. So SLRS computes q over a real SentencePiece target vocabulary (canonical ids,
extensions such as " cat" -> " cats", " catch", ...) and a real byte-level drafter vocabulary (the
DP sums drafter paths such as " c" + "at" for " cat"). The models are small deterministic fakes
over those vocabularies (hash-seeded logits per context on a few words both tokenizers spell as
one token, plus sub-word splits for the drafter), so drafts are often accepted and the exact
target law is known in closed form.

Power: N = 600 two-token samples per algorithm, outcomes pooled so every cell expects >= 5
(about 15 cells), alpha = 1e-3 (critical value ~36 at 14 degrees of freedom). For any sampler whose
law is at total-variation distance d from the target's, the chi-square noncentrality is at least
N (2d)^2 (Cauchy-Schwarz), i.e. >= 96 at d = 0.2: such a sampler is rejected with probability
> 0.99. The two biased variants below (a TLI that accepts every draft, an SLRS whose q forgets the
longer target tokens) are rejected at this N; plain sampling (``ar``) is the control."""

from __future__ import annotations

import collections
import zlib
from types import SimpleNamespace

import pytest
import torch
from scipy.stats import chisquare
from spec_fakes import FakeLM

from effeval.methods.hetero_spec import get_algorithm
from effeval.methods.hetero_spec.common import SamplingConfig, target_probs
from effeval.methods.hetero_spec.vocab import Vocab

N = 600
ALPHA = 1e-3
WORDS = [" the", " cat", " sat", " on", " mat", " dog", " and", " a", ".", " ran"]
CONFIG = SamplingConfig(do_sample=True, temperature=1.0, max_new_tokens=2)


class WordLM(FakeLM):
    """Logits: a hash-seeded preference over ``favoured`` ids per context, -30 elsewhere."""

    def __init__(self, vocab_size, favoured: list[int], seed: int, low: list[int] = ()):
        super().__init__(vocab_size)
        self.favoured, self.low, self.seed = favoured, list(low), seed
        self._memo: dict = {}

    def forward(self, input_ids, use_cache=True, cache=None, **_):
        if input_ids.shape[0] == 1:
            return super().forward(input_ids, use_cache=use_cache, cache=cache)
        # SLRS's DP batches drafter paths (no cache): the last row of each sequence is enough.
        rows = torch.stack([self.score(tuple(seq)) for seq in input_ids.tolist()])
        return SimpleNamespace(logits=rows[:, None])

    def score(self, ids):
        # Only the last 3 tokens matter (a fixed-order model): the law depends on the text, not the length.
        key = tuple(ids[-3:])
        got = self._memo.get(key)
        if got is None:
            g = torch.Generator().manual_seed(zlib.crc32(repr((self.seed, key)).encode()))
            got = torch.full((self.vocab_size,), -30.0, dtype=torch.float64)
            got[self.favoured] = 1.2 * torch.randn(len(self.favoured), generator=g, dtype=torch.float64)
            if self.low:
                got[self.low] = -2.0 + 0.5 * torch.randn(len(self.low), generator=g, dtype=torch.float64)
            self._memo[key] = got
        return got


@pytest.fixture(scope="module")
def pair(zoo_path):
    return make_pair(zoo_path)


def make_pair(zoo_path):
    from transformers import AutoTokenizer

    t_tok = AutoTokenizer.from_pretrained(zoo_path("llama-sp"))
    d_tok = AutoTokenizer.from_pretrained(zoo_path("qwen-tekken"))
    t_vocab, d_vocab = Vocab.of(t_tok), Vocab.of(d_tok)
    words = [w for w in WORDS if w.encode() in t_vocab.by_bytes and w.encode() in d_vocab.by_bytes]
    assert len(words) >= 8  # the fixture really has a shared word vocabulary
    t_ids = [t_vocab.by_bytes[w.encode()] for w in words] + [t_tok.eos_token_id]
    d_ids = [d_vocab.by_bytes[w.encode()] for w in words]
    # Sub-word splits the drafter may take (" c" + "at"): non-trivial paths for SLRS's DP.
    splits = [
        d_vocab.by_bytes[w.encode()[:2]] for w in words if len(w) > 2 and w.encode()[:2] in d_vocab.by_bytes
    ]
    splits += [
        d_vocab.by_bytes[w.encode()[2:]] for w in words if len(w) > 2 and w.encode()[2:] in d_vocab.by_bytes
    ]
    target = WordLM(len(t_vocab.bytes), t_ids, seed=1)
    drafter = WordLM(len(d_vocab.bytes), d_ids, seed=2, low=sorted(set(splits)))
    prompt = t_tok("Once upon a time")["input_ids"]
    return target, t_tok, drafter, d_tok, prompt


def exact_two_token_law(target, prompt, eos: int) -> dict:
    law = {}
    p1 = target_probs(target.score(tuple(prompt)), CONFIG)
    for a in torch.nonzero(p1 > 1e-12).flatten().tolist():
        if a == eos:
            law[("eos",)] = law.get(("eos",), 0.0) + float(p1[a])
            continue
        p2 = target_probs(target.score(tuple(prompt) + (a,)), CONFIG)
        for b in torch.nonzero(p2 > 1e-12).flatten().tolist():
            key = (a, "eos") if b == eos else (a, b)
            law[key] = law.get(key, 0.0) + float(p1[a] * p2[b])
    return law


def sample_counts(algorithm, pair, n=N, seed=5, **kwargs) -> collections.Counter:
    target, t_tok, drafter, d_tok, prompt = pair
    config = SamplingConfig(do_sample=True, max_new_tokens=2, eos_token_ids=(t_tok.eos_token_id,))
    generate = get_algorithm(algorithm)
    generator = torch.Generator().manual_seed(seed)
    counts = collections.Counter()
    for _ in range(n):
        res = generate(
            target, t_tok, drafter, d_tok, prompt, config, num_draft_tokens=2, generator=generator, **kwargs
        )
        counts[tuple(res.token_ids) + (("eos",) if res.stopped_by == "eos" else ())] += 1
    return counts


def chi_square_p(counts: collections.Counter, law: dict, n: int) -> float:
    """Pooled chi-square: cells expecting < 5 samples are merged (with everything unexpected)."""
    keys = sorted((k for k in law if n * law[k] >= 5), key=str)
    observed = [counts.get(k, 0) for k in keys]
    expected = [n * law[k] for k in keys]
    rest_obs, rest_exp = n - sum(observed), n - sum(expected)
    if rest_exp > 0:
        observed.append(rest_obs)
        expected.append(rest_exp)
    return float(chisquare(observed, expected).pvalue)


@pytest.fixture(scope="module")
def law(pair):
    target, t_tok, _, _, prompt = pair
    return exact_two_token_law(target, prompt, t_tok.eos_token_id)


@pytest.mark.parametrize("algorithm", ["ar", "tli", "slrs", "slem"])
def test_two_token_law_on_real_tokenizers(algorithm, pair, law):
    """``ar`` is plain sampling, the control: it must pass exactly as the others."""
    counts = sample_counts(algorithm, pair)
    p = chi_square_p(counts, law, N)
    assert p > ALPHA, (algorithm, p)
    # The first-token law alone too (a marginal of the same samples).
    first = collections.Counter()
    for key, c in counts.items():
        first[key[:1]] += c
    first_law: dict = collections.defaultdict(float)
    for key, pr in law.items():
        first_law[key[:1]] += pr
    assert chi_square_p(first, dict(first_law), N) > ALPHA


def test_slrs_really_accepts_drafts_on_real_vocabularies(pair):
    """The law test above covers SLRS's acceptance rule, not only its residual draws."""
    target, t_tok, drafter, d_tok, prompt = pair
    config = SamplingConfig(do_sample=True, max_new_tokens=8, eos_token_ids=(t_tok.eos_token_id,))
    res = get_algorithm("slrs")(
        target,
        t_tok,
        drafter,
        d_tok,
        prompt,
        config,
        num_draft_tokens=3,
        generator=torch.Generator().manual_seed(0),
    )
    assert res.stats.accepted > 0 and res.stats.extra["dp_states"] > 0


def test_chi_square_rejects_a_tli_without_its_acceptance_rule(pair, law, monkeypatch):
    """Biased variant: every draft token accepted (the drafter's law is emitted)."""
    from effeval.methods.hetero_spec.decoding import Coins

    monkeypatch.setattr(Coins, "accept", lambda self, prob: True)
    counts = sample_counts("tli", pair)
    assert chi_square_p(counts, law, N) < ALPHA


def test_chi_square_rejects_an_slrs_q_without_extensions(pair, law, monkeypatch):
    """Biased variant: q(t) = P(t prefixes the drafted string), forgetting longer target tokens."""
    from effeval.methods.hetero_spec.vocab import TargetVocab

    monkeypatch.setattr(TargetVocab, "extensions", lambda self, t: [])
    counts = sample_counts("slrs", pair)
    assert chi_square_p(counts, law, N) < ALPHA
