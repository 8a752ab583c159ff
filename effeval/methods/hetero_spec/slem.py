"""SLEM (string-level exact match; Timor et al. 2025, "universal assisted generation").

Each step: the drafter continues the *text* in its own vocabulary (greedy, ``num_draft_tokens``
drafter tokens); the draft's bytes are re-tokenized by the target **in context**
(``Vocab.continuation_ids``); one target pass scores all draft positions; the target makes its
own choice at each position (argmax, or its own sample when sampling) and the draft is kept
while it equals that choice; the target's choice at the first mismatch (or after a fully
accepted draft) is appended. Every emitted token is the target's own choice given the same
prefix, so the output equals AR's: token-identical when greedy, the same law when sampling.

Draft length: ``num_draft_tokens`` every round, or adaptive (``decoding.DraftLength``: stop after
a drafted token whose drafter softmax probability is below ``draft_confidence``; transformers'
heuristic schedule). Any draft changes only acceptance, never the output.

Boundary cases: a draft that does not start with the pending bytes of an incomplete UTF-8
character is dropped; a draft ending mid-character is cut at the last complete character
before re-tokenization (then greedy longest-match is the fallback); merges across the context
boundary fall back to longest-match too. None of this can change the output, only acceptance.
"""

from __future__ import annotations

from effeval.methods.hetero_spec.common import GenerationResult
from effeval.methods.hetero_spec.config import default
from effeval.methods.hetero_spec.decoding import CachedLM, DecodeSession, DraftLength, algorithm, choose
from effeval.methods.hetero_spec.vocab import Vocab


def draft_text(
    drafter_lm: CachedLM, drafter_vocab: Vocab, context_ids: list[int], k: int, stop_after=None
) -> bytes:
    """Greedy drafter continuation of ``k`` tokens, as bytes (stops at a control token, or right
    after a token for which ``stop_after(its softmax probability)`` is true)."""
    import torch

    ids, out = list(context_ids), bytearray()
    for _ in range(k):
        logits = drafter_lm.next_logits(ids, 1)[0]
        token = int(logits.argmax().item())
        piece = drafter_vocab.bytes[token] if token < len(drafter_vocab.bytes) else None
        if piece is None:  # EOS or another control token: the drafter's text ends here
            break
        out += piece
        ids.append(token)
        if stop_after is not None and stop_after(float(torch.softmax(logits.float(), -1)[token])):
            break
    return bytes(out)


@algorithm
def generate(
    run: DecodeSession,
    num_draft_tokens: int,
    *,
    draft_confidence: float = default("draft_confidence"),
    draft_schedule: str = default("draft_schedule"),
) -> GenerationResult:
    config = run.config
    t_vocab = run.t_vocab
    length = DraftLength(num_draft_tokens, draft_schedule, draft_confidence)
    stop_after = length.stop_after if length.confidence > 0 else None
    while not run.stopper.done:
        d_ids, pending = run.d_context.update(run.stopper.data)
        drafted = draft_text(run.drafter_lm, run.d_vocab, d_ids, length.k, stop_after)
        if pending and not drafted.startswith(pending):
            drafted = b""  # the drafter did not finish the pending character: nothing usable
        drafted = drafted[len(pending) :]  # the pending bytes are already in the target's context
        proposal = t_vocab.continuation_ids(run.ids, drafted) if drafted else []
        rows = run.target_lm.next_logits(run.ids + proposal, len(proposal) + 1)
        run.verify(proposal, lambda i, rows=rows: choose(rows[i], config, run.coins))
        length.update(len(proposal), run.stats.accepted_lengths[-1])
    length.record(run.stats)
    return run.finish()
