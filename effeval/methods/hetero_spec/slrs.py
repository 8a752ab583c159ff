"""SLRS: string-level rejection sampling (Timor et al., ICML 2025, arXiv 2502.05202), exact.

The drafter and the target have different vocabularies, so the proposal is made at the level
of *bytes*: the drafter generates a byte stream S (its tokens' bytes); the proposed target
token is T(S) = the longest target token that is a prefix of S (EOS when the drafter stops
before any byte). Its probability q(t) = P(T(S) = t) is computed EXACTLY:

    psi(x)  = P(x is a prefix of S)             (a sum over EVERY drafter token path, canonical
                                                  or not, that spells a string starting with x)
    q(t)    = psi(t) - sum_{t' in ext(t)} psi(t')   (ext(t): minimal target tokens extending t;
                                                  the events {t' prefix of S} are disjoint)

then t is accepted with probability min(1, p(t)/q(t)); on rejection the residual
(p - q)+ / sum (p - q)+ is sampled by rejection from p (draw v ~ p, keep it with probability
max(0, 1 - q(v)/p(v))), which needs q only at drawn tokens. The emitted token's law is p.

Several tokens per target pass: the drafter keeps generating ONE byte stream; the i-th proposal
is T of the stream after the bytes of proposals 1..i-1, and its q_i is computed exactly
conditional on the drafter path drafted so far (which the drafting rule makes a stopping time),
so every proposal is verified against its exact proposal law. All proposals are checked with one
target forward; the first rejection ends the round (residual token), otherwise a bonus token is
drawn from the target. Greedy (``do_sample=False``): both laws are point masses, so the step
reduces to "accept iff the proposal is the target's argmax, else emit the argmax" — token-for-
token plain argmax decoding — and no q is computed.

The drafter's proposal law is its processed softmax restricted to its top ``drafter_top_k``
and, by default, to *canonical pairs* (no token right after one it would have merged with);
any such law keeps SLRS exact because q is computed from the same numbers, and both prune the DP
(without canonical pairs, whitespace runs make it exponential).

The cost is SLRS's known weakness: q needs drafter conditionals at every path prefix of the
strings involved (``dp_states``; one drafter forward row each, batched per DP level). A round
whose DP needs more than ``max_dp_states`` states is refused with a ConfigError rather than
approximated, as are vocabularies where T(S) can be undefined (a byte that the drafter can emit
is not a single-byte target token). See docs/hetero_spec.md, section "SLRS".

All randomness goes through the package's one interface, ``decoding.Coins`` (``accept``,
``categorical``, and ``draw_residual`` on top of them), so the same code runs with a seeded
``torch.Generator`` or is enumerated branch by branch to get its EXACT output law
(``slrs_laws.exact_output_law``, ``slrs_laws.slrs_step_distribution``).

Layout: this module is the decoding loop (``SLRSDecoder``) and its transformers front
(``generate``); the exact DP lives in ``slrs_dp``, the string views of both vocabularies in
``vocab`` (``TargetVocab``, ``DrafterVocab``), exact law enumeration in ``slrs_laws``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

from effeval.errors import ConfigError
from effeval.methods.hetero_spec import config as settings
from effeval.methods.hetero_spec.common import GenerationResult, SamplingConfig, SpecStats, target_probs
from effeval.methods.hetero_spec.decoding import (
    DecodeSession,
    DraftLength,
    algorithm,
    draw_residual,
    logits_size,
)
from effeval.methods.hetero_spec.slrs_dp import Conditional, DrafterTree, Stream
from effeval.methods.hetero_spec.vocab import DrafterVocab, TargetVocab

log = logging.getLogger(__name__)

# Defaults from hetero-spec's one config (``settings.HeteroSpecConfig``, where their reasons are).
DEFAULT_MAX_DP_STATES = settings.default("max_dp_states")
DEFAULT_DRAFTER_TOP_K = settings.default("drafter_top_k")
DEFAULT_CANONICAL_PAIRS = settings.default("canonical_pairs")
DEFAULT_DRAFT_CONFIDENCE = settings.default("draft_confidence")
DEFAULT_DRAFT_SCHEDULE = settings.default("draft_schedule")


def check_supported(tv: TargetVocab, dv: DrafterVocab) -> None:
    """T(S) must exist for every stream S: every byte the drafter can emit (anywhere inside a
    drafter token, since a leftover can start mid-token) must be a single-byte target token."""
    missing = sorted(c for c in dv.alphabet if bytes([c]) not in tv.canonical)
    if missing:
        shown = ", ".join(f"0x{c:02x}" for c in missing[:8]) + (" …" if len(missing) > 8 else "")
        raise ConfigError(
            f"algorithm=slrs: {len(missing)} byte(s) the drafter can produce ({shown}) are not single-byte "
            "tokens of the target vocabulary, so the longest target token that prefixes a drafted string is "
            "not always defined and q(t) would not be a distribution. Fix: use a target whose vocabulary has "
            "every byte (byte-level BPE or SentencePiece with byte fallback), or algorithm=slem/tli"
        )


class SLRSDecoder:
    """Model-agnostic SLRS loop.

    ``target_logits_fn(context_ids, proposals) -> [len(proposals)+1, V_t]`` (logits predicting
    each proposal and the token after them); ``drafter_root_fn(context_ids) -> tuple`` (the
    drafter's ids for the context); ``drafter_logits_fn(list of drafter id tuples) -> [n, V_d]``
    (next-token logits after each sequence).
    """

    def __init__(
        self,
        tv: TargetVocab,
        dv: DrafterVocab,
        config: SamplingConfig,
        target_logits_fn,
        drafter_root_fn,
        drafter_logits_fn,
        *,
        num_draft_tokens: int,
        max_dp_states: int = DEFAULT_MAX_DP_STATES,
        drafter_top_k: int = DEFAULT_DRAFTER_TOP_K,
        canonical_pairs: bool = DEFAULT_CANONICAL_PAIRS,
        stats: SpecStats | None = None,
        draft_confidence: float = DEFAULT_DRAFT_CONFIDENCE,
        draft_schedule: str = DEFAULT_DRAFT_SCHEDULE,
    ):
        for name, value in (
            ("num_draft_tokens", num_draft_tokens),
            ("max_dp_states", max_dp_states),
            ("drafter_top_k", drafter_top_k),
        ):
            settings.check(name, int(value))
        check_supported(tv, dv)
        self.tv, self.dv, self.config = tv, dv, config
        self.target_logits_fn = target_logits_fn
        self.drafter_root_fn = drafter_root_fn
        self.drafter_logits_fn = drafter_logits_fn
        self.k = int(num_draft_tokens)
        # Adaptive draft length. The confidence of proposal t is its exact proposal probability
        # q(t) (computed at draft time, from the drawn path only: a stopping time); greedy SLRS
        # drafts from a point mass (q = 1), so there only the schedule changes anything.
        self.length = DraftLength(num_draft_tokens, draft_schedule, draft_confidence)
        self.max_dp_states = int(max_dp_states)
        self.drafter_top_k = int(drafter_top_k)
        self.canonical_pairs = bool(canonical_pairs)
        self.stats = stats if stats is not None else SpecStats()
        self._allowed = dv.allowed_mask(with_eos=tv.proposal_eos is not None)
        self._eos = set(tv.eos_ids)
        # root -> DrafterTree shared across runs; only exact enumeration sets it (its replays
        # revisit the same deterministic states thousands of times).
        self.tree_cache: dict | None = None

    def drafter_conds(self, rows, prevs=None) -> list[Conditional]:
        """The drafter's proposal conditionals for a batch of logits rows: processed like the
        target (temperature, top-k, top-p) over the tokens the stream can use, restricted to the
        drafter's own top ``drafter_top_k`` (0 = all); a point mass on its argmax when greedy.
        With ``canonical_pairs``, token d may not follow the path's previous token a (``prevs``)
        when bytes(a)+bytes(d) is itself a drafter token (a tokenizer would have merged them).
        Whatever this law is, q is computed from these very numbers, so SLRS stays exact."""
        import torch

        x = torch.stack(list(rows)) if not torch.is_tensor(rows) else rows
        x = x.detach().to("cpu", torch.float32)
        x = x.masked_fill(~self._allowed[: x.shape[-1]], float("-inf"))
        if self.canonical_pairs and prevs is not None:
            x = x.clone()
            for j, prev in enumerate(prevs):
                banned = self.dv.mergeable_after(prev) if prev is not None else ()
                if banned:
                    row = x[j].index_fill(0, torch.tensor(banned, dtype=torch.long), float("-inf"))
                    if torch.isfinite(row).any():  # never ban every token: keep the row as it was
                        x[j] = row
        if not self.config.do_sample:
            best = torch.argmax(x, dim=-1)
            return [
                Conditional(self.dv, torch.tensor([int(i)]), torch.ones(1, dtype=torch.float64)) for i in best
            ]
        if self.drafter_top_k:
            vals, ids = torch.topk(x, min(self.drafter_top_k, x.shape[-1]), dim=-1)
            probs = target_probs(vals, self.config)
        else:
            ids, probs = None, target_probs(x, self.config)
        out = []
        for j in range(x.shape[0]):
            pr = probs[j]
            total = float(pr.sum())
            if not math.isfinite(total) or total <= 0:  # processing removed every usable token
                pr = torch.softmax((vals[j] if ids is not None else x[j]).to(torch.float64), -1)
                total = float(pr.sum())
            out.append(Conditional(self.dv, None if ids is None else ids[j], pr / total))
        return out

    def _round(self, context: list[int], coins, budget: int) -> tuple[list[int], bool]:
        """One target pass: draft ≤ k proposals, verify; (emitted tokens (≥ 1), whether the exact
        DP went over ``max_dp_states``)."""
        import torch

        root = tuple(self.drafter_root_fn(context))
        if self.tree_cache is None:
            tree = DrafterTree(self, root)
        else:
            tree = self.tree_cache.get(root) or self.tree_cache.setdefault(root, DrafterTree(self, root))
        state = Stream()
        proposals, states = [], []
        for _ in range(min(self.length.k, budget)):
            t, nxt = tree.draft(state, coins)
            proposals.append(t)
            states.append(state)
            if t in self._eos:
                break
            if (
                self.length.confidence > 0
                and self.config.do_sample
                and self.length.stop_after(tree.q(state, t))
            ):
                break
            state = nxt
        logits = self.target_logits_fn(context, proposals)
        self.stats.target_calls += 1
        self.stats.drafted += len(proposals)
        out: list[int] = []
        accepted = 0
        for i, t in enumerate(proposals):
            row = logits[i]
            if not self.config.do_sample:
                best = int(torch.argmax(row))
                out.append(best)
                if best != t:
                    break
            else:
                p = target_probs(row.detach().to("cpu"), self.config)
                qt = tree.q(states[i], t)
                if qt <= 0:  # a drawn proposal has q > 0; anything else is a bug, not noise
                    raise RuntimeError(f"SLRS internal error: proposal {t} drawn with q=0")
                if coins.accept(min(1.0, float(p[t]) / qt)):
                    out.append(t)
                else:
                    st = states[i]
                    out.append(draw_residual(coins, p, lambda v, st=st: tree.q(st, v)))
                    break
            accepted += 1
            if t in self._eos or len(out) >= budget:
                break
        else:
            if len(out) < budget:  # all accepted: the target's own next token comes free
                row = logits[len(proposals)]
                if self.config.do_sample:
                    out.append(coins.categorical(target_probs(row.detach().to("cpu"), self.config)))
                else:
                    out.append(int(torch.argmax(row)))
        self.stats.accepted += accepted
        self.stats.accepted_lengths.append(accepted)
        self.length.update(len(proposals), accepted)
        self.length.record(self.stats)
        ex = self.stats.extra
        ex["dp_states"] = ex.get("dp_states", 0) + len(tree.cond)
        ex["dp_states_max_per_step"] = max(ex.get("dp_states_max_per_step", 0), len(tree.cond))
        ex["drafter_batches"] = ex.get("drafter_batches", 0) + tree.batches
        if tree.over_budget:
            ex["dp_budget_overruns"] = ex.get("dp_budget_overruns", 0) + 1
        return out, tree.over_budget

    def _target_only(self, context: list[int], coins) -> int:
        """One token from the target alone: the lossless step taken for the position after a
        round whose exact DP went over ``max_dp_states`` (decided from the history only, before
        any drafter randomness of this position, so the emitted law stays the target's)."""
        import torch

        row = self.target_logits_fn(context, [])[0]
        self.stats.target_calls += 1
        ex = self.stats.extra
        ex["dp_budget_fallbacks"] = ex.get("dp_budget_fallbacks", 0) + 1
        if self.config.do_sample:
            return coins.categorical(target_probs(row.detach().to("cpu"), self.config))
        return int(torch.argmax(row))

    def decode(self, prompt_ids: Sequence[int], coins, max_new_tokens: int, push=None) -> list[int]:
        """Generate up to ``max_new_tokens`` tokens. ``push(token) -> bool`` (e.g. a Stopper's)
        sees every emitted token in order and ends generation by returning True; without it,
        generation ends at EOS. Returns the emitted tokens (a final EOS included)."""
        context = list(prompt_ids)
        generated: list[int] = []
        over_budget = False
        self.length.reset()  # the schedule starts afresh with every generation (and law replay)
        while len(generated) < max_new_tokens:
            if over_budget:
                emitted, over_budget = [self._target_only(context + generated, coins)], False
            else:
                emitted, over_budget = self._round(
                    context + generated, coins, max_new_tokens - len(generated)
                )
            for tok in emitted:
                generated.append(tok)
                if push(tok) if push is not None else tok in self._eos:
                    return generated
                if len(generated) >= max_new_tokens:
                    break
        return generated


@algorithm
def generate(
    run: DecodeSession,
    num_draft_tokens: int,
    *,
    max_dp_states: int = DEFAULT_MAX_DP_STATES,
    drafter_top_k: int = DEFAULT_DRAFTER_TOP_K,
    canonical_pairs: bool = DEFAULT_CANONICAL_PAIRS,
    draft_confidence: float = DEFAULT_DRAFT_CONFIDENCE,
    draft_schedule: str = DEFAULT_DRAFT_SCHEDULE,
    drafter_batch_size: int = 64,
) -> GenerationResult:
    """SLRS decoding of one prompt with transformers models (batch size 1)."""
    import torch

    config, target_tok, drafter_tok, drafter = run.config, run.target_tok, run.drafter_tok, run.drafter
    if run.stopper.done:
        return run.finish()
    target_lm, drafter_lm = run.target_lm, run.drafter_lm
    tv = TargetVocab.of(target_tok, logits_size(run.target), tuple(config.eos_token_ids))
    d_eos = (drafter_tok.eos_token_id,) if drafter_tok.eos_token_id is not None else ()
    dv = DrafterVocab.of(drafter_tok, logits_size(drafter), d_eos)
    keep_one = {"logits_to_keep": 1} if drafter_lm.keeps_logits else {}

    def target_logits(context, proposals):
        # KV-cached like AR/SLEM/TLI (the cache is cropped back after rejections).
        return target_lm.next_logits(list(context) + list(proposals), len(proposals) + 1).cpu()

    # The drafter sees the context as its own tokenizer writes it (any deterministic choice keeps
    # SLRS exact; this one keeps the drafter in distribution), updated per round from the new
    # target tokens' bytes with a look-behind window instead of re-encoding the whole context.
    t_bytes = run.t_vocab.bytes
    seen = {"tokens": len(run.prompt_ids), "data": bytearray()}

    def drafter_root(context):
        for token in context[seen["tokens"] :]:
            seen["data"] += (t_bytes[token] if 0 <= token < len(t_bytes) else None) or b""
        seen["tokens"] = len(context)
        return tuple(run.d_context.update(seen["data"])[0])

    def drafter_logits(seqs):
        if len(seqs) == 1:  # drafting along one path: KV cache, cropped where the path changes
            return [drafter_lm.next_logits(list(seqs[0]), 1)[0].float().cpu()]
        # A DP level: equal lengths batch without padding (no cache; the rows share only the root).
        out = [None] * len(seqs)
        by_len: dict[int, list[int]] = {}
        for i, s in enumerate(seqs):
            by_len.setdefault(len(s), []).append(i)
        for idxs in by_len.values():
            for j in range(0, len(idxs), drafter_batch_size):
                chunk = idxs[j : j + drafter_batch_size]
                ids = torch.tensor([list(seqs[i]) for i in chunk], device=drafter_lm.device)
                batch_started = time.perf_counter()
                with torch.no_grad():
                    rows = drafter(input_ids=ids, **keep_one).logits[:, -1].float().cpu()
                run.extra_forward_s += time.perf_counter() - batch_started
                run.extra_drafter_calls += 1
                for i, row in zip(chunk, rows):
                    out[i] = row
        return out

    dec = SLRSDecoder(
        tv,
        dv,
        config,
        target_logits,
        drafter_root,
        drafter_logits,
        num_draft_tokens=num_draft_tokens,
        max_dp_states=max_dp_states,
        drafter_top_k=drafter_top_k,
        canonical_pairs=canonical_pairs,
        stats=run.stats,
        draft_confidence=draft_confidence,
        draft_schedule=draft_schedule,
    )
    dec.decode(run.prompt_ids, run.coins, config.max_new_tokens, push=run.stopper.push)
    result = run.finish()
    rounds = len(result.stats.accepted_lengths)
    if rounds:
        result.stats.extra["dp_states_per_step"] = result.stats.extra.get("dp_states", 0) / rounds
        result.stats.extra["drafter_calls_per_step"] = result.stats.drafter_calls / rounds
    return result
