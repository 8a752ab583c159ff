"""End-to-end sampling: the empirical law of emitted tokens stays within the sampling-noise
bound of the exact target law.

Bound for N samples from p over K outcomes (TV = ½‖p̂ − p‖₁): E[TV] ≤ ½ Σᵢ √(pᵢ(1 − pᵢ)/N)
(Jensen per coordinate), and TV changes by at most 1/N when one sample changes, so McDiarmid
gives P(TV ≥ E[TV] + t) ≤ exp(−2Nt²). With t = √(ln(1/δ)/(2N)) a correct sampler fails with
probability ≤ δ (fixed seeds make the test deterministic anyway)."""

import collections
import math

import pytest
import torch
from spec_fakes import HashLM, TinyTokenizer

from effeval.methods.hetero_spec import get_algorithm
from effeval.methods.hetero_spec.common import SamplingConfig, target_probs

DELTA = 1e-4


def tv_bound(p: torch.Tensor, n: int, delta: float = DELTA) -> float:
    p = p[p > 0].double()
    return float(0.5 * torch.sqrt(p * (1 - p) / n).sum()) + math.sqrt(math.log(1 / delta) / (2 * n))


def tv(counts: collections.Counter, p: dict, n: int) -> float:
    keys = set(counts) | set(p)
    return 0.5 * sum(abs(counts.get(k, 0) / n - p.get(k, 0.0)) for k in keys)


TARGET_TOK = TinyTokenizer(["a", "b", "ab", "c", "ba"])
DRAFTER_TOK = TinyTokenizer(["a", "b", "c", "abc", "cb"])
PROMPT = [1, 2]
N = 5000


def two_token_law(target, config):
    law = {}
    p1 = target_probs(target.score(tuple(PROMPT)), config)
    for a in range(len(p1)):
        if p1[a] <= 0:
            continue
        if a == 0:
            law[("eos",)] = float(p1[a])
            continue
        p2 = target_probs(target.score(tuple(PROMPT + [a])), config)
        for b in range(len(p2)):
            if p2[b] > 0:
                law[(a, "eos") if b == 0 else (a, b)] = float(p1[a] * p2[b])
    return law


@pytest.mark.parametrize("algorithm", ["tli", "slem"])
def test_first_two_tokens_tv_within_noise_bound(algorithm):
    target, drafter = HashLM(len(TARGET_TOK), seed=11), HashLM(len(DRAFTER_TOK), seed=12)
    config = SamplingConfig(do_sample=True, temperature=0.8, max_new_tokens=2, eos_token_ids=(0,))
    law = two_token_law(target, config)
    generate = get_algorithm(algorithm)
    generator = torch.Generator().manual_seed(2024)
    counts, accepted = collections.Counter(), 0
    for _ in range(N):
        res = generate(
            target, TARGET_TOK, drafter, DRAFTER_TOK, PROMPT, config, num_draft_tokens=2, generator=generator
        )
        counts[tuple(res.token_ids) + (("eos",) if res.stopped_by == "eos" else ())] += 1
        accepted += res.stats.accepted
    bound = tv_bound(torch.tensor(list(law.values())), N)
    distance = tv(counts, law, N)
    assert accepted > N // 10  # drafts really were accepted, so the check covers the acceptance rule
    assert distance <= bound, (distance, bound)
    # The bound is tight enough to catch a sampler that emits the drafter's law instead.
    q1 = target_probs(drafter.score(tuple(PROMPT)), config)
    p1 = target_probs(target.score(tuple(PROMPT)), config)
    assert 0.5 * float((q1[: len(p1)] - p1).abs().sum()) > 3 * bound


# Samples per algorithm on the real pair. transformers' path gets the full 5,000 so its figure is
# the end-to-end check (ours meet 5,000 in the tiny-vocabulary test above, where the law
# is exact; TLI here is the same check on real tokenizers, kept smaller for the suite's time).
# hf: 1,000 samples already separate its TV (0.27 measured at N=5,000) from the noise bound (~0.1);
# more only costs make-test minutes on an xfail that documents a known transformers issue
REAL_PAIR_N = {"tli": 400, "hf": 1000}


@pytest.fixture(scope="module")
def zoo_pair(zoo_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def load(name):
        path = zoo_path(name)
        return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)

    return load("qwen-tekken"), load("llama-sp")


@pytest.mark.parametrize(
    "algorithm",
    [
        "tli",
        pytest.param(
            "hf",
            marks=pytest.mark.xfail(
                reason="transformers 5.24's different-tokenizer sampling path (universal speculative decoding) does "
                "not reproduce the target's processed distribution: its first-token samples drift from the exact "
                "softmax beyond sampling noise (issue #3 quotes TV 0.356 vs 0.114 for plain sampling)",
                strict=False,
            ),
        ),
    ],
)
def test_real_pair_first_token_tv(algorithm, zoo_pair, record_property):
    """Real tokenizers (tekken target, Mistral SentencePiece drafter), T=0.5, top-k 8: the first
    emitted token of ``algorithm`` vs the exact target law. hf runs the same check."""
    (target, t_tok), (drafter, d_tok) = zoo_pair
    if algorithm == "hf":  # transformers rewrites the drafter in place: never share ours
        import copy

        drafter = copy.deepcopy(drafter)
    ids = t_tok("The cat sat on the")["input_ids"]
    config = SamplingConfig(
        do_sample=True, temperature=0.5, top_k=8, max_new_tokens=2, eos_token_ids=(t_tok.eos_token_id,)
    )
    with torch.no_grad():
        p = target_probs(target(torch.tensor([ids])).logits[0, -1], config)
    law = {int(i): float(p[i]) for i in torch.nonzero(p).flatten()}
    generate = get_algorithm(algorithm)
    generator = torch.Generator().manual_seed(7)
    counts = collections.Counter()
    n = REAL_PAIR_N[algorithm]
    for _ in range(n):
        res = generate(target, t_tok, drafter, d_tok, ids, config, num_draft_tokens=2, generator=generator)
        counts[res.token_ids[0] if res.token_ids else "eos"] += 1
    distance, bound = tv(counts, law, n), tv_bound(p, n)
    record_property("tv", distance)
    record_property("tv_bound", bound)
    print(f"{algorithm}: first-token TV {distance:.4f} (noise bound {bound:.4f}, N={n})")
    assert distance <= bound, (distance, bound)
