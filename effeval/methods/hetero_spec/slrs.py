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

All randomness goes through a *chooser* (``categorical``, ``bernoulli``, ``residual``), so the
same code runs with a seeded ``torch.Generator`` (``_SamplingChooser``) or is enumerated
branch by branch to get its EXACT output law (``exact_output_law``, ``slrs_step_distribution``).
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from effeval.errors import ConfigError

from .common import BYTE_FALLBACK, GenerationResult, SamplingConfig, SpecStats, target_probs, token_bytes

log = logging.getLogger(__name__)

DEFAULT_MAX_DP_STATES = 2048
# The drafter samples from its own top-50 (transformers' default generation top_k): the proposal
# is still exact (q is computed from the same truncated law) and most drafter paths get
# probability 0, which prunes the exact DP by orders of magnitude. 0 = the full distribution.
DEFAULT_DRAFTER_TOP_K = 50


# ----------------------------------------------------------------------------- vocabularies


class TargetVocab:
    """Target tokens as byte strings: canonical id per distinct string, prefixes, extensions."""

    def __init__(
        self,
        tbytes: Sequence[bytes | None],
        eos_ids: Sequence[int] = (),
        size: int | None = None,
        deprioritised: set[int] = frozenset(),
    ):
        size = max(size or 0, len(tbytes))
        self.token_bytes: list[bytes | None] = list(tbytes) + [None] * (size - len(tbytes))
        self.size = size
        # Several ids can spell the same bytes (SentencePiece "A" and "<0x41>"): the proposal maps
        # a string to ONE canonical id (q of the others is 0; the residual still reaches them).
        self.canonical: dict[bytes, int] = {}
        for idx, b in enumerate(self.token_bytes):
            if not b:
                continue
            old = self.canonical.get(b)
            if old is None or (old in deprioritised and idx not in deprioritised):
                self.canonical[b] = idx
        self.sorted_strings = sorted(self.canonical)
        self.max_len = max((len(b) for b in self.canonical), default=0)
        self.proper_prefixes = {b[:k] for b in self.canonical for k in range(len(b))}
        self.eos_ids = tuple(int(e) for e in eos_ids)
        self.proposal_eos = self.eos_ids[0] if self.eos_ids else None
        self._ext: dict[bytes, list[bytes]] = {}

    def longest_prefix_token(self, s: bytes) -> int:
        for k in range(min(len(s), self.max_len), 0, -1):
            idx = self.canonical.get(s[:k])
            if idx is not None:
                return idx
        raise AssertionError(f"no target token is a prefix of {s!r}")  # excluded by check_supported

    def extensions(self, t: bytes) -> list[bytes]:
        """ext(t): target strings t' that strictly extend t with no target string strictly between."""
        cached = self._ext.get(t)
        if cached is not None:
            return cached
        out = []
        i = bisect.bisect_right(self.sorted_strings, t)
        while i < len(self.sorted_strings) and self.sorted_strings[i].startswith(t):
            s = self.sorted_strings[i]
            if not any(s[:k] in self.canonical for k in range(len(t) + 1, len(s))):
                out.append(s)
            i += 1
        self._ext[t] = out
        return out


