"""SLEM (string-level exact match; Timor et al. 2025, "universal assisted generation").

Each step: the drafter continues the *text* in its own vocabulary (greedy, ``num_draft_tokens``
drafter tokens); the draft's bytes are re-tokenized by the target **in context**
(``Vocab.continuation_ids``); one target pass scores all draft positions; the target makes its
own choice at each position (argmax, or its own sample when sampling) and the draft is kept
while it equals that choice; the target's choice at the first mismatch (or after a fully
accepted draft) is appended. Every emitted token is the target's own choice given the same
prefix, so the output equals AR's: token-identical when greedy, the same law when sampling.

Boundary cases: a draft that does not start with the pending bytes of an incomplete UTF-8
character is dropped; a draft ending mid-character is cut at the last complete character
before re-tokenization (then greedy longest-match is the fallback); merges across the context
boundary fall back to longest-match too. None of this can change the output, only acceptance.
"""

from __future__ import annotations

import time

from effeval.methods.hetero_spec.common import GenerationResult, SamplingConfig, SpecStats
from effeval.methods.hetero_spec.decoding import (
    CachedLM,
    Stopper,
    as_coins,
    choose,
    prompt_text,
    record_overhead,
)
from effeval.methods.hetero_spec.vocab import DrafterContext, Vocab


def draft_text(drafter_lm: CachedLM, drafter_vocab: Vocab, context_ids: list[int], k: int) -> bytes:
    """Greedy drafter continuation of ``k`` tokens, as bytes (stops at a control token)."""
    ids, out = list(context_ids), bytearray()
    for _ in range(k):
        token = int(drafter_lm.next_logits(ids, 1)[0].argmax().item())
        piece = drafter_vocab.bytes[token] if token < len(drafter_vocab.bytes) else None
        if piece is None:  # EOS or another control token: the drafter's text ends here
            break
        out += piece
        ids.append(token)
    return bytes(out)


def generate(
    target,
    target_tok,
    drafter,
    drafter_tok,
    prompt_ids,
    config: SamplingConfig,
    *,
    num_draft_tokens: int = 5,
    generator=None,
) -> GenerationResult:
    started = time.perf_counter()
    coins = as_coins(generator)
    stats = SpecStats()
    t_vocab, d_vocab = Vocab.of(target_tok), Vocab.of(drafter_tok)
    stopper = Stopper(config, t_vocab)
    target_lm, drafter_lm = CachedLM(target), CachedLM(drafter)
    d_context = DrafterContext(d_vocab, prompt_text(target_tok, prompt_ids))
    ids = list(prompt_ids)
    while not stopper.done:
        d_ids, pending = d_context.update(stopper.data)
        drafted = draft_text(drafter_lm, d_vocab, d_ids, num_draft_tokens)
        if pending and not drafted.startswith(pending):
            drafted = b""  # the drafter did not finish the pending character: nothing usable
        drafted = drafted[len(pending) :]  # the pending bytes are already in the target's context
        proposal = t_vocab.continuation_ids(ids, drafted) if drafted else []
        rows = target_lm.next_logits(ids + proposal, len(proposal) + 1)
        accepted = 0
        for i in range(len(proposal) + 1):
            token = choose(rows[i], config, coins)
            stopper.push(token)
            ids.append(token)
            matched = i < len(proposal) and token == proposal[i]
            accepted += matched
            if stopper.done or not matched:
                break
        stats.drafted += len(proposal)
        stats.accepted += accepted
        stats.accepted_lengths.append(accepted)
    stats.target_calls, stats.drafter_calls = target_lm.calls, drafter_lm.calls
    record_overhead(stats, started, target_lm.forward_s + drafter_lm.forward_s, d_context)
    return stopper.result(stats, started)
