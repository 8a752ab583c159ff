"""The early stop is real: forward passes end where the m-th chain finishes; exactly those m vote."""

import pytest

from effeval.errors import ConfigError
from effeval.methods.short_mk.sampler import ShortMKConfig, ThinkEndDetector

from .fakes import CharTokenizer, run

MARK = "</think>"


def in_chain(finish_step: int, answer: str) -> str:
    """A chain whose marker ends exactly at ``finish_step`` with the answer inside the thinking."""
    head = "\\boxed{" + answer + "}"
    assert finish_step >= len(head) + len(MARK)
    return head + "x" * (finish_step - len(head) - len(MARK)) + MARK + " done"


def continued(finish_step: int, answer: str) -> str:
    """Thinking ends at ``finish_step``; the answer follows the marker."""
    return "y" * (finish_step - len(MARK)) + MARK + " \\boxed{" + answer + "}"


def test_forward_passes_stop_at_mth_finish_and_only_those_m_vote():
    finish = [30, 22, 40, 25, 35]
    answers = ["1", "7", "1", "9", "1"]  # the majority answer 1 is NOT among the first two to finish
    result, backend = run(
        [in_chain(s, a) for s, a in zip(finish, answers)], m=2, strategy="short", answer_phase="in_chain"
    )
    assert backend.calls == 25 == result.forward_passes  # prefill gives step 1; the 2nd finish is step 25
    assert result.stop_step == 25
    voters = sorted(c.index for c in result.chains if c.selected)
    assert voters == [1, 3]
    # 7 vs 9 is a 1-1 tie: the answer whose chain is shortest (chain 1, 22 tokens) wins.
    assert result.vote.answer == "7" and result.vote.chosen == 1 and result.vote.tie_break == "shortest"
    assert result.text.startswith("\\boxed{7}")
    for c in result.chains:
        if c.index in (0, 2, 4):
            assert c.status == "aborted" and c.think_tokens == 25
        else:
            assert c.status == "finished" and c.think_tokens == finish[c.index]
    assert result.total_tokens == 22 + 25 * 4


def test_majority_runs_every_chain_and_votes_over_all():
    finish = [30, 22, 40, 25, 35]
    answers = ["1", "7", "1", "9", "1"]
    result, backend = run(
        [in_chain(s, a) for s, a in zip(finish, answers)], strategy="majority", answer_phase="in_chain"
    )
    assert backend.calls == 40 == result.forward_passes
    assert result.vote.answer == "1" and result.vote.tally == {"1": 3, "7": 1, "9": 1}
    assert result.vote.chosen == 0  # the shortest chain with the winning answer
    assert result.total_tokens == sum(finish)


def test_answer_phase_continue_adds_exactly_the_answer_steps_of_the_m_chains():
    finish = [20, 12, 30, 15]
    answers = ["4", "55", "4", "6"]
    result, backend = run(
        [continued(s, a) for s, a in zip(finish, answers)], m=2, answer_phase="continue", answer_tokens=64
    )
    # chain 3 finishes thinking at 15, then writes " \boxed{6}" (10 tokens) + EOS: its last step is 26;
    # chain 1 (12) writes " \boxed{55}" (11 tokens) + EOS: done at 24.
    assert result.forward_passes == backend.calls == 26
    assert backend.batch_sizes[:15] == [4] * 15  # all chains think until the stop ...
    assert backend.batch_sizes[15:] == [2] * 9 + [1] * 2  # ... then only the m answering rows run
    assert result.chains[1].answer_tokens == 12 and result.chains[3].answer_tokens == 11
    assert result.vote.tally == {"55": 1, "6": 1} and result.vote.answer == "55"
    assert result.text == continued(12, "55")


def test_answer_budget_caps_the_answer_phase():
    result, backend = run([continued(10, "12345")] * 2, m=1, answer_tokens=4)
    chosen = result.chains[result.vote.chosen]
    assert chosen.answer_tokens == 4 and result.forward_passes == 14  # 10 thinking + 4 answer steps
    assert result.vote.answer is None  # the truncated answer has no closed \boxed{}


def test_eos_ends_a_chain_and_counts_as_finished():
    scripts = ["\\boxed{3}zz", in_chain(30, "4"), in_chain(25, "4")]  # chain 0 hits EOS at step 12
    result, backend = run(scripts, m=1, answer_phase="in_chain")
    assert result.chains[0].status == "eos" and result.chains[0].think_tokens == 12
    assert backend.calls == 12 and result.vote.answer == "3"


def test_thinking_budget_truncates_and_nobody_finished_falls_back_to_all_chains():
    result, backend = run(
        [in_chain(40, "2"), in_chain(50, "2")], m=1, max_think_tokens=20, answer_phase="in_chain"
    )
    assert all(c.status == "truncated" and c.think_tokens == 20 for c in result.chains)
    assert backend.calls == 20
    assert result.vote.answer == "2"  # the boxed answer was written before the budget ran out


