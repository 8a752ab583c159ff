"""``--format hub-eval-results``: the Hub's ``.eval_results/*.yaml`` files. Every committed result
exports to files that pass the spec's checks and that huggingface_hub's own reader parses; a file
missing a required field is refused; ``--push`` opens a pull request with exactly the written files
(the HfApi call is intercepted: no network); bad input is one line, exit 2, nothing written."""

import copy
import json
from pathlib import Path

import pytest
import yaml

from effeval.cli import main
from effeval.errors import ConfigError
from effeval.results.export import export
from effeval.results.hub_eval_results import (
    BENCHMARKS,
    FOLDER,
    eval_results_errors,
    read_eval_results,
)
from effeval.results.schema import SCHEMA_ID

REPO_ROOT = Path(__file__).resolve().parents[2]


def _result(
    tasks, method=("baseline", {}), kind="lm", source="org/tiny-model", run_id="run-1", efficiency=None
):
    return {
        "schema": SCHEMA_ID,
        "kind": kind,
        "run_id": run_id,
        "created": "2026-01-02T03:04:05+00:00",
        "model": {"name": "tiny", "source": source},
        "method": {"name": method[0], "args": method[1]},
        "tasks": tasks,
        "efficiency": efficiency if efficiency is not None else {"evaluation_wall_time_s": 12.5},
        "environment": {"versions": {}},
        "provenance": {"source_files": []},
    }


def _metric(value, n, higher=True, stderr=None):
    return {"value": value, "stderr": stderr, "higher_is_better": higher, "n_samples": n}


def _write(tmp_path, result, name="run.json"):
    path = tmp_path / name
    path.write_text(json.dumps(result))
    return path


def _committed_results():
    found = []
    for path in sorted((REPO_ROOT / "results").rglob("*.json")):
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(obj, dict) and obj.get("schema") == SCHEMA_ID:
            found.append((path, obj))
    return found


COMMITTED = _committed_results()


def test_the_repository_has_committed_results():
    # the parametrized test below would pass vacuously on an empty list
    assert len(COMMITTED) >= 5, [str(p) for p, _ in COMMITTED]


@pytest.mark.parametrize("path,result", COMMITTED, ids=[p.name for p, _ in COMMITTED])
def test_every_committed_result_exports_to_valid_eval_results(path, result, tmp_path):
    from huggingface_hub import parse_eval_result_entries

    image = result["kind"] == "image"
    keys = {t.split("/", 1)[0] if image else t for t in result["tasks"]}
    # tasks effeval has no benchmark dataset for are mapped by hand, as a user would
    extra = [f"{k}=effeval-test/{k.replace('_', '-')}-data" for k in sorted(keys) if k not in BENCHMARKS]
    written = export(path, "hub-eval-results", tmp_path, repo="effeval-test/model", benchmarks=extra)
    assert len(written) == len(result["tasks"])
    assert {p.parent for p in written} == {tmp_path / FOLDER}
    for file in written:
        doc = read_eval_results(file)  # the spec's required fields and types, no other keys
        (entry,) = parse_eval_result_entries(doc)  # huggingface_hub's own reader takes it
        assert "\n" not in entry.notes and f"effeval run {result['run_id']}" in entry.notes
        (task,) = [t for t in result["tasks"] if _file_task(file, t, result)]
        bench = BENCHMARKS.get(task)
        if bench is not None:
            assert (entry.dataset_id, entry.task_id) == (bench.dataset_id, bench.task_id)
            assert entry.value == result["tasks"][task][bench.metric]["value"]


def _file_task(file, task, result):
    """Does ``file`` hold ``task``'s result? (names: the task, or benchmark__intervention)."""
    from effeval.results.filenames import file_stem

    if result["kind"] == "image":
        bench, intervention = task.split("/", 1)
        return file.name == f"{file_stem(bench)}__{file_stem(intervention)}.yaml"
    return file.name == f"{file_stem(task)}.yaml" or file.name.startswith(f"{file_stem(task)}__")


