"""``vocab`` scoring: the SpeLLM as a next-token distribution over the base model's vocabulary.

Why these tests exist: the real-model bench divided the SpeLLM's raw ``padded`` string score
(which leaves the mass of non-token strings and invalid rows unassigned, so it is not a
distribution over tokens) by the base model's softmax perplexity, and reported a ratio of ~5e19
for distilled SmolLM2. The tests below pin down the comparable quantity: it matches a hand
computation, sums to exactly 1 over the vocabulary, reproduces the teacher when the heads copy
it, and is what ``heldout_ppl`` reports. Shown able to fail (checked when written): with the old
scoring (the raw ``padded`` score in ``vocab_logprob`` and in ``heldout_ppl``) the hand
computation, the sum-to-one test and the bench recomputation fail; with a normaliser that misses
one vocabulary row, the hand computation, the sum-to-one test and the copy-of-the-teacher law fail.
"""

import math

import pytest
import torch

from effeval.methods.spellm.alphabet import END, EOS, NUM_SYMBOLS
from effeval.methods.spellm.heads import string_logprob, vocab_logprob, vocab_scores


def _log(x: float) -> float:
    return math.log(x) if x > 0 else float("-inf")


def test_vocab_logprob_matches_a_hand_computation():
    """k=2, three tokens 'a', 'ab', 'b': every head probability written out by hand."""
    a, b = ord("a"), ord("b")
    token_rows = torch.tensor([[a, END], [a, b], [b, END]])
    probs = torch.full((2, NUM_SYMBOLS), 1e-6, dtype=torch.float64)
    probs[0, a], probs[0, b] = 0.6, 0.3  # head 0
    probs[1, END], probs[1, b] = 0.7, 0.2  # head 1
    probs = probs / probs.sum(-1, keepdim=True)
    lp = torch.log(probs)
    p = probs.tolist()
    padded = {"a": p[0][a] * p[1][END], "ab": p[0][a] * p[1][b], "b": p[0][b] * p[1][END]}
    z = sum(padded.values())
    for i, name in enumerate(("a", "ab", "b")):
        got = vocab_logprob(lp, token_rows[i], token_rows).item()
        assert got == pytest.approx(math.log(padded[name] / z), abs=1e-9)
        assert string_logprob(lp, token_rows[i], "padded").item() == pytest.approx(
            math.log(padded[name]), abs=1e-9
        )


def test_vocab_mode_sums_to_one_over_the_vocabulary_and_padded_does_not():
    gen = torch.Generator().manual_seed(1)
    k, vocab = 4, 300
    lengths = torch.randint(1, k + 1, (vocab,), generator=gen)
    token_rows = torch.randint(0, 256, (vocab, k), generator=gen)
    token_rows[torch.arange(k).expand(vocab, k) >= lengths.unsqueeze(1)] = END
    token_rows[0] = torch.tensor([EOS] + [END] * (k - 1))
    lp = torch.log_softmax(torch.randn(5, k, NUM_SYMBOLS, generator=gen, dtype=torch.float64), -1)
    for n in range(5):
        vocab_total = sum(
            math.exp(vocab_logprob(lp[n], token_rows[t], token_rows).item()) for t in range(vocab)
        )
        padded_total = sum(
            math.exp(string_logprob(lp[n], token_rows[t], "padded").item()) for t in range(vocab)
        )
        assert vocab_total == pytest.approx(1.0, abs=1e-9)
        assert padded_total < 1.0  # string scores leave mass outside the vocabulary
    loop = [sum(lp[n, j, token_rows[t, j]].item() for j in range(k)) for n in range(2) for t in range(vocab)]
    assert vocab_scores(lp[:2], token_rows).reshape(-1).tolist() == pytest.approx(loop, abs=1e-9)


def _teacher_marginals(teacher, token_rows, k):
    """Head j's target at T=1: the teacher's probability of symbol j, summed over tokens."""
    q = torch.zeros(k, NUM_SYMBOLS, dtype=torch.float64)
    for t, pt in enumerate(teacher.tolist()):
        for j in range(k):
            q[j, token_rows[t, j]] += pt
    return q


