"""hetero_spec_qasper reads the SCROLLS zip as lm-eval's scrolls task does (datasets refuses the
repo's loading script). Offline, on a tiny zip built here in the SCROLLS layout
(``qasper/<split>.jsonl``, one row per reference answer)."""

import json
import zipfile

import pytest

from effeval import task_data
from effeval.errors import ConfigError

ROWS = [
    {"id": "p1", "pid": "p1_0", "input": "How many layers?\n\nWe use three layers.", "output": "three"},
    {"id": "p2", "pid": "p2_0", "input": "Which data?\n\nWe use SQuAD.", "output": "SQuAD"},
    {"id": "p1", "pid": "p1_1", "input": "How many layers?\n\nWe use three layers.", "output": "3 layers"},
]


@pytest.fixture()
def qasper_zip(tmp_path):
    path = tmp_path / "qasper.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("qasper/validation.jsonl", "".join(json.dumps(r) + "\n" for r in ROWS))
        archive.writestr("qasper/train.jsonl", json.dumps(ROWS[1]) + "\n")
    return path


def test_rows_repeating_an_id_merge_their_answers(qasper_zip):
    data = task_data.load_scrolls("qasper", "validation", zip_path=str(qasper_zip))["validation"]
    assert data["id"] == ["p1", "p2"]
    assert data["output"] == [["three", "3 layers"], ["SQuAD"]]
    assert data["input"][0] == "How many layers?\n\nWe use three layers."
    train = task_data.load_scrolls("qasper", "train", zip_path=str(qasper_zip))["train"]
    assert train["id"] == ["p2"]


def test_the_task_loads_through_lm_eval_and_scores_any_reference(qasper_zip, repo_root, monkeypatch):
    from lm_eval.tasks import TaskManager, get_task_dict

    monkeypatch.setattr(task_data, "scrolls_zip", lambda name: qasper_zip)
    manager = TaskManager(include_path=str(repo_root / "task_configs"), include_defaults=False)
    task = get_task_dict(["hetero_spec_qasper"], manager)["hetero_spec_qasper"]
    docs = list(task.validation_docs())
    assert len(docs) == 2
    assert task.doc_to_text(docs[0]) == "How many layers?\n\nWe use three layers.\nAnswer:\n"
    assert task.process_results(docs[0], ["3 layers"]) == {"f1": 1.0}  # the second reference
    assert task.process_results(docs[0], ["five"]) == {"f1": 0.0}


def test_a_zip_without_the_split_is_a_one_line_error(qasper_zip):
    with pytest.raises(ConfigError, match="has no readable qasper/test.jsonl"):
        task_data.load_scrolls("qasper", "test", zip_path=str(qasper_zip))


def test_offline_without_a_cached_zip_names_the_fix(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError, match="cannot get tau/scrolls/qasper.zip .* Fix: run where the Hub"):
        task_data.scrolls_zip("qasper")