def test_values_notes_and_file_names(tmp_path):
    tasks = {
        "effeval_real_humaneval": {"pass@1": _metric(0.25, 8, stderr=0.1)},
        "effeval_real_gsm_symbolic": {"exact_match": _metric(0.5, 200)},
        "effeval_real_xsum": {"rouge1": _metric(0.3, 1001), "rougeL": _metric(0.2, 1001)},
    }
    path = _write(tmp_path, _result(tasks, efficiency={"evaluation_wall_time_s": 77.0, "tokens_per_s": 3.5}))
    written = export(path, "hub-eval-results", tmp_path / "out", repo="org/model")
    docs = {p.name: yaml.safe_load(p.read_text()) for p in written}
    assert set(docs) == {f"{t}.yaml" for t in tasks}  # a baseline run: one plain file per benchmark task
    (he,) = docs["effeval_real_humaneval.yaml"]
    assert he["dataset"] == {"id": "openai/openai_humaneval", "task_id": "openai_humaneval"}
    assert he["value"] == 0.25 and he["date"] == "2026-01-02T03:04:05+00:00"
    assert "a slice: scored on 8 of the benchmark's 164 documents" in he["notes"]
    assert "evaluation_wall_time_s=77" in he["notes"] and "tokens_per_s=3.5" in he["notes"]
    (gsm,) = docs["effeval_real_gsm_symbolic.yaml"]
    assert gsm["dataset"]["id"] == "apple/GSM-Symbolic"
    assert "differs from the benchmark: not Apple's released problems" in gsm["notes"]
    (xsum,) = docs["effeval_real_xsum.yaml"]
    assert xsum["dataset"] == {"id": "EdinburghNLP/xsum", "task_id": "default"}
    assert xsum["value"] == 0.2  # the benchmark's headline metric (ROUGE-L), not the first one
    assert "a slice: scored on 1,001 of the benchmark's 11,334 documents" in xsum["notes"]
    assert "differs from the benchmark: BIG-bench's gem/xsum" in xsum["notes"]
    assert all(set(e) <= {"dataset", "value", "date", "notes"} for (e,) in docs.values())


def test_a_method_is_its_own_variant_and_says_so(tmp_path):
    tasks = {"effeval_real_humaneval": {"pass@1": _metric(0.0, 164)}}
    pruned = ("pruning", {"method": "wanda", "sparsity": 0.5, "pattern": "unstructured"})
    (plain,) = export(_write(tmp_path, _result(tasks)), "hub-eval-results", tmp_path / "a")
    (other,) = export(_write(tmp_path, _result(tasks, method=pruned)), "hub-eval-results", tmp_path / "b")
    assert plain.name == "effeval_real_humaneval.yaml"
    assert other.name != plain.name and other.name.startswith("effeval_real_humaneval__pruning-")
    notes = yaml.safe_load(other.read_text())[0]["notes"]
    assert "pruned at load time" in notes and "wanda" in notes and "slice" not in notes  # all 164 scored


def test_image_run_one_file_per_intervention(tmp_path):
    tasks = {
        f"leakage/{iv}": {"clip_similarity": _metric(0.2, 3), "leakage_rate": _metric(rate, 3, higher=False)}
        for iv, rate in (("none", 0.5), ("drop:{leak.source}@mask", 0.25))
    }
    path = _write(tmp_path, _result(tasks, method=("effeval-image", {"seeds": [0]}), kind="image"))
    written = export(path, "hub-eval-results", tmp_path / "o", repo="org/m", benchmarks=["leakage=org/leak"])
    values = {p.name: yaml.safe_load(p.read_text())[0] for p in written}
    assert values["leakage__none.yaml"]["value"] == 0.5  # the benchmark's rate, not the first metric
    (dropped,) = [v for k, v in values.items() if k != "leakage__none.yaml"]
    assert dropped["value"] == 0.25 and "drop:{leak.source}@mask" in dropped["notes"]


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e["dataset"].pop("id"),
        lambda e: e["dataset"].pop("task_id"),
        lambda e: e.pop("value"),
        lambda e: e.pop("dataset"),
        lambda e: e["dataset"].update(id="not-an-org-slash-name"),
        lambda e: e.update(value="0.5"),
        lambda e: e.update(value=float("nan")),
        lambda e: e.update(efficiency={"wall_time_s": 1.0}),  # a key the spec does not have
        lambda e: e.update(source={"name": "no url"}),
        lambda e: e.update(date="yesterday"),
    ],
    ids=[
        "no-id",
        "no-task_id",
        "no-value",
        "no-dataset",
        "bad-id",
        "str-value",
        "nan",
        "extra-key",
        "source",
        "date",
    ],
)
def test_a_broken_required_field_is_refused(tmp_path, change):
    tasks = {"effeval_real_humaneval": {"pass@1": _metric(0.25, 8)}}
    (path,) = export(_write(tmp_path, _result(tasks)), "hub-eval-results", tmp_path / "o")
    doc = yaml.safe_load(path.read_text())
    assert eval_results_errors(doc) == []
    broken = copy.deepcopy(doc)
    change(broken[0])
    assert eval_results_errors(broken)
    path.write_text(yaml.safe_dump(broken))
    with pytest.raises(ConfigError, match="not a valid eval result"):
        read_eval_results(path)


