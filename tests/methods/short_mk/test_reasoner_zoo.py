"""The reasoner's data is deterministic and checkable; its compact-vocabulary training transfers
exactly to the full 32k vocabulary (the trained distribution is the saved model's distribution)."""

import math
import random

import torch

from effeval.methods.short_mk.answers import find_boxed
from effeval.zoo import reasoner as R


def test_data_is_deterministic_and_answers_check():
    assert R.training_texts(20, 5) == R.training_texts(20, 5) != R.training_texts(20, 6)
    rng = random.Random(0)
    for _ in range(200):
        start, ops, answer = R.make_problem(rng)
        total = start
        for op, x in ops:
            total = total + x if op == "+" else total - x
        assert total == answer and 0 <= total
        chain, reached = R.make_chain(rng, start, ops)
        assert find_boxed(chain) == str(reached) and "</think>" in chain


def test_compact_training_transfers_exactly_to_the_full_vocabulary():
    from transformers import LlamaConfig, LlamaForCausalLM

    vocab, used = 50, [0, 3, 7, 8, 20, 41]
    cfg = dict(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    compact = LlamaForCausalLM(LlamaConfig(vocab_size=len(used) + 1, **cfg)).eval()
    full = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, **cfg))
    R.expand_compact(compact, full, used)
    local = torch.tensor([[1, 4, 2, 5]])  # compact ids of used tokens 3, 20, 7, 41
    with torch.no_grad():
        compact_logits = compact(input_ids=local).logits
        compact_logits[..., -1] += math.log(vocab - len(used))  # the "other" row stands for all unused tokens
        expected = torch.log_softmax(compact_logits, -1)
        got = torch.log_softmax(full(input_ids=torch.tensor(used)[local]).logits, -1)
    assert torch.allclose(got[..., used], expected[..., :-1], atol=1e-5)
    unused = [t for t in range(vocab) if t not in used]
    assert torch.allclose(torch.logsumexp(got[..., unused], -1), expected[..., -1], atol=1e-5)
