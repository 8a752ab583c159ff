"""SLRS's draft/verify plumbing on real tokenizer pairs from the zoo (random weights suffice).

Greedy SLRS never computes the drafter's string law q (the target's argmax decides each token),
so the greedy test is a check of what greedy exercises on real tokenizers: byte alignment of
drafted strings, re-tokenisation, acceptance/rejection and stop strings. It is token-identical
to AR on 31 prompts (Mistral SentencePiece target, tekken drafter; 8 prompts the other way round;
31 prompts with Mistral's v3 SentencePiece target and v1 drafter). That SLRS's *sampled* output
follows the target's law (q computed exactly) is tested against exact distributions elsewhere
(``test_slrs_exact.py``, ``test_exact_law.py``, ``test_sampling_tv.py``). Here sampling also reports its DP cost, and the exact-DP
budget is enforced with a clear error."""

import pytest
import torch
from prompts import PROMPTS

from effeval.methods.hetero_spec import get_algorithm
from effeval.methods.hetero_spec.common import SamplingConfig

PAIRS = {
    "llama-sp_from_qwen-tekken": ("llama-sp", "qwen-tekken"),
    "qwen-tekken_from_llama-sp": ("qwen-tekken", "llama-sp"),
    # a second tokenizer pairing: Mistral's v3 SentencePiece (32,768) target, v1 (32,000) drafter
    "llama-sp-v3_from_llama-sp": ("llama-sp-v3", "llama-sp"),
}
MAX_NEW = 6
K = 3
# The main pair runs every prompt; the reverse pair (131k-vocab target) a subset, to stay fast.
N_PROMPTS = {
    "llama-sp_from_qwen-tekken": len(PROMPTS),
    "qwen-tekken_from_llama-sp": 8,
    "llama-sp-v3_from_llama-sp": len(PROMPTS),
}


@pytest.fixture(scope="module")
def pair(zoo_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache = {}

    def get(name):
        if name not in cache:
            target_name, drafter_name = PAIRS[name]
            models = []
            for model_name in (target_name, drafter_name):
                path = zoo_path(model_name)
                models += [
                    AutoModelForCausalLM.from_pretrained(path).eval(),
                    AutoTokenizer.from_pretrained(path),
                ]
            cache[name] = tuple(models)
        return cache[name]

    return get


@pytest.mark.parametrize("pair_name", list(PAIRS))
def test_greedy_slrs_plumbing_is_token_identical_to_ar(pair, pair_name):
    target, ttok, drafter, dtok = pair(pair_name)
    ar, slrs = get_algorithm("ar"), get_algorithm("slrs")
    assert len(PROMPTS) >= 30
    accepted, drafted = 0, 0
    for i, prompt in enumerate(PROMPTS[: N_PROMPTS[pair_name]]):
        ids = ttok(prompt)["input_ids"]
        stops = ("\n\n",) if i % 3 == 0 else ()  # stop strings exercised mid-draft too
        config = SamplingConfig(
            max_new_tokens=MAX_NEW, stop_strings=stops, eos_token_ids=(ttok.eos_token_id,)
        )
        want = ar(target, ttok, drafter, dtok, ids, config, num_draft_tokens=K)
        got = slrs(target, ttok, drafter, dtok, ids, config, num_draft_tokens=K)
        assert got.token_ids == want.token_ids, (i, prompt)
        assert (got.text, got.stopped_by) == (want.text, want.stopped_by), (i, prompt)
        accepted += got.stats.accepted
        drafted += got.stats.drafted
    # the random SP/tekken pairs both agree and disagree, so accept and reject paths are covered
    if "tekken" in pair_name:
        assert 0 < accepted < drafted
    else:
        assert drafted > 0


def test_sampling_runs_and_reports_its_cost(pair):
    target, ttok, drafter, dtok = pair("llama-sp_from_qwen-tekken")
    config = SamplingConfig(do_sample=True, temperature=1.0, max_new_tokens=4)
    ids = ttok(PROMPTS[0])["input_ids"]
    res = get_algorithm("slrs")(
        target,
        ttok,
        drafter,
        dtok,
        ids,
        config,
        num_draft_tokens=2,
        generator=torch.Generator().manual_seed(0),
    )
    stats = res.stats.as_dict()
    assert len(res.token_ids) == 4 and res.stopped_by == "length"
    assert stats["drafted"] >= 1 and stats["target_calls"] == len(res.stats.accepted_lengths)
    assert stats["dp_states"] >= stats["drafter_batches"] >= 1 and stats["drafter_calls"] >= 1
    assert stats["dp_states_per_step"] > 0 and stats["drafter_calls_per_step"] > 0


def test_dp_budget_falls_back_to_target_only_steps(pair):
    """Over max_dp_states the run neither aborts nor approximates: the next position is a
    target-only step, counted (its exactness is enumerated in test_slrs_exact.py)."""
    target, ttok, drafter, dtok = pair("llama-sp_from_qwen-tekken")
    config = SamplingConfig(do_sample=True, max_new_tokens=4)
    ids = ttok(PROMPTS[8])["input_ids"]
    res = get_algorithm("slrs")(
        target,
        ttok,
        drafter,
        dtok,
        ids,
        config,
        num_draft_tokens=2,
        max_dp_states=1,
        generator=torch.Generator().manual_seed(0),
    )
    assert res.stats.new_tokens == 4 and res.stats.extra["dp_budget_fallbacks"] > 0
