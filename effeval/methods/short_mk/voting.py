"""Chain records, strategies and the vote.

Vote rule (shared by the sampler and the pool analysis):

1. Chains whose extracted answer is None do not vote (unless no chain has an answer: then the
   shortest chain is returned and the answer is None).
2. The answer with the most votes wins. Ties go to the answer whose shortest chain is shortest
   (the paper's rule: prefer shorter thinking); a tie on that too is broken by a seeded choice.
3. The returned chain is the shortest chain that gave the winning answer (seeded choice among
   equally short ones).

Chain length is the number of thinking tokens (up to and including the end-of-thinking marker,
or up to EOS / the thinking budget for a chain that never emitted it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from effeval.errors import ConfigError

STRATEGIES = ("short", "majority", "shortest", "longest", "random")
ANSWER_PHASES = ("continue", "in_chain")

# Chain status: finished = emitted the marker; eos = ended by EOS before the marker (also counts as
# finished); truncated = hit the thinking budget; aborted = halted by the early stop.
FINISHED_STATUSES = ("finished", "eos")


@dataclass
class Chain:
    index: int
    think_tokens: int = 0
    answer_tokens: int = 0
    status: str = "thinking"
    finish_step: int | None = None
    answer: str | None = None  # raw extracted answer
    vote_key: str | None = None  # normalised answer used for the vote
    selected: bool = False  # part of the vote (short: one of the first m)
    text: str = ""
    full_think_tokens: int | None = None  # measure_savings: where an aborted chain would have ended
    full_total_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def total_tokens(self) -> int:
        return self.think_tokens + self.answer_tokens

    def log(self, with_text: bool = False) -> dict[str, Any]:
        out = asdict(self)
        out.pop("extra")
        if not with_text:
            out.pop("text")
        out.update(self.extra)
        return out


@dataclass
class Vote:
    answer: str | None  # winning vote key
    chosen: int  # index of the returned chain
    tally: dict[str, int]
    margin: int  # votes of the winner minus votes of the runner-up (0 = tie broken by rule)
    voters: list[int]
    tie_break: str  # "none" | "shortest" | "seeded"

    def log(self) -> dict[str, Any]:
        return asdict(self)


def check_strategy(strategy: str, k: int, m: int) -> None:
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy: unknown strategy {strategy!r}. Fix: use one of {', '.join(STRATEGIES)}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k: must be an integer >= 1, got {k!r}. Fix: pass k=<number of chains>, e.g. k=8")
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ConfigError(f"m: must be an integer >= 1, got {m!r}. Fix: pass m=1 or m=3 (m <= k)")
    if m > k:
        raise ConfigError(
            f"m: m={m} is larger than k={k}; short-m@k stops after m of k chains finish. Fix: pass m <= k"
        )


def make_generator(seed: int):
    import torch

    return torch.Generator().manual_seed(int(seed) % (2**63))


def seeded_choice(items: Sequence[Any], gen) -> Any:
    """One item chosen uniformly with ``gen`` (items are sorted by the caller for determinism)."""
    import torch

    if len(items) == 1:
        return items[0]
    return items[int(torch.randint(len(items), (1,), generator=gen))]


def _shortest(chains: Sequence[Chain], gen) -> Chain:
    best = min(c.think_tokens for c in chains)
    return seeded_choice(sorted((c for c in chains if c.think_tokens == best), key=lambda c: c.index), gen)


def vote(chains: Sequence[Chain], gen) -> Vote:
    """Majority vote over ``chains`` with the shortest-chain tie rule (see module docstring)."""
    if not chains:
        raise ValueError("vote over no chains")
    voters = [c for c in chains if c.vote_key is not None]
    if not voters:
        chosen = _shortest(chains, gen)
        return Vote(None, chosen.index, {}, 0, [], "none")
    tally: dict[str, int] = {}
    shortest_len: dict[str, int] = {}
    for c in voters:
        tally[c.vote_key] = tally.get(c.vote_key, 0) + 1
        shortest_len[c.vote_key] = min(shortest_len.get(c.vote_key, c.think_tokens), c.think_tokens)
    ranked = sorted(tally.values(), reverse=True)
    top = ranked[0]
    margin = top - (ranked[1] if len(ranked) > 1 else 0)
    tied = sorted(key for key, n in tally.items() if n == top)
    tie_break = "none"
    if len(tied) > 1:
        best = min(shortest_len[key] for key in tied)
        tied_short = [key for key in tied if shortest_len[key] == best]
        tie_break = "shortest" if len(tied_short) == 1 else "seeded"
        winner = seeded_choice(tied_short, gen)
    else:
        winner = tied[0]
    chosen = _shortest([c for c in voters if c.vote_key == winner], gen)
    return Vote(winner, chosen.index, tally, margin, sorted(c.index for c in voters), tie_break)


def first_m(chains: Sequence[Chain], m: int, gen) -> list[Chain]:
    """The m finished chains with the fewest thinking tokens (what short-m@k would have stopped at).

    Chains that tie at the boundary length are picked by a seeded choice. With fewer than m
    finished chains, all finished chains are returned (possibly none)."""
    finished = sorted((c for c in chains if c.finished), key=lambda c: (c.think_tokens, c.index))
    if len(finished) <= m:
        return finished
    boundary = finished[m - 1].think_tokens
    sure = [c for c in finished if c.think_tokens < boundary]
    tied = [c for c in finished if c.think_tokens == boundary]
    return sure + pick_n(tied, m - len(sure), gen)


def pick_n(items: Sequence[Any], n: int, gen) -> list[Any]:
    """``n`` items chosen without replacement by a seeded permutation, in their original order."""
    import torch

    if n >= len(items):
        return list(items)
    order = torch.randperm(len(items), generator=gen)[:n].tolist()
    return [items[i] for i in sorted(order)]


def decide(strategy: str, chains: Sequence[Chain], m: int, gen) -> tuple[list[Chain], Vote]:
    """Which chains vote and the resulting vote, for complete (or early-stopped) chains."""
    if strategy in ("short", "shortest"):
        voters = first_m(chains, 1 if strategy == "shortest" else m, gen)
        if not voters:  # nobody finished thinking within the budget: fall back to every chain
            voters = list(chains)
    elif strategy == "majority":
        voters = list(chains)
    elif strategy == "longest":
        pool = [c for c in chains if c.finished] or list(chains)
        best = max(c.think_tokens for c in pool)
        voters = [
            seeded_choice(sorted((c for c in pool if c.think_tokens == best), key=lambda c: c.index), gen)
        ]
    elif strategy == "random":
        voters = [seeded_choice(sorted(chains, key=lambda c: c.index), gen)]
    else:
        raise ConfigError(f"strategy: unknown strategy {strategy!r}. Fix: use one of {', '.join(STRATEGIES)}")
    return voters, vote(voters, gen)
