"""SLRS is lossless, checked EXACTLY: on tiny hand-made vocabularies every random choice of the
real decoding loop (drafter samples, accept coins, residual draws) is enumerated with its
probability, and the law of the first (and first two) emitted tokens must equal the target's
processed distribution to 1e-6. Then: sampling with ≥5,000 draws stays within a TV bound derived
from the sample size, and a q that ignores multi-token drafter paths is caught by both checks."""

import math
import zlib

import pytest
import torch

from effeval.errors import ConfigError
from effeval.methods.hetero_spec import slrs, slrs_dp, slrs_laws
from effeval.methods.hetero_spec.common import SamplingConfig, target_probs
from effeval.methods.hetero_spec.decoding import Coins
from effeval.methods.hetero_spec.vocab import DrafterVocab, TargetVocab

EOS = 0
# Drafter "abba" covers several target tokens ("abb"+"a", "ab"+"ba"); target "abb" needs several
# drafter tokens ("ab"+"b", "a"+"bb", "a"+"b"+"b": non-canonical paths all count).
MIXED = ([None, b"a", b"b", b"ab", b"abb", b"ba", b"bab"], [None, b"a", b"b", b"ab", b"bb", b"abba", b"ba"])
# Byte-level drafter: every multi-byte target token needs several drafter tokens.
BYTE_DRAFTER = ([None, b"a", b"b", b"c", b"ab", b"abc", b"ca", b"bca"], [None, b"a", b"b", b"c"])
# Byte-level target: every long drafter token covers several target tokens.
LONG_DRAFTER = ([None, b"a", b"b"], [None, b"a", b"b", b"abab", b"bba", b"aab"])
PAIRS = {"mixed": MIXED, "byte_drafter": BYTE_DRAFTER, "long_drafter": LONG_DRAFTER}

CONFIGS = {
    "T=1": SamplingConfig(do_sample=True),
    "T=0.7,top_k=3": SamplingConfig(do_sample=True, temperature=0.7, top_k=3),
    "top_p=0.8": SamplingConfig(do_sample=True, top_p=0.8),
}


def hashed_probs(key, n, zero_frac):
    """Deterministic pseudo-random distribution per key; some entries exactly 0."""
    g = torch.Generator().manual_seed(zlib.crc32(repr(key).encode()))
    w = torch.rand(n, generator=g, dtype=torch.float64)
    w[torch.rand(n, generator=g) < zero_frac] = 0.0
    if w.sum() == 0:
        w[1] = 1.0
    return (w / w.sum()).tolist()


def models(pair):
    tb, db = PAIRS[pair]
    # The drafter's state depends on its token PATH (not only on the bytes), as in a real LM.
    return (lambda ctx: hashed_probs(("t", pair, ctx), len(tb), 0.0)), (
        lambda seq: hashed_probs(("d", pair, seq), len(db), 0.25)
    )


def processed(probs, config):
    return target_probs(slrs_laws.log_probs(probs), config).tolist()


def target_law(target_fn, config, n_tokens, ctx=()):
    """Law of the first ``n_tokens`` tokens of plain sampling from the processed target."""
    p = processed(target_fn(ctx), config)
    law = {}
    for tok, pt in enumerate(p):
        if pt <= 0:
            continue
        if tok == EOS or n_tokens == 1:
            law[(tok,)] = law.get((tok,), 0.0) + pt
        else:
            for rest, pr in target_law(target_fn, config, n_tokens - 1, ctx + (tok,)).items():
                law[(tok,) + rest] = pt * pr
    return law


def max_diff(a, b):
    return max(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b))


def slrs_law(pair, config, n_tokens, k, drafter_top_k=0, canonical_pairs=False):
    target_fn, drafter_fn = models(pair)
    tb, db = PAIRS[pair]
    return slrs_laws.exact_output_law(
        target_fn,
        drafter_fn,
        tb,
        db,
        n_tokens=n_tokens,
        num_draft_tokens=k,
        eos_ids=(EOS,),
        drafter_eos_ids=(EOS,),
        config=config,
        drafter_top_k=drafter_top_k,
        canonical_pairs=canonical_pairs,
    )


def test_fixtures_cover_the_hard_cases():
    """The vocabularies really contain what the exact tests are meant to exercise."""
    tb, db = MIXED
    tv, dv = TargetVocab(tb), DrafterVocab(db)
    # a drafter token spanning two target tokens, a target token with ≥2 drafter paths
    assert b"abb" in tv.canonical and tv.longest_prefix_token(b"abba") == tb.index(b"abb")
    paths = [
        p for p in ([b"ab", b"b"], [b"a", b"bb"], [b"a", b"b", b"b"]) if all(x in dv.ids_by_bytes for x in p)
    ]
    assert len(paths) == 3
    assert tv.extensions(b"ab") == [b"abb"] and tv.extensions(b"b") == [b"ba"]
    # canonical_pairs bans "b" after "a" ("ab" is a token) and "ba" after "ab" ("abba"), not "b" after "ab"
    a, b, ab, ba = (dv.ids_by_bytes[x][0] for x in (b"a", b"b", b"ab", b"ba"))
    assert b in dv.mergeable_after(a) and ba in dv.mergeable_after(ab) and b not in dv.mergeable_after(ab)


