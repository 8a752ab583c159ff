"""Calibration windows: ``nsamples`` random windows of ``seqlen`` tokens (seeded), as in WANDA /
SparseGPT (the paper uses 128 x 128).

Sources (``calibration=`` strings):
- a path to a local text file (or ``file:PATH``);
- ``dataset:NAME[:CONFIG[:SPLIT[:COLUMN]]]``: a ``datasets`` dataset (hub name, or a directory
  written by ``Dataset.save_to_disk``); the column defaults to ``text``;
- ``task:NAME``: an lm-eval task's documents; resolved by the caller's ``task_loader`` because
  this package never imports lm_eval (the wrapper and CLI pass one).
Python callers may also pass a list of strings.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from effeval.errors import ConfigError

logger = logging.getLogger(__name__)

MAX_CHARS = 4_000_000  # enough text for thousands of windows; keeps tokenization quick


def load_texts(source, task_loader: Callable[[str], list[str]] | None = None) -> list[str]:
    """Texts from a calibration source (see module doc)."""
    if source is None:
        raise ConfigError(
            "calibration: no source given. Fix: pass calibration=<text file>, dataset:<name> or task:<name>"
        )
    if isinstance(source, (list, tuple)):
        texts = [str(t) for t in source]
        if not any(t.strip() for t in texts):
            raise ConfigError("calibration: the given texts are empty. Fix: pass non-empty strings")
        return texts
    if hasattr(source, "column_names"):  # a datasets.Dataset object
        return _dataset_texts(source, "text", "calibration dataset")
    source = str(source)
    if source.startswith("task:"):
        name = source[len("task:") :]
        if task_loader is None:
            raise ConfigError(
                f"calibration: {source!r} needs lm-eval task documents. Fix: use the effeval-pruned-ssm "
                "wrapper or `effeval pruned-ssm`, or pass a text file"
            )
        texts = task_loader(name)
        if not texts:
            raise ConfigError(f"calibration: task {name!r} has no documents. Fix: pick another task")
        return texts
    if source.startswith("dataset:"):
        return _load_dataset(source[len("dataset:") :])
    path = Path(os.path.expanduser(source[len("file:") :] if source.startswith("file:") else source))
    if not path.is_file():
        raise ConfigError(
            f"calibration: no file at {str(path)!r}. Fix: pass an existing text file, "
            "dataset:<name>[:config[:split[:column]]] or task:<lm-eval task>"
        )
    from effeval.task_data import read_text_file

    text = read_text_file(path, "--calibration", max_chars=MAX_CHARS)
    if not text.strip():
        raise ConfigError(f"calibration: file {str(path)!r} is empty. Fix: pass a file with some text in it")
    return [text]


def _load_dataset(spec: str) -> list[str]:
    parts = spec.split(":")
    name = parts[0]
    config = parts[1] if len(parts) > 1 and parts[1] else None
    split = parts[2] if len(parts) > 2 and parts[2] else "train"
    column = parts[3] if len(parts) > 3 and parts[3] else "text"
    import datasets

    try:
        if os.path.isdir(os.path.expanduser(name)):
            ds = datasets.load_from_disk(os.path.expanduser(name))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[split]
        else:
            ds = datasets.load_dataset(name, config, split=split)
    except ConfigError:
        raise
    except Exception as exc:  # offline, unknown name, bad split: one clear line
        raise ConfigError(
            f"calibration: cannot load dataset {spec!r} ({type(exc).__name__}: {str(exc)[:200]}). "
            "Fix: check name/config/split, or pass a local text file"
        ) from None
    return _dataset_texts(ds, column, f"dataset {spec!r}")


def _dataset_texts(ds, column: str, what: str) -> list[str]:
    if column not in ds.column_names:
        raise ConfigError(
            f"calibration: {what} has no column {column!r} (columns: {', '.join(ds.column_names)}). "
            "Fix: add :<column> to the dataset spec"
        )
    texts, total = [], 0
    for row in ds:
        text = row[column]
        if isinstance(text, str) and text.strip():
            texts.append(text)
            total += len(text)
            if total >= MAX_CHARS:
                break
    if not texts:
        raise ConfigError(
            f"calibration: {what} has no text in column {column!r}. Fix: pick another column or dataset"
        )
    return texts


def token_windows(tokenizer, texts: Sequence[str], nsamples: int, seqlen: int, seed: int = 0):
    """``[nsamples, seqlen]`` LongTensor of random windows from the concatenated token stream.

    Text shorter than one window of ``seqlen`` tokens is a ConfigError: silently calibrating on
    shorter windows would not be the setting the user asked for."""
    import torch

    if nsamples < 1 or seqlen < 2:
        raise ConfigError(
            f"calibration: nsamples={nsamples}, seqlen={seqlen}. Fix: use nsamples >= 1 and seqlen >= 2"
        )
    ids: list[int] = []
    sep = "\n\n"
    for text in texts:
        ids += tokenizer(text + sep, add_special_tokens=False)["input_ids"]
        if len(ids) >= 50 * nsamples * seqlen:
            break
    if len(ids) < seqlen:
        raise ConfigError(
            f"calibration: the text has {len(ids)} tokens, fewer than one window of seqlen={seqlen}. "
            f"Fix: give more calibration text, or pass seqlen <= {max(len(ids), 2)}"
        )
    stream = torch.tensor(ids, dtype=torch.long)
    gen = torch.Generator().manual_seed(int(seed))
    starts = torch.randint(0, len(ids) - seqlen + 1, (nsamples,), generator=gen)
    return torch.stack([stream[s : s + seqlen] for s in starts.tolist()])