class DrafterVocab:
    """Drafter tokens as byte strings, sorted so that 'all tokens starting with y' is a slice."""

    def __init__(self, dbytes: Sequence[bytes | None], eos_ids: Sequence[int] = (), size: int | None = None):
        import torch

        size = max(size or 0, len(dbytes))
        self.token_bytes: list[bytes | None] = list(dbytes) + [None] * (size - len(dbytes))
        self.size = size
        self.eos_ids = tuple(int(e) for e in eos_ids if 0 <= int(e) < size)
        self.ids_by_bytes: dict[bytes, list[int]] = {}
        for idx, b in enumerate(self.token_bytes):
            if b:
                self.ids_by_bytes.setdefault(b, []).append(idx)
        byte_ids = sorted((i for i, b in enumerate(self.token_bytes) if b), key=lambda i: self.token_bytes[i])
        self.sorted_ids = torch.tensor(byte_ids, dtype=torch.long)
        self.sorted_bytes = [self.token_bytes[i] for i in byte_ids]
        self.pos_of_id = torch.full((size,), -1, dtype=torch.long)  # id -> index in sorted_bytes
        self.pos_of_id[self.sorted_ids] = torch.arange(len(byte_ids))
        self.max_len = max((len(b) for b in self.sorted_bytes), default=0)
        self.alphabet = {c for b in self.sorted_bytes for c in b}
        self._ranges: dict[bytes, tuple[int, int]] = {}
        self._mergeable: dict[int, list[int]] = {}
        self._masks: dict[bool, object] = {}

    def allowed_mask(self, with_eos: bool):
        """Tokens the proposal may use: those with bytes (empty/control tokens would never
        advance the stream), plus EOS when the target has one to map it to."""
        import torch

        cached = self._masks.get(with_eos)
        if cached is None:
            cached = torch.zeros(self.size, dtype=torch.bool)
            cached[self.sorted_ids] = True
            if with_eos and self.eos_ids:
                cached[list(self.eos_ids)] = True
            self._masks[with_eos] = cached
        return cached

    def mergeable_after(self, prev: int) -> list[int]:
        """Tokens d such that bytes(prev)+bytes(d) is itself a drafter token."""
        got = self._mergeable.get(prev)
        if got is None:
            a = self.token_bytes[prev] if 0 <= prev < self.size else None
            got = []
            if a:
                lo, hi = self.prefix_range(a)
                for s in self.sorted_bytes[lo:hi]:
                    if len(s) > len(a):
                        got.extend(self.ids_by_bytes.get(s[len(a) :], ()))
                got = sorted(set(got))
            self._mergeable[prev] = got
        return got

    def prefix_range(self, y: bytes) -> tuple[int, int]:
        """Slice of ``sorted_bytes`` holding exactly the tokens that start with ``y``."""
        r = self._ranges.get(y)
        if r is None:
            lo = bisect.bisect_left(self.sorted_bytes, y)
            hi = bisect.bisect_right(self.sorted_bytes, y + b"\xff" * (self.max_len + 1), lo)
            r = self._ranges[y] = (lo, hi)
        return r


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


# ----------------------------------------------------------------------------- choosers


class _SamplingChooser:
    """Real randomness from a seeded torch.Generator (float64 inverse-CDF sampling, so a draw's
    law is the float64 vector that q is computed from)."""

    def __init__(self, generator=None):
        self.generator = generator

    def uniform(self) -> float:
        import torch

        return float(torch.rand((), dtype=torch.float64, generator=self.generator))

    def categorical(self, probs) -> int:
        import torch

        cdf = probs.cumsum(0)
        idx = int(torch.searchsorted(cdf, self.uniform() * float(cdf[-1]), right=True))
        nonzero = torch.nonzero(probs > 0)
        last = int(nonzero[-1]) if len(nonzero) else len(probs) - 1
        return min(idx, last)

    def bernoulli(self, prob: float) -> bool:
        return self.uniform() < prob

    def residual(self, p, q_of: Callable[[int], float]) -> int:
        # Rejection from p: P(keep v) = max(0, 1 - q(v)/p(v)) -> law ∝ (p - q)+.
        while True:
            v = self.categorical(p)
            keep = 1.0 - q_of(v) / float(p[v])
            if keep > 0 and self.uniform() < keep:
                return v


class _CoinsChooser(_SamplingChooser):
    """Adapter for the shared ``Coins`` interface (``accept``, ``categorical``) of decoding.py."""

    def __init__(self, coins):
        self.coins = coins

    def categorical(self, probs) -> int:
        return int(self.coins.categorical(probs))

    def bernoulli(self, prob: float) -> bool:
        return bool(self.coins.accept(prob))

    def residual(self, p, q_of) -> int:
        if hasattr(self.coins, "residual"):
            return self.coins.residual(p, q_of)
        while True:
            v = self.categorical(p)
            if self.bernoulli(max(0.0, 1.0 - q_of(v) / float(p[v]))):
                return v