def test_heads_copying_the_teacher_reproduce_it_and_have_finite_perplexity():
    """Exact law: when every token is one byte, heads equal to the teacher's T=1 marginals make
    the vocab distribution the teacher's own. With multi-byte tokens the copy (a product of
    marginals) is no longer exact but every token keeps a finite log-probability in both modes,
    and normalising over the vocabulary can only raise it."""
    gen = torch.Generator().manual_seed(2)
    k = 3
    one_byte = torch.tensor([[c, END, END] for c in range(40, 90)])
    teacher = torch.softmax(torch.randn(len(one_byte), generator=gen, dtype=torch.float64) * 2, -1)
    lp = torch.log(_teacher_marginals(teacher, one_byte, k))
    got = torch.stack([vocab_logprob(lp, one_byte[t], one_byte) for t in range(len(one_byte))])
    assert got.tolist() == pytest.approx(torch.log(teacher).tolist(), abs=1e-9)

    multi = torch.tensor([[a, b, END] for a in range(65, 75) for b in range(97, 102)] + [[EOS, END, END]])
    teacher = torch.softmax(torch.randn(len(multi), generator=gen, dtype=torch.float64) * 2, -1)
    lp = torch.log(_teacher_marginals(teacher, multi, k))
    vocab_lp = torch.stack([vocab_logprob(lp, multi[t], multi) for t in range(len(multi))])
    padded_lp = torch.stack([string_logprob(lp, multi[t], "padded") for t in range(len(multi))])
    assert torch.isfinite(vocab_lp).all() and torch.isfinite(padded_lp).all()
    assert (vocab_lp >= padded_lp - 1e-12).all()
    cross_entropy = -(teacher * vocab_lp).sum().item()
    assert math.isfinite(cross_entropy) and math.exp(cross_entropy) < len(multi)  # beats uniform


def test_heldout_ppl_reports_a_vocabulary_normalised_perplexity(zoo_path):
    """The bench's SpeLLM perplexity, recomputed from scratch: one forward, every head's
    log-softmax summed over each vocabulary token's row by a plain loop, log-softmax over the
    vocabulary, the true next token picked. The old bench (raw padded score) fails this."""
    from transformers import AutoModelForCausalLM

    from effeval.bench.spellm_real import heldout_ppl
    from effeval.methods.spellm.model import SpeLLMForCausalLM

    base_dir = zoo_path("llama-sp")
    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32).eval()
    spellm = SpeLLMForCausalLM.from_base(str(base_dir), k=8, seed=3).eval()
    tok = spellm.tokenizer
    text = "The quick brown fox jumps over the lazy dog. " * 3
    ids = tok.encode(text, add_special_tokens=False)[:24]
    out = heldout_ppl(spellm, base, tok, text, window=24, max_tokens=24)

    rows = spellm.codec.rows()
    with torch.no_grad():
        lp, _ = spellm(torch.tensor([ids]))
        base_lp = torch.log_softmax(base(input_ids=torch.tensor([ids])).logits[0].double(), -1)
    nll = base_nll = 0.0
    for pos in range(len(ids) - 1):
        head = lp[0, pos].double()
        scores = sum(head[j][rows[:, j]] for j in range(spellm.k))
        nll -= torch.log_softmax(scores, -1)[ids[pos + 1]].item()
        base_nll -= base_lp[pos, ids[pos + 1]].item()
    n = len(ids) - 1
    assert out["tokens"] == n
    assert out["vocab"]["spellm_ppl"] == pytest.approx(math.exp(nll / n), rel=1e-4)
    assert out["vocab"]["ppl_ratio"] == pytest.approx(math.exp((nll - base_nll) / n), rel=1e-4)
    assert out["padded"]["spellm_ppl"] > out["vocab"]["spellm_ppl"]