def _fake_create_commit(calls):
    class Info:
        pr_url = "https://huggingface.co/org/tiny-model/discussions/7"
        commit_url = "https://huggingface.co/org/tiny-model/commit/abc"

    def create_commit(self, repo_id, operations, **kwargs):
        calls.append({"repo_id": repo_id, "operations": list(operations), **kwargs})
        return Info()

    return create_commit


def _refuse(*args, **kwargs):
    raise AssertionError("a direct upload: only a pull request may be opened")


def test_push_opens_one_pull_request_with_exactly_the_written_files(tmp_path, monkeypatch, capsys):
    from huggingface_hub import HfApi

    calls = []
    monkeypatch.setattr(HfApi, "create_commit", _fake_create_commit(calls))
    for direct in ("upload_file", "upload_folder", "create_repo"):
        monkeypatch.setattr(HfApi, direct, _refuse)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_effevaltesttoken")
    tasks = {
        "effeval_real_humaneval": {"pass@1": _metric(0.25, 8)},
        "effeval_real_aime24": {"math_verify": _metric(0.0, 30)},
    }
    out = tmp_path / "out"
    rc = main(
        ["results", "export", str(_write(tmp_path, _result(tasks))), "--format", "hub-eval-results"]
        + ["--out", str(out), "--push"]
    )
    assert rc == 0
    assert "https://huggingface.co/org/tiny-model/discussions/7" in capsys.readouterr().out
    (call,) = calls
    assert call["repo_id"] == "org/tiny-model"  # the run's model id (no --repo given)
    assert call["repo_type"] == "model" and call["create_pr"] is True
    assert call["token"] == "hf_effevaltesttoken"
    on_disk = {f"{FOLDER}/{p.name}": p.read_bytes() for p in (out / FOLDER).iterdir()}
    sent = {op.path_in_repo: op.path_or_fileobj for op in call["operations"]}
    assert sent == on_disk and len(sent) == 2


def _one_line_exit_2(argv, capsys):
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    assert len(err) == 1 and "Traceback" not in err[0] and "Fix:" in err[0], err
    return err[0]


def test_push_without_a_token_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants
    from huggingface_hub import HfApi

    calls = []
    monkeypatch.setattr(HfApi, "create_commit", _fake_create_commit(calls))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    tasks = {"effeval_real_humaneval": {"pass@1": _metric(0.25, 8)}}
    out = tmp_path / "out"
    argv = ["results", "export", str(_write(tmp_path, _result(tasks))), "--format", "hub-eval-results"]
    line = _one_line_exit_2([*argv, "--out", str(out), "--push"], capsys)
    assert line.endswith("or run `hf auth login`") and "--push: no Hugging Face token" in line
    assert not out.exists() and calls == []


