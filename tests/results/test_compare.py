"""compare: deltas, paired bootstrap CIs, efficiency ratios and output equality against hand
computations on a small fixture; different tasks are a clear error."""

import hashlib
import json
import math

import pytest

from effeval.errors import ConfigError
from effeval.results.compare import bootstrap_indices, compare, compare_runs
from effeval.results.runs import load_runs
from effeval.results.writer import write_result

STAMP = "2026-01-01T00-00-00.000000"


def _write_run(folder, name, mc_acc, gen_outputs, gen_em, efficiency, tasks=("mc", "gen")):
    folder.mkdir(parents=True, exist_ok=True)
    sources, task_block = [], {}
    if "mc" in tasks:
        lines = [
            {"doc_id": i, "filter": "none", "acc": a, "filtered_resps": [["-1.0", "False"]]}
            for i, a in enumerate(mc_acc)
        ]
        task_block["mc"] = {
            "acc": {"value": sum(mc_acc) / len(mc_acc), "stderr": None, "higher_is_better": True}
        }
        path = folder / f"samples_mc_{STAMP}.jsonl"
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))
        sources.append(path)
    if "gen" in tasks:
        lines = [
            {"doc_id": i, "filter": "none", "exact_match": e, "filtered_resps": [o]}
            for i, (o, e) in enumerate(zip(gen_outputs, gen_em))
        ]
        task_block["gen"] = {"exact_match": {"value": sum(gen_em) / len(gen_em), "higher_is_better": True}}
        path = folder / f"samples_gen_{STAMP}.jsonl"
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))
        sources.append(path)
    result = {
        "schema": "effeval/result/v1",
        "kind": "lm",
        "run_id": name,
        "created": "2026-01-01T00:00:00+00:00",
        "model": {"name": "m", "source": "/x/m"},
        "method": {"name": name, "args": {}},
        "tasks": task_block,
        "efficiency": efficiency,
        "environment": {"versions": {}},
        "provenance": {
            "source_files": [
                {"path": str(p), "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in sources
            ]
        },
    }
    return write_result(folder / f"{name}.json", result)


@pytest.fixture
def two_runs(tmp_path):
    a = _write_run(
        tmp_path / "a",
        "dense",
        [1, 0, 1, 1, 0],
        ["x", "y", "z"],
        [1, 0, 0],
        {
            "evaluation_wall_time_s": 10.0,
            "wall_time_s": 8.0,
            "generated_tokens": 100,
            "tokens_per_s": 12.5,
            "nonzero_params": 1000,
        },
    )
    b = _write_run(
        tmp_path / "b",
        "sparse",
        [1, 1, 1, 0, 1],
        ["x", "q", "z"],
        [1, 0, 1],
        {
            "evaluation_wall_time_s": 4.0,
            "wall_time_s": 3.0,
            "generated_tokens": 60,
            "tokens_per_s": 20.0,
            "global_sparsity": 0.5,
            "nonzero_params": 500,
        },
    )
    return a, b


def _hand_ci(diffs, iters, seed, confidence):
    idx = bootstrap_indices(len(diffs), iters, seed).tolist()
    means = sorted(sum(diffs[i] for i in row) / len(row) for row in idx)
    alpha = 1 - confidence
    return means[math.floor(alpha / 2 * iters)], means[math.ceil((1 - alpha / 2) * iters) - 1]


def test_deltas_and_cis_equal_hand_computation(two_runs, tmp_path):
    out = tmp_path / "cmp.json"
    report = compare([str(p) for p in two_runs], out=str(out), iters=200, seed=3)
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    comp = report["comparisons"][0]
    assert report["baseline"]["run"] == "dense" and comp["run"] == "sparse"

    acc = comp["tasks"]["mc"]["metrics"]["acc"]
    diffs = [b - a for a, b in zip([1, 0, 1, 1, 0], [1, 1, 1, 0, 1])]
    assert acc["delta"] == pytest.approx(0.8 - 0.6)
    assert acc["paired_mean_delta"] == pytest.approx(sum(diffs) / 5)
    assert acc["paired_documents"] == 5
    lo, hi = _hand_ci(diffs, 200, 3, 0.95)
    assert (acc["ci_low"], acc["ci_high"]) == pytest.approx((lo, hi))
    assert acc["ci_low"] < acc["paired_mean_delta"] < acc["ci_high"]

    em = comp["tasks"]["gen"]["metrics"]["exact_match"]
    assert em["delta"] == pytest.approx(1 / 3)
    assert (em["ci_low"], em["ci_high"]) == pytest.approx(_hand_ci([0, 0, 1], 200, 3, 0.95))
    # outputs: doc 1 differs ("y" vs "q"), docs 0 and 2 match
    outputs = comp["tasks"]["gen"]["outputs"]
    assert outputs == {
        "paired_documents": 3,
        "equal": 2,
        "equal_fraction": pytest.approx(2 / 3),
        "differing_doc_ids": [1],
    }

    eff = comp["efficiency"]
    assert eff["speedup"] == pytest.approx(10.0 / 4.0) and eff["speedup_clock"] == "evaluation_wall_time_s"
    assert eff["tokens_saved"] == 40 and eff["tokens_saved_fraction"] == pytest.approx(0.4)
    assert eff["tokens_per_s_ratio"] == pytest.approx(1.6)
    assert eff["sparsity"] == 0.5 and eff["baseline_sparsity"] == 0.0
    assert eff["nonzero_parameters_ratio"] == pytest.approx(0.5)


def test_ci_is_seeded_and_degenerate_when_every_difference_is_equal(two_runs):
    runs = load_runs(two_runs)
    r1 = compare_runs(runs, iters=300, seed=7)["comparisons"][0]["tasks"]["mc"]["metrics"]["acc"]
    r2 = compare_runs(runs, iters=300, seed=7)["comparisons"][0]["tasks"]["mc"]["metrics"]["acc"]
    r3 = compare_runs(runs, iters=300, seed=8)["comparisons"][0]["tasks"]["mc"]["metrics"]["acc"]
    assert (r1["ci_low"], r1["ci_high"]) == (r2["ci_low"], r2["ci_high"])
    assert r3["paired_mean_delta"] == r1["paired_mean_delta"]
    # a run against itself: every paired difference is 0, so every resample mean is 0
    same = compare_runs(load_runs([two_runs[0], two_runs[0]]), iters=50, seed=1)["comparisons"][0]
    assert (
        same["tasks"]["mc"]["metrics"]["acc"]["ci_low"]
        == same["tasks"]["mc"]["metrics"]["acc"]["ci_high"]
        == 0
    )
    assert same["tasks"]["gen"]["outputs"]["equal_fraction"] == 1.0


def test_missing_samples_still_compares_scores(two_runs, tmp_path):
    for p in (tmp_path / "b").glob("samples_*.jsonl"):
        p.unlink()
    acc = compare_runs(load_runs(two_runs))["comparisons"][0]["tasks"]["mc"]["metrics"]["acc"]
    assert acc["delta"] == pytest.approx(0.2) and "ci_low" not in acc
    assert "samples missing for sparse" in acc["ci_note"]


def test_different_tasks_name_the_tasks(tmp_path, two_runs):
    c = _write_run(tmp_path / "c", "mc-only", [1, 1, 0, 0, 1], [], [], {"wall_time_s": 1.0}, tasks=("mc",))
    with pytest.raises(ConfigError, match=r"only dense has gen") as err:
        compare([str(two_runs[0]), str(c)])
    assert "--tasks" in str(err.value)
    # restricting to the shared task works
    report = compare_runs(load_runs([two_runs[0], c]), tasks=["mc"])
    assert list(report["comparisons"][0]["tasks"]) == ["mc"]
    with pytest.raises(ConfigError, match="mc-only lacks gen"):
        compare_runs(load_runs([two_runs[0], c]), tasks=["gen"])


def test_bad_inputs(tmp_path, two_runs):
    with pytest.raises(ConfigError, match="at least two runs"):
        compare([str(two_runs[0])])
    with pytest.raises(ConfigError, match="no such file"):
        compare([str(two_runs[0]), str(tmp_path / "missing.json")])
    junk = tmp_path / "junk.json"
    junk.write_text('{"a": 1}')
    with pytest.raises(ConfigError, match="neither effeval JSON"):
        compare([str(two_runs[0]), str(junk)])


def test_compare_real_lm_eval_folders(lm_eval_run, capsys):
    # an lm-eval output folder is converted on the fly; a run against itself changes nothing
    report = compare([str(lm_eval_run), str(lm_eval_run)], iters=100)
    comp = report["comparisons"][0]
    assert set(comp["tasks"]) == {"effeval_smoke_mc", "effeval_smoke_gen"}
    for task in comp["tasks"].values():
        assert task["outputs"]["equal_fraction"] == 1.0 and task["outputs"]["paired_documents"] == 4
        for m in task["metrics"].values():
            assert m["delta"] == 0 and m["ci_low"] == m["ci_high"] == 0
    assert "effeval_smoke_gen" in capsys.readouterr().out


def test_cli_compare_different_tasks_exit_code(tmp_path, two_runs, capsys):
    from effeval.cli import main

    c = _write_run(tmp_path / "c", "mc-only", [1, 1, 0, 0, 1], [], [], {"wall_time_s": 1.0}, tasks=("mc",))
    assert main(["results", "compare", str(two_runs[0]), str(c)]) == 2
    assert "only dense has gen" in capsys.readouterr().err
    out = tmp_path / "cmp.json"
    assert (
        main(
            ["results", "compare", str(two_runs[0]), str(two_runs[1]), "--out", str(out), "--bootstrap", "50"]
        )
        == 0
    )
    assert json.loads(out.read_text())["comparisons"][0]["run"] == "sparse"
