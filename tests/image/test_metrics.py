"""Image metrics: values, bootstrap CIs and change vs the baseline against hand computations."""

import random

import numpy as np
import pytest
import torch

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


def _hand_ci(values, n_boot, seed, confidence=0.95):
    """The documented procedure, re-done with numpy on the same torch index draws."""
    idx = torch.randint(
        0, len(values), (n_boot, len(values)), generator=torch.Generator().manual_seed(seed)
    ).numpy()
    means = np.asarray(values)[idx].mean(axis=1)
    a = (1 - confidence) / 2
    return np.quantile(means, [a, 1 - a]), idx


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


def test_bootstrap_ci_matches_hand_computation():
    out = aggregate(ROWS, n_boot=400, seed=7)
    for name, per_prompt in [("leakage_rate", [0.5, 0.0, 1.0]), ("clipscore", [22.0, 30.0, 26.0, 18.0])]:
        (lo, hi), _ = _hand_ci(per_prompt, 400, 7)
        got = out["metrics"][name]
        assert (got["ci_low"], got["ci_high"]) == pytest.approx((lo, hi), abs=1e-9)
        assert got["ci_low"] <= got["value"] <= got["ci_high"]
        assert got["ci_low"] < got["ci_high"]
    # 99% intervals are at least as wide as 95% ones; constant data gives a zero-width interval
    wide = aggregate(ROWS, n_boot=400, seed=7, confidence=0.99)["metrics"]["clipscore"]
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
    out = aggregate(ROWS, BASELINE, n_boot=500, seed=0)
    ch = out["vs_baseline"]["leakage_rate"]
    # paired over a, b, c (e is only in the baseline): baseline 1, intervention 0.5
    assert ch["n_paired"] == 3 and ch["baseline"] == pytest.approx(1.0) and ch["value"] == pytest.approx(0.5)
    assert ch["rel_change"] == pytest.approx(-0.5) and ch["label"] == "leakage \u221250%"
    v, b = np.array([0.5, 0.0, 1.0]), np.array([1.0, 1.0, 1.0])
    (_, _), idx = _hand_ci(v, 500, 0)
    vm, bm = v[idx].mean(1), b[idx].mean(1)
    assert (ch["abs_ci_low"], ch["abs_ci_high"]) == pytest.approx(tuple(np.quantile(vm - bm, [0.025, 0.975])))
    assert (ch["rel_ci_low"], ch["rel_ci_high"]) == pytest.approx(
        tuple(np.quantile((vm - bm) / bm, [0.025, 0.975]))
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