def test_same_step_finishers_pick_exactly_m_by_seeded_choice():
    scripts = [in_chain(20, str(i)) for i in range(4)]  # all four finish on step 20
    picks = set()
    for seed in range(12):
        result, _ = run(scripts, m=2, answer_phase="in_chain", seed=seed)
        voters = tuple(sorted(c.index for c in result.chains if c.selected))
        assert len(voters) == 2
        again, _ = run(scripts, m=2, answer_phase="in_chain", seed=seed)
        assert voters == tuple(sorted(c.index for c in again.chains if c.selected))  # same seed, same pick
        assert again.vote.chosen == result.vote.chosen
        picks.add(voters)
    assert len(picks) > 1  # the seed matters: not always the lowest indices


def test_measure_savings_books_shadow_work_apart_and_matches_majority():
    finish = [20, 12, 30, 15, 25]
    scripts = [continued(s, "5") for s in finish]
    short, b_short = run(scripts, m=2)
    measured, b_meas = run(scripts, m=2, measure_savings=True)
    full, _ = run(scripts, strategy="majority")
    assert measured.forward_passes == short.forward_passes  # the method's own passes are unchanged
    assert measured.shadow_forward_passes == b_meas.calls - short.forward_passes > 0
    assert [c.log() | {"full_think_tokens": None, "full_total_tokens": None} for c in measured.chains] == [
        c.log() | {"full_think_tokens": None, "full_total_tokens": None} for c in short.chains
    ]
    eff = measured.efficiency()
    assert eff["counterfactual_total_tokens"] == full.total_tokens
    assert eff["counterfactual_thinking_tokens"] == sum(finish)
    assert eff["total_generated_tokens"] == short.total_tokens < full.total_tokens


def test_random_generates_one_chain():
    result, backend = run(
        [in_chain(30, "1"), in_chain(22, "2"), in_chain(26, "3")], strategy="random", answer_phase="in_chain"
    )
    assert len(result.chains) == 1 and backend.batch_sizes[0] == 1


def test_longest_waits_for_all_and_returns_the_longest():
    result, backend = run(
        [in_chain(30, "1"), in_chain(22, "2"), in_chain(26, "3")], strategy="longest", answer_phase="in_chain"
    )
    assert backend.calls == 30 and result.vote.answer == "1"


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"k": 2, "m": 3}, "m:"),
        ({"k": 0, "m": 1}, "k:"),
        ({"k": 2, "m": 1, "strategy": "fastest"}, "strategy:"),
        ({"k": 2, "m": 1, "answer": "regex:(unclosed"}, "answer:"),
        ({"k": 2, "m": 1, "answer_phase": "later"}, "answer_phase:"),
    ],
)
def test_bad_config_is_one_clear_error(kwargs, argument):
    with pytest.raises(ConfigError) as err:
        ShortMKConfig(**kwargs).validate()
    assert str(err.value).startswith(argument) and "Fix:" in str(err.value)


def test_marker_the_tokenizer_cannot_write_is_a_clear_error():
    tok = CharTokenizer(chars="abcdefghijklmnopqrstuvwxyz ")  # no '<', '/', '>'
    with pytest.raises(ConfigError, match="think_end: the tokenizer cannot represent"):
        ThinkEndDetector("</think>", tok.encode, tok.decode)
    with pytest.raises(ConfigError, match="think_end: empty marker"):
        ThinkEndDetector("  ", tok.encode, tok.decode)


def test_final_answer_pattern_ends_a_chain_where_the_answer_is_complete():
    """Models without thinking tags: the chain finishes when it has written its final answer.
    The first hit must come once the number is complete ("42. ", not "4"), and a \\boxed{} once
    closed. Shown able to fail: the same pattern without its terminator hits at "...is 4"."""
    from effeval.methods.short_mk.sampler import FINAL_ANSWER_PATTERN, ThinkEndDetector

    def encode(text):
        return [ord(c) for c in text]

    def decode(ids):
        return "".join(chr(i) for i in ids)

    detector = ThinkEndDetector("regex:" + FINAL_ANSWER_PATTERN, encode, decode)

    def first_hit(text):
        ids = encode(text)
        return next((decode(ids[:n]) for n in range(1, len(ids) + 1) if detector.hit(ids[:n])), None)

    assert first_hit("so the answer is 42. Then more") == "so the answer is 42. "
    assert first_hit("The final answer is: $1,200 total") == "The final answer is: $1,200 "
    assert first_hit("we get \\boxed{\\frac{1}{2}} and") == "we get \\boxed{\\frac{1}{2}}"
    assert first_hit("no answer here, 42 apples") is None
    assert first_hit("The answer is 3/4. Done") == "The answer is 3/4. "
    assert first_hit("so the answer is 2^3 = 8") is None  # not cut at "2^"
    with pytest.raises(ConfigError, match="^think_end: .*not a valid regular expression"):
        ThinkEndDetector("regex:(", encode, decode)
