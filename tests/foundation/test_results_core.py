"""effeval/result/v1: schema checks, atomic writes, offline task data errors."""

import json

import pytest

from effeval.errors import ConfigError
from effeval.results import validate_result, write_result
from effeval.results.schema import schema_errors


def minimal_result(**over):
    doc = {
        "schema": "effeval/result/v1",
        "kind": "lm",
        "run_id": "r1",
        "created": "2026-11-25T10:00:00+00:00",
        "model": {"name": "m", "source": "/m"},
        "method": {"name": "baseline", "args": {}},
        "tasks": {"t": {"acc": {"value": 0.5, "stderr": 0.1, "higher_is_better": True}}},
        "efficiency": {"wall_time_s": 1.5},
        "environment": {"versions": {"effeval": "0.1.0"}},
        "provenance": {"source_files": []},
    }
    doc.update(over)
    return doc


def test_schema_accepts_a_minimal_result_and_names_what_is_wrong():
    assert schema_errors(minimal_result()) == []
    errors = schema_errors(minimal_result(kind="audio", efficiency={"wall_time_s": -1}))
    assert any(e.startswith("kind:") for e in errors)
    assert any(e.startswith("efficiency/wall_time_s:") for e in errors)
    with pytest.raises(ConfigError, match="is not valid effeval/result/v1"):
        validate_result({"schema": "effeval/result/v1"})


def test_write_is_atomic_and_refuses_invalid_documents(tmp_path):
    target = tmp_path / "out" / "r.json"
    write_result(target, minimal_result())
    before = target.read_text()
    with pytest.raises(ConfigError):
        write_result(target, minimal_result(tasks="nope"))
    assert target.read_text() == before  # the old file is untouched
    assert [p.name for p in target.parent.iterdir()] == ["r.json"]  # no temp file left behind


def test_non_finite_numbers_are_refused_and_nothing_is_written(tmp_path):
    """NaN / Infinity are not JSON (issue 21): the writer names the key instead of silently writing
    null (the converter maps lm-eval's undefined stderr to null before it gets here)."""
    doc = minimal_result(tasks={"t": {"ppl": {"value": 3.0, "stderr": float("nan")}}})
    with pytest.raises(ConfigError, match=r"tasks/t/ppl/stderr: nan is not a JSON number"):
        write_result(tmp_path / "r.json", doc)
    assert not list(tmp_path.iterdir())
    doc["tasks"]["t"]["ppl"]["stderr"] = None
    path = write_result(tmp_path / "r.json", doc)
    assert json.loads(path.read_text())["tasks"]["t"]["ppl"]["stderr"] is None


def test_task_data_errors_name_file_and_line(tmp_path):
    from effeval.task_data import load_jsonl, read_jsonl

    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="empty data file"):
        read_jsonl(empty)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(ConfigError, match=r"bad.jsonl:2: malformed JSON"):
        read_jsonl(bad)
    ds = load_jsonl(data_file="smoke/mc.jsonl")["test"]
    assert len(ds) == 20 and set(ds.column_names) == {"question", "choices", "answer"}
