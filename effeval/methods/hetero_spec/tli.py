"""TLI (token-level intersection; Timor et al. 2025, "universal speculative decoding").

The drafter's processed distribution is restricted to the tokens both vocabularies share (same
bytes, ``vocab.Intersection``) and renormalised: ``q(t) = Σ_{d ↦ t} q_d(d) / Σ_{d shared} q_d(d)``
over target ids ``t``. Drafts are sampled from ``q`` (argmax when greedy), so every draft token is
already a target token; the target scores them in one pass and standard speculative sampling
runs in the target vocabulary: accept ``t`` with probability ``min(1, p(t)/q(t))``, else emit a
sample of the residual ``(p − q)₊ / Σ(p − q)₊`` and stop; after a fully accepted draft emit one
more sample of ``p``. That makes each emitted token's law exactly ``p`` (Leviathan et al. 2023),
whatever ``q`` is. Greedy: accept while the draft equals the target's argmax.

Each step starts from the drafter's own tokenization of the current text (the target may have
emitted tokens the drafter does not have); within a step, shared tokens are appended directly.
"""

from __future__ import annotations

from effeval.errors import ConfigError
from effeval.methods.hetero_spec.common import GenerationResult, SamplingConfig, target_probs
from effeval.methods.hetero_spec.config import default
from effeval.methods.hetero_spec.decoding import DecodeSession, DraftLength, algorithm, choose, logits_size
from effeval.methods.hetero_spec.vocab import Intersection


def shared_vocabulary(target_tok, drafter_tok) -> Intersection:
    """The intersection, or a ConfigError when the tokenizers share no token."""
    inter = Intersection.of(target_tok, drafter_tok)
    if len(inter) == 0:
        raise ConfigError(
            "algorithm=tli: the target and drafter tokenizers share no token (no drafter token stands for the "
            "same bytes as a target token), so TLI cannot draft. Fix: use algorithm=slem (works across any "
            "vocabularies) or a drafter whose vocabulary overlaps the target's"
        )
    return inter


def restricted_proposal(drafter_logits, config: SamplingConfig, inter: Intersection, target_size: int):
    """``q`` over target ids (float64), or ``None`` when the drafter puts no mass on shared tokens.
    Greedy: a one-hot on the drafter's argmax among the shared tokens."""
    import torch

    d_idx, _ = inter.tensors(drafter_logits.device)
    _, t_idx_cpu = inter.tensors("cpu")
    if config.do_sample:
        q_drafter = target_probs(drafter_logits, config)
    else:  # the drafter's argmax among shared tokens: a one-hot proposal
        masked = torch.full_like(drafter_logits, float("-inf"))
        masked[d_idx] = drafter_logits[d_idx]
        best = int(masked.argmax().item())
        q_drafter = torch.zeros_like(drafter_logits, dtype=torch.float64)
        q_drafter[best] = 1.0
    q = torch.zeros(target_size, dtype=torch.float64)
    q.index_add_(0, t_idx_cpu, q_drafter[d_idx].to("cpu", torch.float64))
    mass = q.sum()
    if not mass > 0:
        return None
    return q / mass


def greedy_confidence(drafter_logits, inter: Intersection) -> float:
    """The drafter's T=1 probability of its argmax among the shared tokens, renormalised over
    them (greedy drafting's point mass says nothing about how sure the drafter is)."""
    import torch

    d_idx, _ = inter.tensors(drafter_logits.device)
    return float(torch.softmax(drafter_logits[d_idx].float(), -1).max())


@algorithm
def generate(
    run: DecodeSession,
    num_draft_tokens: int,
    *,
    draft_confidence: float = default("draft_confidence"),
    draft_schedule: str = default("draft_schedule"),
) -> GenerationResult:
    config = run.config
    t_vocab, d_vocab, coins = run.t_vocab, run.d_vocab, run.coins
    inter = shared_vocabulary(run.target_tok, run.drafter_tok)
    target_size = logits_size(run.target)
    length = DraftLength(num_draft_tokens, draft_schedule, draft_confidence)
    while not run.stopper.done:
        d_ids, pending = run.d_context.update(run.stopper.data)
        d_ids = list(d_ids)  # extended with this step's draft below; the context keeps its own
        draft: list[int] = []
        proposals = []
        if not pending:
            for _ in range(length.k):
                d_logits = run.drafter_lm.next_logits(d_ids, 1)[0]
                q = restricted_proposal(d_logits, config, inter, target_size)
                if q is None:
                    break
                token = choose_from(q, config, coins)
                draft.append(token)
                proposals.append(q)
                # Continue the drafter with its own id for these bytes.
                d_ids.append(d_vocab.by_bytes[t_vocab.bytes[token]])
                if length.confidence > 0:
                    # the probability under the law the token was drawn from (greedy: the T=1 law)
                    prob = float(q[token]) if config.do_sample else greedy_confidence(d_logits, inter)
                    if length.stop_after(prob):
                        break
        rows = run.target_lm.next_logits(run.ids + draft, len(draft) + 1)

        def target_choice(i, rows=rows, draft=draft, proposals=proposals):
            if i == len(draft):  # the whole draft was accepted: one more token from the target
                return choose(rows[i], config, coins)
            if not config.do_sample:
                return int(rows[i].argmax().item())
            p = target_probs(rows[i], config).to("cpu")
            t, q = draft[i], proposals[i]
            if coins.accept(min(1.0, float(p[t] / q[t]))):
                return t
            residual = (p - q).clamp_min(0.0)
            total = residual.sum()
            # total > 0 whenever a rejection can happen (p ≠ q); float rounding aside.
            return coins.categorical(residual / total if total > 0 else p)

        run.verify(draft, target_choice)
        length.update(len(draft), run.stats.accepted_lengths[-1])
    length.record(run.stats)
    run.stats.extra["shared_tokens"] = len(inter)
    return run.finish()


def choose_from(q, config: SamplingConfig, coins) -> int:
    return int(q.argmax().item()) if not config.do_sample else coins.categorical(q)
