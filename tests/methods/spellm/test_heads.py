"""Head log-probs sum exactly as defined; the greedy string is the exact argmax; sampling follows it."""

import itertools
import math

import pytest
import torch

from effeval.methods.spellm.alphabet import END, EOS, NUM_SYMBOLS
from effeval.methods.spellm.heads import best_rows, make_heads, sample_rows, string_logprob


def _hand_log_softmax(values):
    top = max(values)
    log_z = top + math.log(sum(math.exp(v - top) for v in values))
    return [v - log_z for v in values]


def test_string_logprob_matches_a_hand_computation():
    gen = torch.Generator().manual_seed(0)
    heads = make_heads(hidden_size=5, k=4)
    with torch.no_grad():
        heads.proj.weight.normal_(generator=gen)
        heads.proj.bias.normal_(generator=gen)
    hidden = torch.randn(3, 5, generator=gen)
    rows = torch.tensor([[104, 105, END, END], [EOS, END, END, END], [1, 2, 3, 4]])
    lp = heads(hidden)
    logits = (hidden.double() @ heads.proj.weight.double().t() + heads.proj.bias.double()).tolist()
    for n in range(3):
        per_head = [_hand_log_softmax(logits[n][j * NUM_SYMBOLS : (j + 1) * NUM_SYMBOLS]) for j in range(4)]
        padded = sum(per_head[j][rows[n, j]] for j in range(4))
        first_stop = next((j for j in range(4) if rows[n, j] >= 256), 3)
        terminated = sum(per_head[j][rows[n, j]] for j in range(first_stop + 1))
        assert string_logprob(lp[n], rows[n], "padded").item() == pytest.approx(padded, abs=1e-4)
        assert string_logprob(lp[n], rows[n], "terminated").item() == pytest.approx(terminated, abs=1e-4)


def _valid_strings(alphabet, k):
    """All valid rows over a small byte alphabet: length 1..k strings, and EOS."""
    out = [tuple([EOS] + [END] * (k - 1))]
    for length in range(1, k + 1):
        for chars in itertools.product(alphabet, repeat=length):
            out.append(tuple(chars) + (END,) * (k - length))
    return out


@pytest.mark.parametrize("mode", ["padded", "terminated"])
def test_best_rows_is_the_exact_argmax_over_valid_strings(mode):
    gen = torch.Generator().manual_seed(1)
    k, alphabet = 3, (65, 66, 67)
    logits = torch.full((20, k, NUM_SYMBOLS), -1e4)
    allowed = list(alphabet) + [END, EOS]
    logits[:, :, allowed] = torch.randn(20, k, len(allowed), generator=gen) * 3
    lp = torch.log_softmax(logits, -1)
    candidates = torch.tensor(_valid_strings(alphabet, k))
    rows, scores = best_rows(lp, mode)
    for n in range(20):
        all_scores = string_logprob(lp[n].expand(len(candidates), k, NUM_SYMBOLS), candidates, mode)
        best = int(all_scores.argmax())
        assert rows[n].tolist() == candidates[best].tolist()
        assert scores[n].item() == pytest.approx(all_scores[best].item(), abs=1e-4)


def test_sampling_follows_the_scoring_distribution_over_valid_strings():
    gen = torch.Generator().manual_seed(2)
    k, alphabet = 2, (65, 66)
    logits = torch.full((1, k, NUM_SYMBOLS), -1e4)
    allowed = list(alphabet) + [END, EOS]
    logits[:, :, allowed] = torch.randn(1, k, len(allowed), generator=gen)
    lp = torch.log_softmax(logits, -1)
    candidates = _valid_strings(alphabet, k)
    probs = torch.softmax(
        string_logprob(lp[0].expand(len(candidates), k, NUM_SYMBOLS), torch.tensor(candidates), "padded"), 0
    )
    n = 20000
    draws = sample_rows(lp.expand(n, k, NUM_SYMBOLS), torch.Generator().manual_seed(3), "padded")
    counts = {c: 0 for c in candidates}
    for row in draws.tolist():
        counts[tuple(row)] += 1
    for c, p in zip(candidates, probs.tolist()):
        sd = math.sqrt(p * (1 - p) / n)
        assert abs(counts[c] / n - p) <= 5 * sd + 1e-9  # 5 standard errors: false alarm < 1e-6 per string
