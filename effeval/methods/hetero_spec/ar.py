"""AR: plain target decoding with a KV cache, one target forward per token. The baseline every
speculative method must reproduce; it shares their stopping and statistics code path."""

from __future__ import annotations

import time

from effeval.methods.hetero_spec.common import GenerationResult, SamplingConfig, SpecStats
from effeval.methods.hetero_spec.decoding import CachedLM, Stopper, as_coins, choose, record_overhead
from effeval.methods.hetero_spec.vocab import Vocab


def generate(
    target,
    target_tok,
    drafter,
    drafter_tok,
    prompt_ids,
    config: SamplingConfig,
    *,
    num_draft_tokens: int = 0,
    generator=None,
) -> GenerationResult:
    """Decode with the target alone (``drafter``/``num_draft_tokens`` are ignored)."""
    started = time.perf_counter()
    coins = as_coins(generator)
    stats = SpecStats()
    stopper = Stopper(config, Vocab.of(target_tok))
    lm = CachedLM(target)
    ids = list(prompt_ids)
    while not stopper.done:
        token = choose(lm.next_logits(ids, 1)[0], config, coins)
        stopper.push(token)
        ids.append(token)
    stats.target_calls = lm.calls
    record_overhead(stats, started, lm.forward_s)
    return stopper.result(stats, started)