def _as_chooser(generator):
    """A chooser from ``None``/a ``torch.Generator``, a chooser, or a ``Coins``-like object."""
    if generator is not None and hasattr(generator, "residual") and hasattr(generator, "bernoulli"):
        return generator
    if generator is not None and hasattr(generator, "categorical") and hasattr(generator, "accept"):
        return _CoinsChooser(generator)
    return _SamplingChooser(generator)


class _Branch(Exception):
    def __init__(self, outcomes):
        self.outcomes = outcomes


class _ReplayChooser:
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

    def bernoulli(self, prob: float) -> bool:
        prob = min(max(prob, 0.0), 1.0)
        return self._pick(lambda: [(True, prob), (False, 1.0 - prob)])

    def residual(self, p, q_of) -> int:
        # The exact law of _SamplingChooser.residual's loop: ∝ p(v) max(0, 1 - q(v)/p(v)).
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
    """Exact law of ``run(chooser)``'s result over all its random choices (depth-first replay)."""
    law: dict = {}
    stack = [((), 1.0)]
    while stack:
        prefix, prob = stack.pop()
        try:
            outcome = run(_ReplayChooser(prefix))
        except _Branch as branch:
            for value, w in branch.outcomes:
                if w > 0 and prob * w > min_branch_prob:
                    stack.append((prefix + (value,), prob * w))
            continue
        law[outcome] = law.get(outcome, 0.0) + prob
    return law


# ----------------------------------------------------------------------------- the drafter tree


class _Cond:
    """One drafter conditional: dense over the vocabulary (``ids is None``) or sparse (its
    non-zero ids only). float64, summing to 1; sampling and the DP both read these numbers."""

    __slots__ = ("ids", "probs", "_lookup", "_pos")

    def __init__(self, dv: DrafterVocab, ids, probs):
        self.ids, self.probs = ids, probs
        if ids is not None:
            keep = probs > 0
            self.ids, self.probs = ids[keep], probs[keep]
            self._lookup = dict(zip(self.ids.tolist(), self.probs.tolist()))
            self._pos = dv.pos_of_id[self.ids]

    def prob(self, d: int) -> float:
        if self.ids is None:
            return float(self.probs[d])
        return self._lookup.get(d, 0.0)

    def prefix_mass(self, dv: DrafterVocab, y: bytes) -> float:
        """Mass of the drafter tokens whose bytes start with ``y``."""
        lo, hi = dv.prefix_range(y)
        if hi <= lo:
            return 0.0
        if self.ids is None:
            return float(self.probs[dv.sorted_ids[lo:hi]].sum())
        return float(self.probs[(self._pos >= lo) & (self._pos < hi)].sum())

    def sample(self, chooser) -> int:
        if self.ids is None:
            return chooser.categorical(self.probs)
        if len(self.ids) == 1:  # a point mass (greedy): no randomness consumed
            return int(self.ids[0])
        return int(self.ids[chooser.categorical(self.probs)])


@dataclass(frozen=True)
class _Stream:
    """Where the drafter stream stands: its token path since the round's root, the bytes drafted
    beyond the proposals made so far, and whether the drafter emitted EOS."""

    path: tuple[int, ...] = ()
    left: bytes = b""
    ended: bool = False


