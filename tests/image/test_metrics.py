"""Image metrics: values, bootstrap CIs and change vs the baseline against hand computations.

The CIs are checked against the exact bootstrap law (every one of the n^n resamples of n prompts
enumerated), not by replaying the implementation's random stream: with 4,000 resamples the
reported percentile must lie within 1 percentage point of the exact 2.5% / 97.5% quantiles
(about 4 standard errors). Shown able to fail: 5% / 95% quantiles land outside on the six-prompt
data, and resampling baseline and intervention without their pairing gives [-5, 5] for the
clipscore change instead of about [-0.8, 0.8]."""

import itertools
import random

import numpy as np
import pytest

from effeval.errors import ConfigError
from effeval.image.metrics import aggregate

# two seeds for prompt "a", one for the others; "d" has no leak questions (no leakage key)
ROWS = [
    {"id": "a", "seed": 0, "leakage": 1.0, "omission": 0.0, "clipscore": 20.0},
    {"id": "a", "seed": 1, "leakage": 0.0, "omission": 0.5, "clipscore": 24.0},
    {"id": "b", "seed": 0, "leakage": 0.0, "omission": 0.0, "clipscore": 30.0},
    {"id": "c", "seed": 0, "leakage": 1.0, "omission": 1.0, "clipscore": 26.0},
    {"id": "d", "seed": 0, "omission": 0.0, "binding": 0.75, "clipscore": 18.0, "q.x.p_yes": 0.3},
]
BASELINE = [
    {"id": "a", "seed": 0, "leakage": 1.0, "clipscore": 21.0},
    {"id": "a", "seed": 1, "leakage": 1.0, "clipscore": 23.0},
    {"id": "b", "seed": 0, "leakage": 1.0, "clipscore": 29.0},
    {"id": "c", "seed": 0, "leakage": 1.0, "clipscore": 27.0},
    {"id": "e", "seed": 0, "leakage": 0.0, "clipscore": 10.0},  # not in ROWS: not paired
]


def _exact_law(statistic, n: int) -> np.ndarray:
    """``statistic(indices)`` over every bootstrap resample of ``n`` prompts (n^n of them)."""
    return np.array([statistic(np.array(idx)) for idx in itertools.product(range(n), repeat=n)])


def _assert_percentile_ci(low, high, law, confidence=0.95, band=0.01):
    a = (1 - confidence) / 2
    assert np.quantile(law, a - band, method="lower") <= low <= np.quantile(law, a + band, method="higher")
    assert (
        np.quantile(law, 1 - a - band, method="lower")
        <= high
        <= np.quantile(law, 1 - a + band, method="higher")
    )


def test_values_average_seeds_per_prompt_then_prompts():
    out = aggregate(ROWS, n_boot=50)
    m = out["metrics"]
    assert out["n_prompts"] == 4 and out["n_rows"] == 5
    # leakage per prompt (sorted ids a, b, c): a = (1+0)/2, b = 0, c = 1
    assert m["leakage_rate"]["value"] == pytest.approx((0.5 + 0.0 + 1.0) / 3) and m["leakage_rate"]["n"] == 3
    assert m["omission_rate"]["value"] == pytest.approx((0.25 + 0 + 1 + 0) / 4)
    assert m["binding_accuracy"]["value"] == pytest.approx(0.75) and m["binding_accuracy"]["n"] == 1
    assert m["clipscore"]["value"] == pytest.approx((22 + 30 + 26 + 18) / 4)
    assert m["leakage_rate"]["higher_is_better"] is False and m["clipscore"]["higher_is_better"] is True
    assert not any(k.startswith("q.") for k in m)  # per-question probabilities are not metrics


