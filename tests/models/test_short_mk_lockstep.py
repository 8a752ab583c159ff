"""Several questions' chains in one lockstep batch (``effeval.methods.short_mk.lockstep``) give the
chains each question gets alone: prompts of different lengths (so left padding is exercised),
greedy and sampled, stop rules per question; a failure in one question ends the group."""

import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

PROMPTS = ["Q: 2 + 5 = ?\nA: <think>", "Q: 19 - 4 + 1 * 3 - 2 = ?\nA: <think>", "Q: 7 = ?\nA: <think>"]


@pytest.fixture(scope="module")
def tiny(zoo_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = zoo_path("reasoner-sp")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    return tok, model


def run_one_with(tok, **cfg):
    from effeval.methods.short_mk.sampler import ShortMKConfig, sample_short_mk

    def run_one(backend, prompt):
        return sample_short_mk(
            backend,
            prompt,
            ShortMKConfig(**cfg),
            decode=lambda ids: tok.decode(ids, skip_special_tokens=True),
            encode=lambda s: tok.encode(s, add_special_tokens=False),
            eos_ids=[tok.eos_token_id],
        )

    return run_one


def chains_of(result):
    return [(c.text, c.think_tokens, c.status) for c in result.chains]


CASES = {
    "greedy": dict(do_sample=False),
    "sampled": dict(do_sample=True, temperature=0.7, top_p=0.95, seed=11),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_group_gives_each_question_its_own_chains(tiny, case):
    from effeval.methods.short_mk.hf_backend import HFStepBackend
    from effeval.methods.short_mk.lockstep import sample_group

    tok, model = tiny
    cfg = dict(k=4, strategy="majority", think_end="in", max_think_tokens=30, answer_phase="in_chain")
    run_one = run_one_with(tok, **cfg, **CASES[case])
    prompts = [tok.encode(p) for p in PROMPTS]
    assert len({len(p) for p in prompts}) == 3  # the group must pad
    alone = [chains_of(run_one(HFStepBackend(model), p)) for p in prompts]
    grouped = [chains_of(r) for r in sample_group(model, prompts, run_one, k=4, pad_id=tok.eos_token_id)]
    assert grouped == alone
    if case == "sampled":  # rows left the batch at different steps, so row selection was exercised
        assert len({t for chains in alone for _, t, _ in chains}) > 1


def two_steps(backend, prompt):
    """Prefill, then two decode steps feeding fixed tokens; the logits of all three."""
    import torch

    first = backend.prefill(prompt, 2)
    second = backend.decode(torch.tensor([5, 9]), [0, 1])
    third = backend.decode(torch.tensor([7]), [1])  # a row leaves the batch
    return [first, second, third]


def grouped_logit_error(tiny) -> float:
    from effeval.methods.short_mk.hf_backend import HFStepBackend
    from effeval.methods.short_mk.lockstep import sample_group

    tok, model = tiny
    prompts = [tok.encode(p) for p in PROMPTS]
    alone = [two_steps(HFStepBackend(model), p) for p in prompts]
    grouped = sample_group(model, prompts, two_steps, k=2, pad_id=tok.eos_token_id)
    return max(float((a - b).abs().max()) for qa, qb in zip(alone, grouped) for a, b in zip(qa, qb))


def test_group_logits_equal_each_question_alone(tiny):
    assert grouped_logit_error(tiny) < 1e-4


@pytest.mark.parametrize("bug", ["pads_attended", "positions_from_padded_width"])
def test_a_wrong_group_is_caught(tiny, monkeypatch, bug):
    """The comparisons above can fail: attending to the left padding, or counting positions over
    the padded width (plausible bugs), changes the padded questions' logits."""
    import torch

    from effeval.methods.short_mk import lockstep

    real_init = lockstep.LockstepGroup.__init__

    def broken(self, model, prompts, k, pad_id=0):
        real_init(self, model, prompts, k, pad_id)
        if bug == "pads_attended":
            self.mask = torch.ones_like(self.mask)
        else:
            self.position = torch.full_like(self.position, max(len(p) for p in prompts))

    monkeypatch.setattr(lockstep.LockstepGroup, "__init__", broken)
    assert grouped_logit_error(tiny) > 1e-3


def test_a_failing_question_ends_the_group(tiny):
    import torch

    from effeval.methods.short_mk.lockstep import sample_group

    tok, model = tiny
    run_one = run_one_with(tok, k=2, strategy="majority", think_end="in", max_think_tokens=6, do_sample=False)

    def sometimes_fails(backend, prompt):
        if backend.q == 1:  # fails after the group's first step, while the others wait on the next
            backend.prefill(prompt, 2)
            backend.decode(torch.tensor([5, 9]), [0, 1])
            raise ValueError("boom")
        return run_one(backend, prompt)

    prompts = [tok.encode(p) for p in PROMPTS]
    with pytest.raises(ValueError, match="boom"):
        sample_group(model, prompts, sometimes_fails, k=2, pad_id=tok.eos_token_id)