class _DrafterTree:
    """One round's drafter conditionals (memoised per path) and the exact DP for psi and q."""

    def __init__(self, dec: SLRSDecoder, root: tuple[int, ...]):
        self.dec = dec
        self.root = root
        self.cond: dict[tuple[int, ...], object] = {}
        self._phi: dict[tuple[tuple[int, ...], bytes], float] = {}
        self._q: dict[tuple[_Stream, int], float] = {}
        self.batches = 0
        self.over_budget = False

    # -- conditionals
    def ensure(self, paths) -> None:
        missing = [p for p in dict.fromkeys(paths) if p not in self.cond]
        if not missing:
            return
        if len(self.cond) + len(missing) > self.dec.max_dp_states:
            # A proposal already drawn must be verified with its exact q (stopping here would
            # bias the emitted law), so this computation completes; the decoder then takes a
            # target-only step for the next position (see SLRSDecoder.decode).
            self.over_budget = True
        rows = self.dec.drafter_logits_fn([self.root + p for p in missing])
        self.batches += 1
        prevs = [p[-1] if p else None for p in missing]  # the root's own tokenization is not masked
        for p, cond in zip(missing, self.dec.drafter_conds(rows, prevs)):
            self.cond[p] = cond

    # -- drafting
    def draft(self, state: _Stream, chooser) -> tuple[int, _Stream]:
        """Sample the stream until T is determined (no longer target token can still be a prefix)."""
        tv, dv = self.dec.tv, self.dec.dv
        path, buf, ended = state.path, state.left, state.ended
        while not ended and not (buf and buf not in tv.proper_prefixes):
            self.ensure([path])
            d = self.cond[path].sample(chooser)
            if d in dv.eos_ids:
                ended = True
            else:
                path, buf = path + (d,), buf + dv.token_bytes[d]
        if not buf:
            return tv.proposal_eos, _Stream(path, b"", True)
        t = tv.longest_prefix_token(buf)
        return t, _Stream(path, buf[len(tv.token_bytes[t]) :], ended)

    # -- exact DP
    def _phi_many(self, queries: list[tuple[tuple[int, ...], bytes]]) -> list[float]:
        """phi(path, y) = P(the stream continued from ``path`` starts with y), y non-empty."""
        dv = self.dec.dv
        frontier = [q for q in dict.fromkeys(queries) if q not in self._phi]
        seen = set()
        # Discover the needed states level by level so each level is one batched drafter call.
        while frontier:
            self.ensure([path for path, _ in frontier])
            nxt = []
            for path, y in frontier:
                if (path, y) in seen:
                    continue
                seen.add((path, y))
                cond = self.cond[path]
                for k in range(1, len(y)):
                    for d in dv.ids_by_bytes.get(y[:k], ()):
                        if cond.prob(d) > 0:
                            nxt.append((path + (d,), y[k:]))
            frontier = [q for q in dict.fromkeys(nxt) if q not in self._phi and q not in seen]
        return [self._phi_eval(path, y) for path, y in queries]

    def _phi_eval(self, path, y) -> float:
        key = (path, y)
        got = self._phi.get(key)
        if got is not None:
            return got
        dv = self.dec.dv
        cond = self.cond[path]
        total = cond.prefix_mass(dv, y)  # one token covers y
        for k in range(1, len(y)):  # a token spells a proper prefix of y; the rest comes later
            for d in dv.ids_by_bytes.get(y[:k], ()):
                pd = cond.prob(d)
                if pd > 0:
                    total += pd * self._phi_eval(path + (d,), y[k:])
        self._phi[key] = total
        return total

    def psi_many(self, state: _Stream, xs: list[bytes]) -> list[float]:
        """psi(x) = P(the stream from ``state`` (leftover first) starts with x)."""
        out: list[float | None] = []
        queries, slots = [], []
        n_left = len(state.left)
        for x in xs:
            if len(x) <= n_left:
                out.append(1.0 if state.left.startswith(x) else 0.0)
            elif state.ended or not x.startswith(state.left):
                out.append(0.0)
            else:
                slots.append(len(out))
                out.append(None)
                queries.append((state.path, x[n_left:]))
        if queries:
            for slot, val in zip(slots, self._phi_many(queries)):
                out[slot] = val
        return out  # type: ignore[return-value]

    def q(self, state: _Stream, t: int) -> float:
        """Exact P(proposal = t | state)."""
        key = (state, t)
        got = self._q.get(key)
        if got is not None:
            return got
        tv = self.dec.tv
        if t in tv.eos_ids:
            if t != tv.proposal_eos or state.left:
                val = 0.0
            elif state.ended:
                val = 1.0
            else:
                self.ensure([state.path])
                val = math.fsum(self.cond[state.path].prob(e) for e in self.dec.dv.eos_ids)
        else:
            b = tv.token_bytes[t] if 0 <= t < tv.size else None
            if not b or tv.canonical.get(b) != t:
                val = 0.0
            else:
                psis = self.psi_many(state, [b] + tv.extensions(b))
                val = max(0.0, psis[0] - math.fsum(psis[1:]))
        self._q[key] = val
        return val


