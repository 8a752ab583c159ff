"""Losslessness by exact enumeration: on tiny vocabularies every branch of the algorithm's
randomness is followed with its probability, and the law of the first (and first two) emitted
tokens must equal the target's processed distribution to 1e-6."""

import pytest
from spec_fakes import HashLM, TinyTokenizer, enumerate_law

from effeval.methods.hetero_spec import get_algorithm
from effeval.methods.hetero_spec.common import SamplingConfig, target_probs

# The vocabularies share a, b, c; the target also has "ab", "ba" (only reachable via the residual)
# and the drafter "abc", "cb" (mass outside the intersection, removed by renormalisation).
TARGET_TOK = TinyTokenizer(["a", "b", "ab", "c", "ba"])
DRAFTER_TOK = TinyTokenizer(["a", "b", "c", "abc", "cb"])
PROMPT = [1, 2]  # "ab"

CONFIGS = {
    "T=1": SamplingConfig(do_sample=True, temperature=1.0),
    "T=0.7,top_k=4": SamplingConfig(do_sample=True, temperature=0.7, top_k=4),
    "top_p=0.9": SamplingConfig(do_sample=True, top_p=0.9),
}


def exact_target_law(target, config, n_tokens):
    """Law of the first ``n_tokens`` tokens of plain sampling (EOS ends a sequence early)."""
    law = {}

    def walk(ids, out, prob):
        if len(out) == n_tokens or (out and out[-1] == "eos"):
            law[tuple(out)] = law.get(tuple(out), 0.0) + prob
            return
        p = target_probs(target.score(tuple(ids)), config)
        for tok in range(len(p)):
            if p[tok] > 0:
                walk(ids + [tok], out + ["eos" if tok == 0 else tok], prob * float(p[tok]))

    walk(list(PROMPT), [], 1.0)
    return law


def algorithm_law(name, target, drafter, config, n_tokens, k):
    import dataclasses

    cfg = dataclasses.replace(config, max_new_tokens=n_tokens, eos_token_ids=(0,))
    generate = get_algorithm(name)

    accepted = set()

    def run(coins):
        res = generate(
            target, TARGET_TOK, drafter, DRAFTER_TOK, PROMPT, cfg, num_draft_tokens=k, generator=coins
        )
        accepted.add(res.stats.accepted)
        return tuple(res.token_ids) + (("eos",) if res.stopped_by == "eos" else ())

    law = enumerate_law(run)
    # The check is only meaningful if drafts were both accepted and rejected on some branches.
    assert 0 in accepted and max(accepted) > 0, accepted
    return law


def assert_same_law(got, want):
    keys = set(got) | set(want)
    worst = max(abs(got.get(key, 0.0) - want.get(key, 0.0)) for key in keys)
    assert abs(sum(got.values()) - 1.0) < 1e-9
    assert worst < 1e-6, f"max |P_alg - P_target| = {worst:.3g}"


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("algorithm", ["tli", "slem"])
def test_first_token_law_equals_target(algorithm, config_name):
    target, drafter = HashLM(len(TARGET_TOK), seed=1), HashLM(len(DRAFTER_TOK), seed=2)
    config = CONFIGS[config_name]
    got = algorithm_law(algorithm, target, drafter, config, n_tokens=1, k=3)
    assert_same_law(got, exact_target_law(target, config, 1))


@pytest.mark.parametrize("config_name", ["T=1", "T=0.7,top_k=4"])
def test_first_two_tokens_law_equals_target_tli(config_name):
    target, drafter = HashLM(len(TARGET_TOK), seed=3), HashLM(len(DRAFTER_TOK), seed=4)
    config = CONFIGS[config_name]
    got = algorithm_law("tli", target, drafter, config, n_tokens=2, k=2)
    assert_same_law(got, exact_target_law(target, config, 2))


def test_enumeration_detects_a_biased_acceptance_rule():
    """The harness must be able to fail: accepting every draft (no min(1, p/q) test) is biased."""
    target, drafter = HashLM(len(TARGET_TOK), seed=1), HashLM(len(DRAFTER_TOK), seed=2)
    config = CONFIGS["T=1"]
    want = exact_target_law(target, config, 1)

    class AlwaysAccept:
        def __init__(self, inner):
            self.inner = inner

        def accept(self, prob):
            return True

        def categorical(self, probs):
            return self.inner.categorical(probs)

    import dataclasses

    cfg = dataclasses.replace(config, max_new_tokens=1, eos_token_ids=(0,))
    law = {}
    from spec_fakes import EnumeratingCoins

    stack = [[]]
    while stack:
        coins = EnumeratingCoins(stack.pop())
        res = get_algorithm("tli")(
            target,
            TARGET_TOK,
            drafter,
            DRAFTER_TOK,
            PROMPT,
            cfg,
            num_draft_tokens=2,
            generator=AlwaysAccept(coins),
        )
        key = tuple(res.token_ids) + (("eos",) if res.stopped_by == "eos" else ())
        law[key] = law.get(key, 0.0) + coins.prob
        stack += coins.pending
    worst = max(abs(law.get(key, 0.0) - want.get(key, 0.0)) for key in set(law) | set(want))
    assert worst > 1e-3