@pytest.mark.parametrize(("drafter_top_k", "canonical_pairs"), [(0, False), (2, False), (0, True)])
@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("pair", list(PAIRS))
def test_first_token_law_is_the_target_law(pair, config_name, drafter_top_k, canonical_pairs):
    config = CONFIGS[config_name]
    law = slrs_law(
        pair, config, n_tokens=1, k=1, drafter_top_k=drafter_top_k, canonical_pairs=canonical_pairs
    )
    assert abs(sum(law.values()) - 1.0) < 1e-9
    assert max_diff(law, target_law(models(pair)[0], config, 1)) < 1e-6


@pytest.mark.parametrize(
    ("pair", "config_name", "k", "canonical_pairs"),
    [
        ("mixed", "T=1", 2, False),
        ("mixed", "T=1", 2, True),
        ("mixed", "T=0.7,top_k=3", 3, False),
        ("byte_drafter", "T=1", 2, False),
        ("long_drafter", "top_p=0.8", 2, True),
    ],
)
def test_first_two_tokens_law_is_the_target_law(pair, config_name, k, canonical_pairs):
    """k ≥ 2 checks the stream reuse: proposal i is verified against its law GIVEN the drafter
    path drawn for proposals < i (including leftovers of a drafter token that spans tokens)."""
    config = CONFIGS[config_name]
    law = slrs_law(pair, config, n_tokens=2, k=k, canonical_pairs=canonical_pairs)
    assert abs(sum(law.values()) - 1.0) < 1e-9
    assert max_diff(law, target_law(models(pair)[0], config, 2)) < 1e-6


def test_slrs_step_distribution_equals_p():
    target_fn, drafter_fn = models("mixed")
    tb, db = MIXED
    p = target_fn(())
    law = slrs_laws.slrs_step_distribution(p, drafter_fn, tb, db, eos_id=EOS, drafter_eos_id=EOS)
    assert max(abs(a - b) for a, b in zip(law, p)) < 1e-6


def canonical_only_phi(self, path, y):
    """A WRONG q: of the drafter paths spelling y, only the longest-match one is counted
    (non-canonical tokenizations ignored)."""
    dv = self.dec.dv
    cond = self.cond[path]
    total = cond.prefix_mass(dv, y)
    for k in range(len(y) - 1, 0, -1):
        live = [d for d in dv.ids_by_bytes.get(y[:k], ()) if cond.prob(d) > 0]
        if live:
            return total + sum(cond.prob(d) * canonical_only_phi(self, path + (d,), y[k:]) for d in live)
    return total


def test_exact_check_catches_a_q_that_misses_drafter_paths(monkeypatch):
    monkeypatch.setattr(slrs_dp.DrafterTree, "_phi_eval", canonical_only_phi)
    law = slrs_law("mixed", CONFIGS["T=1"], n_tokens=1, k=1)
    assert max_diff(law, target_law(models("mixed")[0], CONFIGS["T=1"], 1)) > 1e-3  # 1000× the tolerance


# ----------------------------------------------------------------------------- sampling


def sample_two_tokens(pair, n, seed, k=2, max_dp_states=slrs.DEFAULT_MAX_DP_STATES):
    target_fn, drafter_fn = models(pair)
    tb, db = PAIRS[pair]
    config = CONFIGS["T=1"]

    def target_logits(context, proposals):
        seq = list(context) + list(proposals)
        return torch.stack(
            [slrs_laws.log_probs(target_fn(tuple(seq[:j]))) for j in range(len(context), len(seq) + 1)]
        )

    def drafter_logits(seqs):
        return torch.stack([slrs_laws.log_probs(drafter_fn(tuple(s))) for s in seqs])

    dec = slrs.SLRSDecoder(
        TargetVocab(tb, (EOS,)),
        DrafterVocab(db, (EOS,)),
        config,
        target_logits,
        lambda ctx: (),
        drafter_logits,
        num_draft_tokens=k,
        drafter_top_k=0,
        canonical_pairs=False,  # non-canonical drafter paths have mass: q must count them
        max_dp_states=max_dp_states,
    )
    dec.tree_cache = (
        {} if max_dp_states == slrs.DEFAULT_MAX_DP_STATES else None
    )  # conditionals are deterministic per drafter root: reuse them across samples
    coins = Coins(torch.Generator().manual_seed(seed))
    counts = {}
    for _ in range(n):
        out = tuple(dec.decode([], coins, 2))
        counts[out] = counts.get(out, 0) + 1
    return {key: c / n for key, c in counts.items()}, dec.stats