@pytest.mark.parametrize(
    "tasks,source,extra,expect",
    [
        (
            {"effeval_real_prose_ppl": {"word_perplexity": _metric(143.0, 6, False)}},
            "org/m",
            [],
            "no Hub benchmark",
        ),
        # BIG-bench's original tasks are not BIG-Bench-Hard: no BBH leaderboard entry by default
        ({"effeval_real_bigbench_snarks": {"acc": _metric(0.5, 181)}}, "org/m", [], "no Hub benchmark"),
        (
            {"effeval_real_humaneval": {"pass@1": _metric(0.1, 6)}},
            "zoo:smollm2-135m",
            [],
            "not a Hub model id",
        ),
        ({"effeval_real_humaneval": {"pass@1": _metric(0.1, 6)}}, "org/m", ["--repo", "justaname"], "--repo"),
        ({"my_task": {"acc": _metric(0.1, 6)}}, "org/m", ["--benchmark", "my_task=nodataset"], "--benchmark"),
        ({"effeval_real_humaneval": {"pass@1": _metric(0.1, 6)}}, "org/m", ["--tasks", "nope"], "--tasks"),
        ({"effeval_real_humaneval": {"acc": _metric(0.1, 6)}}, "org/m", [], "no value for pass@1"),
    ],
    ids=[
        "unmapped-task",
        "bigbench-not-bbh",
        "model-not-org-name",
        "bad-repo",
        "bad-benchmark",
        "unknown-task",
        "no-metric",
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, tasks, source, extra, expect):
    out = tmp_path / "out"
    argv = ["results", "export", str(_write(tmp_path, _result(tasks, source=source))), "--format"]
    line = _one_line_exit_2([*argv, "hub-eval-results", "--out", str(out), *extra], capsys)
    assert expect in line
    assert not out.exists()


def test_unmapped_task_can_be_mapped_or_left_out(tmp_path):
    tasks = {
        "effeval_real_humaneval": {"pass@1": _metric(0.1, 6)},
        "effeval_real_prose_ppl": {"word_perplexity": _metric(143.0, 6, False)},
    }
    path = _write(tmp_path, _result(tasks))
    (only,) = export(path, "hub-eval-results", tmp_path / "a", tasks=["effeval_real_humaneval"])
    assert only.name == "effeval_real_humaneval.yaml"
    mapped = export(
        path, "hub-eval-results", tmp_path / "b", benchmarks=["effeval_real_prose_ppl=org/prose:ppl"]
    )
    ppl = yaml.safe_load((tmp_path / "b" / FOLDER / "effeval_real_prose_ppl.yaml").read_text())[0]
    assert (
        len(mapped) == 2 and ppl["dataset"] == {"id": "org/prose", "task_id": "ppl"} and ppl["value"] == 143.0
    )
    assert "lower is better" in ppl["notes"]
    with pytest.raises(ConfigError, match="--benchmark: only --format hub-eval-results"):
        export(path, "eee", tmp_path / "c", benchmarks=["x=org/y"])


def test_text_from_the_run_cannot_add_keys(tmp_path):
    hostile = "x\nvalue: 1.0\n- dataset:\u2028notes: injected"
    tasks = {"effeval_real_humaneval": {"pass@1": _metric(0.1, 6)}}
    result = _result(tasks, run_id=hostile, method=("hetero-spec", {"drafter": hostile, "algorithm": "slem"}))
    (path,) = export(_write(tmp_path, result), "hub-eval-results", tmp_path / "o")
    (entry,) = yaml.safe_load(path.read_text())
    assert set(entry) == {"dataset", "value", "date", "notes"} and entry["value"] == 0.1
    assert "\n" not in entry["notes"] and "\u2028" not in entry["notes"]


def test_publishing_doc_shows_what_the_exporters_write(tmp_path):
    import re

    doc = (REPO_ROOT / "docs" / "publishing.md").read_text()
    section = doc.split("### One run, two formats", 1)[1]
    (eee_shown,) = re.findall(r"```json\n(.*?)```", section, re.S)
    (hub_shown,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    runs = [p for p, r in COMMITTED if r["run_id"] == "demo__hf-smollm2"]
    if not runs:
        pytest.skip("the demo's hf-smollm2 run is not committed under results/")
    (hub_file,) = export(
        runs[0],
        "hub-eval-results",
        tmp_path / "hub",
        repo="my-org/SmolLM2-135M-Instruct-zoo",
        tasks=["effeval_real_humaneval"],
    )
    assert yaml.safe_load(hub_shown) == yaml.safe_load(hub_file.read_text())
    records = [json.loads(p.read_text()) for p in export(runs[0], "eee", tmp_path / "eee")]
    (record,) = [
        r for r in records if r["evaluation_results"][0]["evaluation_name"] == "effeval_real_humaneval"
    ]
    shown = json.loads(eee_shown)
    kept = {r["evaluation_result_id"] for r in shown["evaluation_results"]}
    record["evaluation_results"] = [
        r for r in record["evaluation_results"] if r["evaluation_result_id"] in kept
    ]
    assert shown == record  # the doc leaves out two efficiency entries, nothing else
