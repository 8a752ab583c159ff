"""SLRS's exact DP: the drafter's conditionals along byte-stream paths and the proposal law.

- ``Conditional``: one drafter conditional (dense, or sparse over its non-zero ids), float64.
- ``Stream``: where the drafted byte stream stands (token path, leftover bytes, ended).
- ``DrafterTree``: one round's conditionals, memoised per path and fetched level by level in
  batches, and the exact ``psi`` / ``q`` computed from them (see ``slrs``'s module docstring).

``DrafterTree`` reads its decoder's ``tv``, ``dv``, ``max_dp_states``, ``drafter_logits_fn`` and
``drafter_conds``; randomness comes from the decoder's coins (``decoding.Coins``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from effeval.methods.hetero_spec.vocab import DrafterVocab


class Conditional:
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

    def sample(self, coins) -> int:
        if self.ids is None:
            return coins.categorical(self.probs)
        if len(self.ids) == 1:  # a point mass (greedy): no randomness consumed
            return int(self.ids[0])
        return int(self.ids[coins.categorical(self.probs)])


@dataclass(frozen=True)
class Stream:
    """Where the drafter stream stands: its token path since the round's root, the bytes drafted
    beyond the proposals made so far, and whether the drafter emitted EOS."""

    path: tuple[int, ...] = ()
    left: bytes = b""
    ended: bool = False


class DrafterTree:
    """One round's drafter conditionals (memoised per path) and the exact DP for psi and q."""

    def __init__(self, dec, root: tuple[int, ...]):
        self.dec = dec
        self.root = root
        self.cond: dict[tuple[int, ...], object] = {}
        self._phi: dict[tuple[tuple[int, ...], bytes], float] = {}
        self._q: dict[tuple[Stream, int], float] = {}
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
    def draft(self, state: Stream, coins) -> tuple[int, Stream]:
        """Sample the stream until T is determined (no longer target token can still be a prefix)."""
        tv, dv = self.dec.tv, self.dec.dv
        path, buf, ended = state.path, state.left, state.ended
        while not ended and not (buf and buf not in tv.proper_prefixes):
            self.ensure([path])
            d = self.cond[path].sample(coins)
            if d in dv.eos_ids:
                ended = True
            else:
                path, buf = path + (d,), buf + dv.token_bytes[d]
        if not buf:
            return tv.proposal_eos, Stream(path, b"", True)
        t = tv.longest_prefix_token(buf)
        return t, Stream(path, buf[len(tv.token_bytes[t]) :], ended)

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

    def psi_many(self, state: Stream, xs: list[bytes]) -> list[float]:
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

    def q(self, state: Stream, t: int) -> float:
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
