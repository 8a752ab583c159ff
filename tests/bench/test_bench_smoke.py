"""One smoke run per benchmark with tiny arguments: the JSON it writes holds the measured fields,
and every ratio it reports is the one computed from those fields (a ratio taken from the wrong
pair of numbers, or left over from a default, fails). Timing values themselves are not judged.

Not covered here (too heavy for ``make test``): ``spellm`` (its output-layer part times 131k x 4096
projections), ``pruned-ssm`` (SmolLM2 / trained Mamba2 proxy) and ``real`` (GGUF conversions).
"""

from __future__ import annotations

import json
import statistics

import pytest


@pytest.fixture
def bench_out(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFEVAL_BENCH_DIR", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return tmp_path


def _load(folder, name):
    doc = json.loads((folder / f"{name}.json").read_text())
    assert doc["bench"] == name and "environment" in doc
    return doc


def test_overhead_ratios_come_from_the_measured_cpu_times(bench_out, zoo_path):
    zoo_path("llama-sp")
    from effeval.bench.overhead import main

    argv = [
        "--loglikelihood",
        "8",
        "--generate",
        "2",
        "--max-gen-toks",
        "4",
        "--repeats",
        "1",
        "--batch-size",
        "4",
    ]
    assert main([*argv, "--out", str(bench_out)]) == 0
    doc = _load(bench_out, "overhead")
    ratios = []
    for kind, per_model in doc["results"].items():
        hf_cpu = statistics.median(per_model["hf"]["cpu_s"])
        for label, row in per_model.items():
            cpu = statistics.median(row["cpu_s"])
            assert row["requests_per_cpu_s"] == pytest.approx(row["requests"] / cpu), (kind, label)
            assert row["throughput_ratio_vs_hf"] == pytest.approx(hf_cpu / cpu), (kind, label)
            assert row["best_wall_throughput_ratio_vs_hf"] == pytest.approx(
                min(per_model["hf"]["wall_s"]) / min(row["wall_s"])
            )
            if label != "hf":
                ratios.append(row["throughput_ratio_vs_hf"])
        # the pass-through base changes nothing: same answers as hf
        assert per_model["wrapper base (pass-through)"]["outputs_identical_to_hf"] is True
    assert doc["worst_ratio"] == pytest.approx(min(ratios))
    assert doc["meets_goal"] == (doc["worst_ratio"] >= doc["goal"])


def test_image_ratios_come_from_the_fastest_calls(bench_out, zoo_path):
    zoo_path("sd-tiny")
    from effeval.bench.image import main

    assert main(["--pipelines", "sd-tiny", "--repeats", "1", "--no-scorers"]) == 0
    doc = _load(bench_out, "image")
    rows = doc["pipelines"]
    (stock,) = [r for r in rows if r["variant"].startswith("stock")]
    assert len(rows) > 1
    for row in rows:
        assert row["ratio_vs_stock"] == pytest.approx(stock["min_cpu_s"] / row["min_cpu_s"]), row["variant"]
        assert row["wall_ratio_vs_stock"] == pytest.approx(stock["min_wall_s"] / row["min_wall_s"])


def test_hetero_spec_speedups_come_from_tokens_and_time(bench_out, zoo_path):
    zoo_path("llama-sp"), zoo_path("qwen-tekken")
    from effeval.bench.hetero_spec import interpolate, main

    argv = ["--pairs", "zoo", "--modes", "greedy", "--prompts-per-task", "1", "--max-new-tokens", "2"]
    argv += ["--repeats", "1", "--algorithms", "ar,slem,tli,slem:a", "--cost-repeats", "1"]
    argv += ["--out", str(bench_out)]
    assert main(argv) == 0
    doc = _load(bench_out, "hetero-spec")
    pair = doc["pairs"][0]
    rows = [r for r in pair["rows"] if "tokens_per_s" in r]
    ar_by_task = {r["task"]: r for r in rows if r["algorithm"] == "ar"}
    assert {r["algorithm"] for r in rows} == {"ar", "slem", "tli", "slem:a"}
    costs = pair["cost_model"]
    assert costs["verify_over_step"]["1"] == pytest.approx(1.0)
    for row in rows:
        ar = ar_by_task[row["task"]]
        assert row["tokens_per_s"] == pytest.approx(row["new_tokens"] / row["wall_time_s"]), row["algorithm"]
        assert row["speedup_vs_ar"] == pytest.approx(row["tokens_per_s"] / ar["tokens_per_s"])
        assert row["tokens_per_target_call"] == pytest.approx(row["new_tokens"] / row["target_calls"])
        assert row["equal_to_ar"] == row["compared"]  # greedy speculation is exact
        if row["algorithm"] == "ar":
            continue
        # the cost model: ideal = tokens per round / (drafter passes * drafter cost + verify cost),
        # every term from the row's own counts and the pair's measured costs
        per_round = row["drafter_calls"] / row["target_calls"]
        cost = per_round * costs["drafter_over_step"] + interpolate(
            costs["verify_over_step"], row["cost_verify_rows_per_round"]
        )
        assert row["ideal_speedup"] == pytest.approx(row["tokens_per_target_call"] / cost)
        assert row["measured_over_ideal"] == pytest.approx(row["decode_speedup_vs_ar"] / row["ideal_speedup"])
        layer_share = costs["drafter_layers"] / costs["target_layers"]
        assert row["prediction_layer_bound_speedup"] == pytest.approx(
            row["tokens_per_target_call"] / (per_round * layer_share + 1)
        )


def test_short_mk_ratios_are_relative_to_majority_voting(bench_out, zoo_path):
    zoo_path("reasoner-sp")
    from effeval.bench.short_mk import main

    argv = [
        "--model",
        "reasoner-sp",
        "--untrained",
        "--questions",
        "2",
        "--k",
        "4",
        "--max-think-tokens",
        "8",
    ]
    assert main([*argv, "--answer-tokens", "2", "--out", str(bench_out)]) == 0
    (path,) = bench_out.glob("*.json")
    doc = json.loads(path.read_text())
    rows = {r["strategy"]: r for r in doc["results"]}
    majority = rows["maj@k"]
    for name, row in rows.items():
        for measured in ("thinking_tokens", "total_tokens", "forward_passes"):
            assert row[f"{measured}_ratio"] == pytest.approx(row[measured] / majority[measured]), (
                name,
                measured,
            )
        assert row["accuracy_minus_majority"] == pytest.approx(row["accuracy"] - majority["accuracy"])
