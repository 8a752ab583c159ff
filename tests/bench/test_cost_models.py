"""Closed-form checks of the bench's small formulas, on hand-made inputs with hand-computed values."""

from __future__ import annotations

import pytest


def test_run_cost_model_counts_prefill_once_per_request_and_rounds_after_it():
    from effeval.bench.hetero_spec import run_cost_model

    # 2 requests, 12 target calls = 2 prefills + 10 rounds of 40/10 + 1 = 5 verify rows (c_v 2.0);
    # AR: 2 prefills (10 steps each) + 48 steps = 68; speculation: 20 + 10 x 2 + 40 x 0.1 = 44
    eff = {
        "requests": 2,
        "target_calls": 12,
        "drafted": 40,
        "drafter_calls": 40,
        "ar_target_calls": 50,
        "speedup_vs_ar": 1.1,
    }
    costs = {"verify_over_step": {"1": 1.0, "5": 2.0, "9": 3.0}, "drafter_over_step": 0.1}
    out = run_cost_model(eff, costs, prefill_over_step=10.0)
    assert out["cost_verify_rows_per_round"] == pytest.approx(5.0)
    assert out["cost_verify_over_step"] == pytest.approx(2.0)
    assert out["ideal_speedup"] == pytest.approx(68 / 44)
    assert out["measured_over_ideal"] == pytest.approx(1.1 * 44 / 68)


def test_run_cost_model_without_ar_baseline_reports_no_ratio():
    from effeval.bench.hetero_spec import run_cost_model

    eff = {"requests": 1, "target_calls": 3, "drafted": 4, "drafter_calls": 4, "ar_target_calls": 5}
    out = run_cost_model(eff, {"verify_over_step": {"1": 1.0, "3": 1.5}, "drafter_over_step": 0.5}, 0.0)
    # rounds 2, rows 3 (c_v 1.5): AR 4 steps, speculation 2 x 1.5 + 4 x 0.5 = 5
    assert out["ideal_speedup"] == pytest.approx(4 / 5)
    assert out["measured_speedup"] is None and out["measured_over_ideal"] is None


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # Wilson 95% intervals, computed by hand from the closed form (z = 1.96)
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (20, 40, 0.3520, 0.6480),
    ],
)
def test_wilson_interval(k, n, low, high):
    from effeval.bench.humaneval_large import wilson

    out = wilson(k, n)
    assert out["value"] == pytest.approx(k / n)
    assert out["ci_low"] == pytest.approx(low, abs=5e-4)
    assert out["ci_high"] == pytest.approx(high, abs=5e-4)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--models", "qwen2.5-coder-0.5b"], "--models: 'qwen2.5-coder-0.5b' is not TARGET:DRAFTER"),
        (["--models", "smollm2-135m:gemma3-270m"], "--models: smollm2-135m is not a real-large target"),
        (["--models", "nope:smollm2-135m"], "--models: zoo model 'nope' is unknown"),
        (["--limit", "165"], "--limit: 165 problems"),
    ],
)
def test_humaneval_large_bad_arguments_fail_in_one_line(argv, needle, capsys):
    from effeval.bench.humaneval_large import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and needle in err[-1]
