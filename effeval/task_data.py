"""Offline task data for lm-eval YAML tasks (``custom_dataset: !function effeval.task_data.load_jsonl``).

Files live in ``task_configs/data/``; the YAML names one with ``dataset_kwargs: {data_file: ...}``.
An empty file or a malformed line is a clear error naming the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from effeval.errors import ConfigError


def task_configs_dir() -> Path:
    """Our lm-eval task folder: inside the wheel, or the repository's in an editable install."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "task_configs", here.parent / "task_configs"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("effeval's task_configs folder is missing from this install. Fix: reinstall effeval")


def data_dir() -> Path:
    return task_configs_dir() / "data"


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for each non-blank line; a malformed line is a ConfigError
    naming the file and line."""
    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"{path}:{lineno}: malformed JSON ({exc.msg}). Fix: one JSON object per line"
                ) from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            yield lineno, row


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"data file {str(path)!r} does not exist. Fix: check data_file in the task YAML")
    rows = [row for _, row in iter_jsonl(path)]
    if not rows:
        raise ConfigError(f"{path}: empty data file. Fix: add at least one JSON line")
    return rows


def load_jsonl(data_file: str | None = None, split: str = "test", **_unused):
    """lm-eval ``custom_dataset``: ``{split: datasets.Dataset}`` from a shipped JSONL file."""
    import datasets

    if not data_file:
        raise ConfigError(
            "task YAML: dataset_kwargs.data_file is missing. Fix: name a file under task_configs/data/"
        )
    path = Path(data_file)
    if not path.is_absolute():
        path = data_dir() / path
    return {split: datasets.Dataset.from_list(read_jsonl(path))}