def test_bootstrap_ci_is_the_percentile_interval_of_the_exact_bootstrap_law():
    out = aggregate(ROWS, n_boot=4000, seed=7)
    for name, per_prompt in [("leakage_rate", [0.5, 0.0, 1.0]), ("clipscore", [22.0, 30.0, 26.0, 18.0])]:
        values = np.array(per_prompt)
        got = out["metrics"][name]
        _assert_percentile_ci(
            got["ci_low"], got["ci_high"], _exact_law(lambda i, values=values: values[i].mean(), len(values))
        )
    # six prompts: the exact law is fine enough that 5% / 95% (or 1% / 99%) quantiles fall outside
    six = np.array([18.0, 22.0, 23.0, 26.0, 30.0, 35.0])
    got = aggregate([{"id": str(i), "clipscore": x} for i, x in enumerate(six)], n_boot=4000, seed=7)
    got = got["metrics"]["clipscore"]
    _assert_percentile_ci(got["ci_low"], got["ci_high"], _exact_law(lambda i: six[i].mean(), len(six)))
    # 99% intervals are at least as wide as 95% ones; constant data gives a zero-width interval
    wide = aggregate(ROWS, n_boot=4000, seed=7, confidence=0.99)["metrics"]["clipscore"]
    assert (
        wide["ci_low"] <= out["metrics"]["clipscore"]["ci_low"]
        and wide["ci_high"] >= out["metrics"]["clipscore"]["ci_high"]
    )
    flat = aggregate([{"id": str(i), "clipscore": 5.0} for i in range(6)], n_boot=100)["metrics"]["clipscore"]
    assert flat["ci_low"] == flat["ci_high"] == flat["value"] == 5.0


def test_seeded_and_independent_of_row_order():
    shuffled = ROWS[:]
    random.Random(3).shuffle(shuffled)
    assert aggregate(shuffled, BASELINE, n_boot=300, seed=1) == aggregate(ROWS, BASELINE, n_boot=300, seed=1)
    assert aggregate(ROWS, n_boot=300, seed=1) != aggregate(ROWS, n_boot=300, seed=2)


def test_change_vs_baseline_relative_reduction_and_paired_ci():
    out = aggregate(ROWS, BASELINE, n_boot=4000, seed=0)
    ch = out["vs_baseline"]["leakage_rate"]
    # paired over a, b, c (e is only in the baseline): baseline 1, intervention 0.5
    assert ch["n_paired"] == 3 and ch["baseline"] == pytest.approx(1.0) and ch["value"] == pytest.approx(0.5)
    assert ch["rel_change"] == pytest.approx(-0.5) and ch["label"] == "leakage \u221250%"
    # paired resamples: prompt i brings its intervention and its baseline value together
    v, b = np.array([0.5, 0.0, 1.0]), np.array([1.0, 1.0, 1.0])
    _assert_percentile_ci(
        ch["abs_ci_low"], ch["abs_ci_high"], _exact_law(lambda i: v[i].mean() - b[i].mean(), 3)
    )
    rel_law = _exact_law(lambda i: (v[i].mean() - b[i].mean()) / b[i].mean(), 3)
    _assert_percentile_ci(ch["rel_ci_low"], ch["rel_ci_high"], rel_law)
    # the clipscore change is where pairing matters: baseline and intervention move together
    cv, cb = np.array([22.0, 30.0, 26.0]), np.array([22.0, 29.0, 27.0])
    clip_ch = out["vs_baseline"]["clipscore"]
    _assert_percentile_ci(
        clip_ch["abs_ci_low"], clip_ch["abs_ci_high"], _exact_law(lambda i: cv[i].mean() - cb[i].mean(), 3)
    )
    clip = out["vs_baseline"]["clipscore"]
    assert clip["baseline"] == pytest.approx((22 + 29 + 27) / 3) and clip["value"] == pytest.approx(
        (22 + 30 + 26) / 3
    )
    assert clip["label"] == "CLIPScore +0%"
    assert "omission_rate" not in out["vs_baseline"]  # the baseline has no omission numbers


def test_zero_baseline_has_no_relative_change():
    rows = [{"id": "a", "leakage": 0.5}, {"id": "b", "leakage": 0.0}]
    base = [{"id": "a", "leakage": 0.0}, {"id": "b", "leakage": 0.0}]
    ch = aggregate(rows, base, n_boot=50)["vs_baseline"]["leakage_rate"]
    assert ch["rel_change"] is None and ch["abs_change"] == pytest.approx(0.25)
    assert ch["label"] == "leakage +0.25 (baseline 0)"


def test_bad_metric_inputs_are_clear_errors():
    with pytest.raises(ConfigError, match=r"row 0 has no 'id'"):
        aggregate([{"leakage": 1.0}])
    with pytest.raises(ConfigError, match="--bootstrap"):
        aggregate(ROWS, n_boot=0)
    with pytest.raises(ConfigError, match="--confidence"):
        aggregate(ROWS, confidence=95)
