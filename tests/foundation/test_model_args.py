"""Wrapper-base behaviour: model_args validation, device fallback, pretrained checks, stats."""

import pytest

from effeval.config_fields import positive
from effeval.errors import ConfigError
from effeval.models.base import (
    Arg,
    EfficiencyStats,
    check_pretrained,
    parse_model_args,
    resolve_device,
)

SPECS = [
    Arg("k", int, 4, check=positive),
    Arg("strategy", str, "short", choices=("short", "majority")),
    Arg("verify", bool, False),
    Arg("temperature", float, 1.0),
    Arg("drafter", str, help="a drafter model directory"),
]


def test_coercion_of_cli_and_python_values():
    ours, rest = parse_model_args(
        SPECS,
        {"k": "8", "verify": "true", "temperature": 0, "drafter": "/x", "dtype": "float32"},
        "effeval-x",
    )
    assert ours == {"k": 8, "strategy": "short", "verify": True, "temperature": 0.0, "drafter": "/x"}
    assert rest == {"dtype": "float32"}  # unknown keys go to the lm-eval base class


@pytest.mark.parametrize(
    "given, fragment",
    [
        ({"drafter": "d", "k": "four"}, "'k': 'four' is not a valid int"),
        ({"drafter": "d", "k": 0}, "'k': must be > 0"),
        ({"drafter": "d", "k": 2.5}, "'k': 2.5 is not a valid int"),
        ({"drafter": "d", "strategy": "longest"}, "unknown value 'longest'. Fix: use one of short, majority"),
        ({"drafter": "d", "verify": "maybe"}, "'verify': 'maybe' is not a valid bool"),
        ({}, "missing model_args 'drafter'. Fix: add drafter=..."),
    ],
)
def test_bad_values_name_the_argument_and_the_fix(given, fragment):
    with pytest.raises(ConfigError) as err:
        parse_model_args(SPECS, given, "effeval-x")
    assert fragment in str(err.value)
    assert "Fix:" in str(err.value)
    assert "\n" not in str(err.value)


def test_device_falls_back_to_cpu_without_cuda():
    import torch

    if torch.cuda.is_available():
        assert resolve_device("cuda:0") == "cuda:0"
    else:
        assert resolve_device("cuda:0") == "cpu"
        assert resolve_device("cuda") == "cpu"
    assert resolve_device("cpu") == "cpu"


def test_missing_pretrained_dir_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no model directory at"):
        check_pretrained(str(tmp_path / "nope"), model="effeval-x")
    with pytest.raises(ConfigError, match="has no config.json"):
        check_pretrained(str(tmp_path), model="effeval-x")
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE=1"):
        check_pretrained("some-org/not-cached-model-xyz", model="effeval-x")


def test_stats_merge_across_ranks_sums_counts_and_takes_max_wall_time():
    a, b = EfficiencyStats(), EfficiencyStats()
    a.wall_time_s, a.requests, a.generated_tokens = 2.0, 3, 30
    b.wall_time_s, b.requests, b.generated_tokens = 5.0, 4, 10
    a.add(accepted=7)
    b.add(accepted=5, drafted=9)
    merged = EfficiencyStats()
    merged.merge(a)
    merged.merge(b)
    s = merged.summary()
    assert (s["wall_time_s"], s["requests"], s["generated_tokens"]) == (5.0, 7, 40)
    assert s["accepted"] == 12 and s["drafted"] == 9
    assert s["tokens_per_s"] == pytest.approx(8.0)