def tv_bound(law, n, delta=1e-6):
    """E[TV] ≤ ½ Σ sqrt(p(1-p)/n) (Jensen), and TV moves by ≤ 1/n per sample, so by McDiarmid
    P(TV > E[TV] + sqrt(ln(1/δ)/(2n))) ≤ δ: a correct sampler fails this with probability ≤ δ."""
    return 0.5 * sum(math.sqrt(p * (1 - p) / n) for p in law.values()) + math.sqrt(
        math.log(1 / delta) / (2 * n)
    )


def tv(a, b):
    return 0.5 * sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b))


def test_sampling_tv_within_noise_bound():
    n = 5000
    exact = target_law(models("mixed")[0], CONFIGS["T=1"], 2)
    empirical, stats = sample_two_tokens("mixed", n, seed=0)
    bound = tv_bound(exact, n)
    assert tv(empirical, exact) < bound, (tv(empirical, exact), bound)
    # the run really exercised acceptances, rejections and multi-token rounds
    assert 0 < stats.accepted < stats.drafted and max(stats.accepted_lengths) >= 2


def test_sampling_check_catches_a_biased_q(monkeypatch):
    # WRONG q(t) = P(t is a prefix of S), forgetting that a longer target token may win
    monkeypatch.setattr(TargetVocab, "extensions", lambda self, t: [])
    n = 5000
    exact = target_law(models("mixed")[0], CONFIGS["T=1"], 2)
    empirical, _ = sample_two_tokens("mixed", n, seed=0)
    assert tv(empirical, exact) > tv_bound(exact, n)


# ----------------------------------------------------------------------------- refusals


def test_refuses_target_without_every_drafter_byte():
    tb = [None, b"a", b"ab"]  # no single-byte "b": T("b…") would be undefined
    db = [None, b"a", b"b"]
    with pytest.raises(ConfigError, match=r"algorithm=slrs.*0x62.*Fix:"):
        slrs_laws.exact_output_law(
            lambda c: [0.2, 0.4, 0.4], lambda s: [0.1, 0.5, 0.4], tb, db, eos_ids=(EOS,)
        )


def _budget_law(n_tokens=2):
    target_fn, drafter_fn = models("mixed")
    return slrs_laws.exact_output_law(
        target_fn,
        drafter_fn,
        *MIXED,
        n_tokens=n_tokens,
        num_draft_tokens=2,
        eos_ids=(EOS,),
        drafter_eos_ids=(EOS,),
        max_dp_states=2,
        reuse_trees=False,
    )


def test_over_the_dp_budget_falls_back_to_an_exact_target_only_step():
    """max_dp_states=2: every round's exact DP goes over it, so the next position is a
    target-only step; the law of two tokens stays exactly the target's, and the fallback is
    counted. Shown able to fail below (a fallback that takes the argmax)."""
    law = _budget_law()
    assert max_diff(law, target_law(models("mixed")[0], CONFIGS["T=1"], 2)) < 1e-9
    stats = sample_two_tokens("mixed", 5, seed=1, max_dp_states=2)[1]
    assert stats.extra["dp_budget_overruns"] > 0 and stats.extra["dp_budget_fallbacks"] > 0


def test_budget_check_catches_a_biased_fallback(monkeypatch):
    import torch as _torch

    def argmax_fallback(self, context, coins):  # WRONG: not a sample of the target's law
        self.stats.extra["dp_budget_fallbacks"] = self.stats.extra.get("dp_budget_fallbacks", 0) + 1
        return int(_torch.argmax(self.target_logits_fn(context, [])[0]))

    monkeypatch.setattr(slrs.SLRSDecoder, "_target_only", argmax_fallback)
    assert max_diff(_budget_law(), target_law(models("mixed")[0], CONFIGS["T=1"], 2)) > 1e-3


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"num_draft_tokens": 0}, "num_draft_tokens"), ({"drafter_top_k": -1}, "drafter_top_k")],
)
def test_bad_arguments(kwargs, needle):
    target_fn, drafter_fn = models("mixed")
    args = {"num_draft_tokens": 1, **kwargs}
    with pytest.raises(ConfigError, match=needle):
        slrs.SLRSDecoder(
            TargetVocab(MIXED[0], (EOS,)),
            DrafterVocab(MIXED[1], (EOS,)),
            CONFIGS["T=1"],
            None,
            None,
            None,
            **args,
        )
