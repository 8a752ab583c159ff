"""The bench derives maj@k and short-m@k from ONE majority run (the pool). That is only right if
the pool's accounting equals what running the sampler with that m does: the same stop step (=
forward passes), the same thinking tokens, and a short-m@k run whose batches are exactly the
prefix of the full run's batches up to the stop (so the full run's clock at that step is the
short run's wall time). Checked on a scripted reasoner for every m, with a same-step tie and a
truncated chain.

Shown able to fail: three plausible wrong accountings (tokens of the voters only, no early stop,
the prefill counted as an extra pass) are each rejected by the same comparison."""

from functools import cache

import pytest

from effeval.methods.short_mk.pool import strategy_outcome

from .fakes import run

MARK = "</think>"
FINISH = [30, 22, 40, 25, 35, 22]  # chains 1 and 5 finish on the same step; chain 2 is truncated
ANSWERS = ["1", "7", "1", "7", "1", "3"]
BUDGET = 36
TARGET = "1"


def in_chain(finish_step: int, answer: str) -> str:
    head = "\\boxed{" + answer + "}"
    return head + "x" * (finish_step - len(head) - len(MARK)) + MARK + " done"


SCRIPTS = [in_chain(s, a) for s, a in zip(FINISH, ANSWERS)]
SETTINGS = {"answer_phase": "in_chain", "max_think_tokens": BUDGET}


def pool_accounting(chains, m):
    out = strategy_outcome("short", chains, TARGET, m=m)
    return out.stop_step, out.thinking_tokens


def voters_only(chains, m):
    stop, _ = pool_accounting(chains, m)
    voters = sorted((c for c in chains if c.finished), key=lambda c: c.think_tokens)[:m]
    return stop, sum(c.think_tokens for c in voters)


def no_early_stop(chains, m):
    return max(c.think_tokens for c in chains), sum(c.think_tokens for c in chains)


def prefill_as_extra_pass(chains, m):
    stop, tokens = pool_accounting(chains, m)
    return stop + 1, tokens


@cache
def sampled(strategy: str, m: int = 1):
    """One sampler run per (strategy, m), shared by the tests (results are only read)."""
    return run(SCRIPTS, m=m, strategy=strategy, **SETTINGS)


def mismatches(accounting) -> list[int]:
    """The m for which ``accounting`` on the full run's pool disagrees with a real short-m@k run."""
    full, full_backend = sampled("majority")
    assert [c.think_tokens for c in full.chains] == [min(s, BUDGET) for s in FINISH]
    assert len(full.step_wall_s) == full.forward_passes == BUDGET
    bad = []
    for m in range(1, len(SCRIPTS) + 1):
        short, backend = sampled("short", m)
        stop, tokens = accounting(full.chains, m)
        same_cost = stop == short.forward_passes == backend.calls and tokens == short.total_tokens
        # the short run computes exactly the full run's first `stop` batches: reading the full run's
        # clock at step `stop` (step_wall_s[stop - 1]) is the short run's wall time
        same_work = backend.batch_sizes == full_backend.batch_sizes[:stop] and len(short.step_wall_s) == stop
        if not (same_cost and same_work):
            bad.append(m)
    return bad


def test_pool_accounting_equals_a_real_short_m_run_for_every_m():
    assert mismatches(pool_accounting) == []


def test_majority_outcome_is_the_full_run():
    full, _ = sampled("majority")
    out = strategy_outcome("majority", full.chains, TARGET)
    assert out.stop_step == full.forward_passes and out.thinking_tokens == full.total_tokens
    assert out.answer == full.chains[full.vote.chosen].answer == "1" and out.correct


def test_pool_answers_equal_the_short_run_where_no_tie_decides():
    full, _ = sampled("majority")
    for m in (3, 4, 5, 6):  # the boundary chain is unique and no vote tie needs the seed
        short, _ = sampled("short", m)
        out = strategy_outcome("short", full.chains, TARGET, m=m)
        assert out.answer == short.chains[short.vote.chosen].answer
        assert out.chosen == short.vote.chosen


@pytest.mark.parametrize("wrong", [voters_only, no_early_stop, prefill_as_extra_pass])
def test_wrong_accountings_are_caught(wrong):
    assert mismatches(wrong) != []