# ----------------------------------------------------------------------------- the decoder


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
        canonical_pairs: bool = True,
        stats: SpecStats | None = None,
    ):
        if int(num_draft_tokens) < 1:
            raise ConfigError(
                f"num_draft_tokens={num_draft_tokens}: must be ≥ 1. Fix: pass num_draft_tokens=5 (default)"
            )
        if int(max_dp_states) < 1:
            raise ConfigError(
                f"max_dp_states={max_dp_states}: must be ≥ 1. Fix: pass e.g. max_dp_states=2048"
            )
        check_supported(tv, dv)
        self.tv, self.dv, self.config = tv, dv, config
        self.target_logits_fn = target_logits_fn
        self.drafter_root_fn = drafter_root_fn
        self.drafter_logits_fn = drafter_logits_fn
        self.k = int(num_draft_tokens)
        self.max_dp_states = int(max_dp_states)
        if int(drafter_top_k) < 0:
            raise ConfigError(
                f"drafter_top_k={drafter_top_k}: must be ≥ 0. Fix: pass 0 (full drafter distribution) or e.g. 50"
            )
        self.drafter_top_k = int(drafter_top_k)
        self.canonical_pairs = bool(canonical_pairs)
        self.stats = stats if stats is not None else SpecStats()
        self._allowed = dv.allowed_mask(with_eos=tv.proposal_eos is not None)
        self._eos = set(tv.eos_ids)
        # root -> _DrafterTree shared across runs; only exact enumeration sets it (its replays
        # revisit the same deterministic states thousands of times).
        self.tree_cache: dict | None = None

    def drafter_conds(self, rows, prevs=None) -> list[_Cond]:
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
            return [_Cond(self.dv, torch.tensor([int(i)]), torch.ones(1, dtype=torch.float64)) for i in best]
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
            out.append(_Cond(self.dv, None if ids is None else ids[j], pr / total))
        return out

    def _round(self, context: list[int], chooser, budget: int) -> tuple[list[int], bool]:
        """One target pass: draft ≤ k proposals, verify; (emitted tokens (≥ 1), whether the exact
        DP went over ``max_dp_states``)."""
        import torch

        root = tuple(self.drafter_root_fn(context))
        if self.tree_cache is None:
            tree = _DrafterTree(self, root)
        else:
            tree = self.tree_cache.get(root) or self.tree_cache.setdefault(root, _DrafterTree(self, root))
        state = _Stream()
        proposals, states = [], []
        for _ in range(min(self.k, budget)):
            t, nxt = tree.draft(state, chooser)
            proposals.append(t)
            states.append(state)
            state = nxt
            if t in self._eos:
                break
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
                if chooser.bernoulli(min(1.0, float(p[t]) / qt)):
                    out.append(t)
                else:
                    st = states[i]
                    out.append(chooser.residual(p, lambda v, st=st: tree.q(st, v)))
                    break
            accepted += 1
            if t in self._eos or len(out) >= budget:
                break
        else:
            if len(out) < budget:  # all accepted: the target's own next token comes free
                row = logits[len(proposals)]
                if self.config.do_sample:
                    out.append(chooser.categorical(target_probs(row.detach().to("cpu"), self.config)))
                else:
                    out.append(int(torch.argmax(row)))
        self.stats.accepted += accepted
        self.stats.accepted_lengths.append(accepted)
        ex = self.stats.extra
        ex["dp_states"] = ex.get("dp_states", 0) + len(tree.cond)
        ex["dp_states_max_per_step"] = max(ex.get("dp_states_max_per_step", 0), len(tree.cond))
        ex["drafter_batches"] = ex.get("drafter_batches", 0) + tree.batches
        if tree.over_budget:
            ex["dp_budget_overruns"] = ex.get("dp_budget_overruns", 0) + 1
        return out, tree.over_budget

    def _target_only(self, context: list[int], chooser) -> int:
        """One token from the target alone: the lossless step taken for the position after a
        round whose exact DP went over ``max_dp_states`` (decided from the history only, before
        any drafter randomness of this position, so the emitted law stays the target's)."""
        import torch

        row = self.target_logits_fn(context, [])[0]
        self.stats.target_calls += 1
        ex = self.stats.extra
        ex["dp_budget_fallbacks"] = ex.get("dp_budget_fallbacks", 0) + 1
        if self.config.do_sample:
            return chooser.categorical(target_probs(row.detach().to("cpu"), self.config))
        return int(torch.argmax(row))

    def decode(self, prompt_ids: Sequence[int], chooser, max_new_tokens: int, push=None) -> list[int]:
        """Generate up to ``max_new_tokens`` tokens. ``push(token) -> bool`` (e.g. a Stopper's)
        sees every emitted token in order and ends generation by returning True; without it,
        generation ends at EOS. Returns the emitted tokens (a final EOS included)."""
        context = list(prompt_ids)
        generated: list[int] = []
        over_budget = False
        while len(generated) < max_new_tokens:
            if over_budget:
                emitted, over_budget = [self._target_only(context + generated, chooser)], False
            else:
                emitted, over_budget = self._round(
                    context + generated, chooser, max_new_tokens - len(generated)
                )
            for tok in emitted:
                generated.append(tok)
                if push(tok) if push is not None else tok in self._eos:
                    return generated
                if len(generated) >= max_new_tokens:
                    break
        return generated


