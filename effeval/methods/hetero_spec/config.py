"""hetero-spec's settings: one dataclass with typed defaults and help (``effeval.config_fields``).

``effeval-hetero-spec``'s model_args are derived from it (``effeval.models.base.args_from``), and
the algorithms' keyword defaults read it (``default``), so no layer repeats a value. ``check``
raises the one-line ``ConfigError`` for a bad value given straight to an algorithm.
"""

from __future__ import annotations

import dataclasses

from effeval.config_fields import non_negative, positive, setting
from effeval.errors import ConfigError
from effeval.methods.hetero_spec.fast_path import FAST_PATHS
from effeval.methods.hetero_spec.registry import ALGORITHMS

DRAFT_SCHEDULES = ("constant", "heuristic")


def probability_below_one(x) -> str | None:
    """A ``check``: 0 <= x < 1 (a threshold on a probability; 0 switches it off)."""
    return (
        None if 0.0 <= x < 1.0 else f"must be in [0, 1), got {x}. Fix: pass e.g. 0.4, or 0 to switch it off"
    )


@dataclasses.dataclass(frozen=True)
class HeteroSpecConfig:
    drafter: str = setting(help="path or hub id of the drafter model (any tokenizer)")
    algorithm: str = setting(
        "slem", help="ar, slem, tli, slrs or hf (transformers)", choices=tuple(ALGORITHMS)
    )
    num_draft_tokens: int = setting(
        5, help="drafter tokens (SLRS: target proposals) per step", check=positive
    )
    verify: bool = setting(
        False, help="also decode every request with the target alone: greedy equality and the speedup"
    )
    seed: int = setting(1234, help="run seed; each request draws from its own stream (seed, doc, repeat)")
    # SLRS's drafter law and exact-DP budget (ignored by the other algorithms). The drafter samples
    # from its own top-k (transformers' default generation top_k is 50): still exact (q is
    # computed from the same truncated law) and most drafter paths get probability 0, which prunes
    # the DP by orders of magnitude.
    drafter_top_k: int = setting(
        50, help="SLRS: the drafter's proposal law keeps its top k tokens (0 = all)", check=non_negative
    )
    canonical_pairs: bool = setting(
        True, help="SLRS: no drafter token right after one it would have merged with (prunes the DP)"
    )
    max_dp_states: int = setting(
        2048,
        help="SLRS: drafter states one step's exact DP may use; beyond, the next position is target-only",
        check=positive,
    )
    # Adaptive draft length (SLEM, TLI, SLRS; hf maps them to transformers' own options). Both
    # decide from the drafter's outputs and the history only, so the output law is unchanged.
    draft_confidence: float = setting(
        0.0,
        help="stop a round's drafting after a drafted token whose drafter probability is below this (0 = off)",
        check=probability_below_one,
    )
    draft_schedule: str = setting(
        "constant",
        help="constant (num_draft_tokens every round) or heuristic (transformers': +2 after a fully "
        "accepted round, -1 otherwise)",
        choices=DRAFT_SCHEDULES,
    )
    # A faster CPU kernel for the target and drafter; AR (verify=true) runs on the same converted
    # target, so a speedup is never a faster kernel credited to speculation.
    fast_path: str = setting(
        "none",
        help="none, or mkldnn: fp32 linear weights prepacked for oneDNN (same weights, own summation "
        "order: not bit-identical to the plain path)",
        choices=FAST_PATHS,
    )
    # "hf": decode the new tokens alone and cut at the stop strings, exactly like lm-eval's hf
    # model (equal scores for equal tokens); "in_context": the bytes as they read after the
    # prompt (SentencePiece's leading space kept).
    text_mode: str = setting(
        "hf", help="returned text: hf (as lm-eval's hf model) or in_context", choices=("hf", "in_context")
    )


_FIELDS = {f.name: f for f in dataclasses.fields(HeteroSpecConfig)}


def default(name: str):
    """The default of setting ``name``."""
    return _FIELDS[name].default


def check(name: str, value) -> None:
    """ConfigError (``name=value: problem. Fix: ...``) when ``value`` fails the setting's check."""
    test = _FIELDS[name].metadata.get("check")
    problem = test(value) if test is not None else None
    if problem:
        raise ConfigError(f"{name}={value}: {problem}")


NUM_DRAFT_TOKENS = default("num_draft_tokens")
