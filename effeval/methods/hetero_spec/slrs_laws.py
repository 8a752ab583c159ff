"""Exact output laws of SLRS by enumeration (tests and docs).

``ReplayCoins`` follows a fixed prefix of random choices and then reports the law of the next
one; ``enumerate_law`` replays a run depth-first over every branch, so the law of SLRS's real
decoding loop on small, known models comes out exactly (no sampling error). ``ReplayCoins``
answers ``draw_residual`` in one step with the residual's exact law (the rejection loop itself
has unbounded depth).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from effeval.methods.hetero_spec.common import SamplingConfig
from effeval.methods.hetero_spec.slrs import DEFAULT_MAX_DP_STATES, SLRSDecoder
from effeval.methods.hetero_spec.vocab import DrafterVocab, TargetVocab


class _Branch(Exception):
    def __init__(self, outcomes):
        self.outcomes = outcomes


class ReplayCoins:
    """Follows a fixed prefix of choices, then raises ``_Branch`` with the next choice's law."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.pos = 0

    def _pick(self, outcomes: Callable[[], list]):
        # Outcomes are built only where the run branches: replaying a prefix costs no law.
        if self.pos < len(self.prefix):
            self.pos += 1
            return self.prefix[self.pos - 1]
        raise _Branch(outcomes())

    def categorical(self, probs) -> int:
        def outcomes():
            total = float(probs.sum())
            return [(int(i), float(probs[i]) / total) for i in probs.nonzero().flatten()]

        return self._pick(outcomes)

    def accept(self, prob: float) -> bool:
        prob = min(max(prob, 0.0), 1.0)
        return self._pick(lambda: [(True, prob), (False, 1.0 - prob)])

    def residual(self, p, q_of) -> int:
        # The exact law of decoding.draw_residual's rejection loop: ∝ p(v) max(0, 1 - q(v)/p(v)).
        def outcomes():
            weights = {}
            for v in p.nonzero().flatten().tolist():
                w = float(p[v]) * max(0.0, 1.0 - q_of(v) / float(p[v]))
                if w > 0:
                    weights[v] = w
            z = sum(weights.values())
            return [(v, w / z) for v, w in weights.items()]

        return self._pick(outcomes)


def enumerate_law(run: Callable[[object], object], min_branch_prob: float = 0.0) -> dict:
    """Exact law of ``run(coins)``'s result over all its random choices (depth-first replay)."""
    law: dict = {}
    stack = [((), 1.0)]
    while stack:
        prefix, prob = stack.pop()
        try:
            outcome = run(ReplayCoins(prefix))
        except _Branch as branch:
            for value, w in branch.outcomes:
                if w > 0 and prob * w > min_branch_prob:
                    stack.append((prefix + (value,), prob * w))
            continue
        law[outcome] = law.get(outcome, 0.0) + prob
    return law


def log_probs(probs):
    import torch

    p = torch.as_tensor(probs, dtype=torch.float64)
    return torch.where(p > 0, p.clamp_min(1e-300).log(), torch.full_like(p, float("-inf")))


def exact_output_law(
    target_prob_fn: Callable[[tuple[int, ...]], Sequence[float]],
    drafter_prob_fn: Callable[[tuple[int, ...]], Sequence[float]],
    target_token_bytes: Sequence[bytes | None],
    drafter_token_bytes: Sequence[bytes | None],
    *,
    prompt: Sequence[int] = (),
    n_tokens: int = 1,
    num_draft_tokens: int = 1,
    eos_ids: Sequence[int] = (),
    drafter_eos_ids: Sequence[int] = (),
    drafter_root_fn: Callable[[tuple[int, ...]], tuple[int, ...]] | None = None,
    config: SamplingConfig | None = None,
    max_dp_states: int = DEFAULT_MAX_DP_STATES,
    drafter_top_k: int = 0,
    canonical_pairs: bool = True,
    decoder_cls: type = SLRSDecoder,
    reuse_trees: bool = True,
    **draft_options,
) -> dict[tuple[int, ...], float]:
    """EXACT law of the first ``n_tokens`` emitted by SLRS (tuples; shorter when EOS comes first),
    by enumerating every random choice of the real decoding loop on small, known models:
    ``target_prob_fn(context ids) -> probs over target ids`` (raw; ``config`` processes them like
    real logits), ``drafter_prob_fn(drafter ids) -> probs over drafter ids``. ``reuse_trees``
    shares each round's drafter conditionals across the replays (fast); the DP budget then counts
    the states of all replays together, so a law that exercises ``max_dp_states`` passes False.
    ``draft_options`` (``draft_confidence``, ``draft_schedule``) go to the decoder."""
    import torch

    config = config or SamplingConfig(do_sample=True)
    tv = TargetVocab(target_token_bytes, eos_ids)
    dv = DrafterVocab(drafter_token_bytes, drafter_eos_ids)
    root_fn = drafter_root_fn or (lambda ctx: ())

    target_memo: dict = {}

    def target_logits(context, proposals):
        key = (tuple(context), tuple(proposals))
        if key not in target_memo:
            seq = list(context) + list(proposals)
            rows = [log_probs(target_prob_fn(tuple(seq[:j]))) for j in range(len(context), len(seq) + 1)]
            target_memo[key] = torch.stack(rows)
        return target_memo[key]

    def drafter_logits(seqs):
        return torch.stack([log_probs(drafter_prob_fn(tuple(s))) for s in seqs])

    dec = decoder_cls(
        tv,
        dv,
        config,
        target_logits,
        lambda ctx: tuple(root_fn(tuple(ctx))),
        drafter_logits,
        num_draft_tokens=num_draft_tokens,
        max_dp_states=max_dp_states,
        drafter_top_k=drafter_top_k,
        canonical_pairs=canonical_pairs,
        **draft_options,
    )
    dec.tree_cache = {} if reuse_trees else None

    def run(coins):
        return tuple(dec.decode(list(prompt), coins, n_tokens))

    return enumerate_law(run)


def slrs_step_distribution(
    p: Sequence[float],
    drafter_conditional_fn: Callable[[tuple[int, ...]], Sequence[float]],
    target_token_bytes: Sequence[bytes | None],
    drafter_token_bytes: Sequence[bytes | None],
    *,
    eos_id: int | None = None,
    drafter_eos_id: int | None = None,
) -> list[float]:
    """EXACT law of the token one SLRS step emits when the target's distribution is ``p`` and the
    drafter's conditionals after a drafter path are ``drafter_conditional_fn(path)``."""
    law = exact_output_law(
        lambda ctx: p,
        drafter_conditional_fn,
        target_token_bytes,
        drafter_token_bytes,
        n_tokens=1,
        eos_ids=() if eos_id is None else (eos_id,),
        drafter_eos_ids=() if drafter_eos_id is None else (drafter_eos_id,),
    )
    out = [0.0] * len(p)
    for seq, prob in law.items():
        out[seq[0]] += prob
    return out