# ----------------------------------------------------------------------------- exact laws (tests, docs)


def _log_probs(probs):
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
) -> dict[tuple[int, ...], float]:
    """EXACT law of the first ``n_tokens`` emitted by SLRS (tuples; shorter when EOS comes first),
    by enumerating every random choice of the real decoding loop on small, known models:
    ``target_prob_fn(context ids) -> probs over target ids`` (raw; ``config`` processes them like
    real logits), ``drafter_prob_fn(drafter ids) -> probs over drafter ids``. ``reuse_trees``
    shares each round's drafter conditionals across the replays (fast); the DP budget then counts
    the states of all replays together, so a law that exercises ``max_dp_states`` passes False."""
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
            rows = [_log_probs(target_prob_fn(tuple(seq[:j]))) for j in range(len(context), len(seq) + 1)]
            target_memo[key] = torch.stack(rows)
        return target_memo[key]

    def drafter_logits(seqs):
        return torch.stack([_log_probs(drafter_prob_fn(tuple(s))) for s in seqs])

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
    )
    dec.tree_cache = {} if reuse_trees else None

    def run(chooser):
        return tuple(dec.decode(list(prompt), chooser, n_tokens))

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


# ----------------------------------------------------------------------------- transformers models


def _vocab_for(tokenizer, kind: str, size: int, eos_ids: tuple[int, ...]):
    cache = getattr(tokenizer, "_effeval_slrs_vocab", None)
    if cache is None:
        cache = {}
        try:
            tokenizer._effeval_slrs_vocab = cache
        except AttributeError:
            pass
    key = (kind, size, eos_ids)
    if key not in cache:
        tb = token_bytes(tokenizer)
        if kind == "target":
            fallback = {i for piece, i in tokenizer.get_vocab().items() if BYTE_FALLBACK.match(piece)}
            cache[key] = TargetVocab(tb, eos_ids, size, deprioritised=fallback)
        else:
            cache[key] = DrafterVocab(tb, eos_ids, size)
    return cache[key]


def _output_size(model, tokenizer) -> int:
    emb = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if emb is not None and getattr(emb, "weight", None) is not None:
        return int(emb.weight.shape[0])
    return int(getattr(model.config, "vocab_size", 0) or len(tokenizer))


def _forward_last_logits(model, ids, n_last: int):
    """Logits of the last ``n_last`` positions (``logits_to_keep`` where the model takes it)."""
    import inspect

    import torch

    with torch.no_grad():
        if "logits_to_keep" in inspect.signature(model.forward).parameters:
            logits = model(input_ids=ids, logits_to_keep=n_last).logits
        else:
            logits = model(input_ids=ids).logits
    return logits[:, -n_last:].float()


