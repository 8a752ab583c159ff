"""AR: plain target decoding with a KV cache, one target forward per token. The baseline every
speculative method must reproduce; it shares their stopping and statistics code path."""

from __future__ import annotations

from effeval.methods.hetero_spec.common import GenerationResult
from effeval.methods.hetero_spec.decoding import DecodeSession, algorithm, choose


@algorithm
def generate(run: DecodeSession, num_draft_tokens: int) -> GenerationResult:
    """Decode with the target alone (the drafter and ``num_draft_tokens`` are ignored)."""
    config = run.config
    while not run.stopper.done:
        run.emit(choose(run.target_lm.next_logits(run.ids, 1)[0], config, run.coins))
    return run.finish()
