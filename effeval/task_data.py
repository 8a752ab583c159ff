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
        for lineno, line in enumerate(_utf8_lines(fh, path), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"{path}:{lineno}: malformed JSON ({exc.msg}). Fix: one JSON object per line"
                ) from None
            if not isinstance(row, dict):
                raise ConfigError(
                    f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}. "
                    "Fix: one JSON object per line"
                )
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


# ----------------------------------------------------------------------------- SCROLLS (hub zip)

SCROLLS_REPO = "tau/scrolls"


def scrolls_zip(name: str) -> Path:
    """``<name>.zip`` of the ``tau/scrolls`` dataset repo, downloaded once into the Hugging Face cache.

    ``datasets`` no longer runs the repo's loading script (``scrolls.py``); lm-eval's own scrolls
    task reads the zipped JSONL the repo publishes beside it, and so does this. Offline, a cached
    zip is used; an uncached one is a one-line error."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id=SCROLLS_REPO, repo_type="dataset", filename=f"{name}.zip"))
    except Exception as exc:  # offline, no network, unknown file: all the same fix for the user
        raise ConfigError(
            f"SCROLLS {name}: cannot get {SCROLLS_REPO}/{name}.zip from the Hugging Face Hub "
            f"({type(exc).__name__}). Fix: run where the Hub is reachable with HF_HUB_OFFLINE=0 "
            "(once; it is cached), or use the offline *_mini twin"
        ) from None


def read_scrolls_zip(path: str | Path, name: str, split: str) -> list[dict]:
    """Rows of ``<name>/<split>.jsonl`` in a SCROLLS zip, one per distinct input: rows that repeat
    an ``id`` (one per reference answer) are merged, their ``output`` values kept as a list in
    file order (as lm-eval's scrolls task and the SCROLLS evaluator do)."""
    import io
    import zipfile

    member = f"{name}/{split}.jsonl"
    try:
        with zipfile.ZipFile(path) as archive:
            raw = archive.read(member).decode("utf-8")
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ConfigError(
            f"SCROLLS {name}: {path} has no readable {member} ({exc}). "
            "Fix: delete the cached zip and download it again"
        ) from None
    merged: dict[str, dict] = {}
    for lineno, line in enumerate(io.StringIO(raw), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{member}:{lineno}: malformed JSON ({exc.msg})") from None
        if row["id"] in merged:
            merged[row["id"]]["output"].append(row["output"])
        else:
            merged[row["id"]] = {**row, "output": [row["output"]]}
    if not merged:
        raise ConfigError(f"SCROLLS {name}: {member} in {path} is empty. Fix: download the zip again")
    return list(merged.values())


def load_scrolls(name: str = "qasper", split: str = "validation", zip_path: str | None = None, **_unused):
    """lm-eval ``custom_dataset`` for a SCROLLS task: ``{split: Dataset}`` from the repo's zip
    (``zip_path`` reads a local copy instead)."""
    import datasets

    path = Path(zip_path) if zip_path else scrolls_zip(name)
    return {split: datasets.Dataset.from_list(read_scrolls_zip(path, name, split))}


def _utf8_lines(fh, path: Path) -> Iterator[str]:
    try:
        yield from fh
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start} of a read "
            f"block). Fix: convert it, e.g. iconv -f latin1 -t utf-8 {path} > fixed.jsonl"
        ) from None


def read_text_file(path: str | Path, argument: str, max_chars: int | None = None) -> str:
    """A user's text file as str. Binary data (NUL bytes) and text that is not UTF-8 are a
    ConfigError naming ``argument``: decoding them with replacement characters would silently
    train or calibrate on garbage."""
    path = Path(path)
    with open(path, "rb") as fh:
        raw = fh.read(None if max_chars is None else 4 * max_chars)
    if b"\x00" in raw:
        raise ConfigError(
            f"{argument}: {str(path)!r} is a binary file (it holds NUL bytes), not text. "
            "Fix: pass a UTF-8 text file"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if max_chars is not None and exc.start >= len(raw) - 3:  # cut inside a character by the limit
            text = raw[: exc.start].decode("utf-8")
        else:
            raise ConfigError(
                f"{argument}: {str(path)!r} is not UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start}). "
                f"Fix: convert it, e.g. iconv -f latin1 -t utf-8 {path} > {path.stem}.utf8{path.suffix}"
            ) from None
    return text if max_chars is None else text[:max_chars]