def generate(
    target,
    target_tok,
    drafter,
    drafter_tok,
    prompt_ids,
    config: SamplingConfig,
    *,
    num_draft_tokens: int,
    generator=None,
    max_dp_states: int = DEFAULT_MAX_DP_STATES,
    drafter_top_k: int = DEFAULT_DRAFTER_TOP_K,
    canonical_pairs: bool = True,
    drafter_batch_size: int = 64,
) -> GenerationResult:
    """SLRS decoding of one prompt with transformers models (batch size 1)."""
    import torch

    from .decoding import CachedLM, Stopper, prompt_text, record_overhead
    from .vocab import DrafterContext, Vocab

    started = time.perf_counter()
    stats = SpecStats()
    stopper = Stopper(config, Vocab.of(target_tok))
    if stopper.done:
        return stopper.result(stats, started)
    target_lm = CachedLM(target)
    drafter_lm = CachedLM(drafter)
    d_dev = drafter_lm.device
    tv = _vocab_for(target_tok, "target", _output_size(target, target_tok), tuple(config.eos_token_ids))
    d_eos = (drafter_tok.eos_token_id,) if drafter_tok.eos_token_id is not None else ()
    dv = _vocab_for(drafter_tok, "drafter", _output_size(drafter, drafter_tok), d_eos)
    prompt_ids = [int(i) for i in (prompt_ids.tolist() if hasattr(prompt_ids, "tolist") else prompt_ids)]

    def target_logits(context, proposals):
        # KV-cached like AR/SLEM/TLI (the cache is cropped back after rejections).
        return target_lm.next_logits(list(context) + list(proposals), len(proposals) + 1).cpu()

    # The drafter sees the context as its own tokenizer writes it (any deterministic choice keeps
    # SLRS exact; this one keeps the drafter in distribution), updated per round from the new
    # target tokens' bytes with a look-behind window instead of re-encoding the whole context.
    d_context = DrafterContext(Vocab.of(drafter_tok), prompt_text(target_tok, prompt_ids))
    t_bytes = Vocab.of(target_tok).bytes
    seen = {"tokens": len(prompt_ids), "data": bytearray()}

    def drafter_root(context):
        for token in context[seen["tokens"] :]:
            seen["data"] += (t_bytes[token] if 0 <= token < len(t_bytes) else None) or b""
        seen["tokens"] = len(context)
        return tuple(d_context.update(seen["data"])[0])

    batch_forward = {"s": 0.0}

    def drafter_logits(seqs):
        if len(seqs) == 1:  # drafting along one path: KV cache, cropped where the path changes
            stats.drafter_calls += 1
            return [drafter_lm.next_logits(list(seqs[0]), 1)[0].float().cpu()]
        # A DP level: equal lengths batch without padding (no cache; the rows share only the root).
        out = [None] * len(seqs)
        by_len: dict[int, list[int]] = {}
        for i, s in enumerate(seqs):
            by_len.setdefault(len(s), []).append(i)
        for idxs in by_len.values():
            for j in range(0, len(idxs), drafter_batch_size):
                chunk = idxs[j : j + drafter_batch_size]
                ids = torch.tensor([list(seqs[i]) for i in chunk], device=d_dev)
                batch_started = time.perf_counter()
                rows = _forward_last_logits(drafter, ids, 1)[:, -1].cpu()
                batch_forward["s"] += time.perf_counter() - batch_started
                stats.drafter_calls += 1
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
        stats=stats,
    )
    dec.decode(prompt_ids, _as_chooser(generator), config.max_new_tokens, push=stopper.push)
    stats.target_calls = target_lm.calls
    forward_s = target_lm.forward_s + drafter_lm.forward_s + batch_forward["s"]
    record_overhead(stats, started, forward_s, d_context)
    rounds = len(stats.accepted_lengths)
    if rounds:
        stats.extra["dp_states_per_step"] = stats.extra.get("dp_states", 0) / rounds
        stats.extra["drafter_calls_per_step"] = stats.drafter_calls / rounds
    return stopper.result(stats, started)
