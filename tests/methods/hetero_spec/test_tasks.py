"""hetero_spec task metrics and offline twins: canonical answers score 1, wrong ones 0, and the
twins load through lm-eval with the paper's prompt."""

import importlib.util
import json

import pytest


@pytest.fixture(scope="module")
def utils(repo_root):
    spec = importlib.util.spec_from_file_location(
        "hetero_spec_utils", repo_root / "task_configs/hetero_spec/utils.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows(repo_root, name):
    return [
        json.loads(line)
        for line in (repo_root / "task_configs/data/hetero_spec" / name).read_text().splitlines()
    ]


def test_programming_metric_runs_the_tests(utils, repo_root):
    for doc in rows(repo_root, "humaneval.jsonl"):
        assert utils.process_code(doc, [doc["canonical_solution"]]) == {"pass@1": 1.0}
        assert utils.process_code(doc, ["    return None\n"]) == {"pass@1": 0.0}


def test_summary_and_qa_metrics(utils, repo_root):
    doc = rows(repo_root, "cnndm.jsonl")[0]
    assert utils.process_summary(doc, [doc["highlights"]])["rougeL"] == 1.0
    assert utils.process_summary(doc, ["unrelated words entirely"])["rougeL"] == 0.0
    qa = rows(repo_root, "qasper.jsonl")[1]
    assert utils.process_qa(qa, ["three"])["f1"] == 1.0 and utils.process_qa(qa, ["four"])["f1"] == 0.0


def test_twins_load_with_the_paper_prompt(repo_root):
    from lm_eval.tasks import TaskManager, get_task_dict

    manager = TaskManager(include_path=str(repo_root / "task_configs"), include_defaults=False)
    tasks = get_task_dict(["hetero_spec_cnndm_mini", "hetero_spec_cnndm_mini_t1"], manager)
    greedy, sampled = tasks["hetero_spec_cnndm_mini"], tasks["hetero_spec_cnndm_mini_t1"]
    doc = greedy.test_docs()[0]
    assert greedy.doc_to_text(doc) == f"Summarize the following article:\n{doc['article']}\nSummary:\n"
    assert greedy.config.generation_kwargs["do_sample"] is False
    assert (
        sampled.config.generation_kwargs["do_sample"] is True
        and sampled.config.generation_kwargs["temperature"] == 1.0
    )
    real = {
        p.stem
        for p in (repo_root / "task_configs/hetero_spec").glob("hetero_spec_*.yaml")
        if "mini" not in p.stem
    }
    assert real == {f"hetero_spec_{t}{v}" for t in ("cnndm", "humaneval", "qasper") for v in ("", "_t1")}
    for name in real:
        text = (repo_root / "task_configs/hetero_spec" / f"{name}.yaml").read_text()
        assert "max_gen_toks: 512" in text
