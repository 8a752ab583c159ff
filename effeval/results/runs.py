"""Load one run for comparing, exporting or a leaderboard: effeval JSON, an lm-eval results file,
or an lm-eval ``--output_path`` folder (converted on the fly), plus its per-sample files.

lm-eval writes ``samples_<task>_<stamp>.jsonl`` beside ``results_<stamp>.json``; the converter
records them in ``provenance.source_files``, so an effeval JSON file still finds them while they
exist (they are not committed for reference results; then a run simply has no samples).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from effeval.errors import ConfigError
from effeval.results.schema import SCHEMA_ID, validate_result

logger = logging.getLogger(__name__)

SAMPLES_RE = re.compile(r"^samples_(?P<task>.+)_(?P<stamp>\d{4}-\d{2}-\d{2}T[0-9.\-]+)\.jsonl$")


@dataclass
class Run:
    """One run: its effeval/result/v1 dict, where it came from, and its samples files per task."""

    label: str
    path: Path
    result: dict
    lm_eval_file: Path | None = None  # the original lm-eval results_*.json, when it is known and exists
    samples: dict[str, Path] = field(default_factory=dict)

    @property
    def tasks(self) -> dict:
        return self.result.get("tasks") or {}

    @property
    def efficiency(self) -> dict:
        return self.result.get("efficiency") or {}


def _read_json(path: Path, argument: str) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{argument} {str(path)!r}: not JSON ({exc.__class__.__name__}). "
            "Fix: pass an effeval result JSON, an lm-eval results_*.json or its output folder"
        ) from None


def _samples_from_sources(result: dict, base: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    candidates = [f.get("path", "") for f in (result.get("provenance") or {}).get("source_files") or []]
    if result.get("samples"):
        candidates.append(result["samples"])
    for raw in candidates:
        p = Path(raw)
        if not p.is_absolute() and not p.exists():
            p = base / p
        m = SAMPLES_RE.match(p.name)
        if m and p.is_file():
            found[m.group("task")] = p
    return found


def _run(path: Path, result: dict, lm_eval_file: Path | None, samples_dir: Path) -> Run:
    return Run(
        label=result["run_id"],
        path=path,
        result=result,
        lm_eval_file=lm_eval_file,
        samples=_samples_from_sources(result, samples_dir),
    )


def load_run(path: str | Path, argument: str = "run") -> Run:
    """``path`` -> ``Run``. Raises one ConfigError naming ``argument`` for anything unusable."""
    from effeval.results.convert import convert_lm_eval, find_results_files

    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"{argument} {str(path)!r}: no such file or folder. "
            "Fix: pass an effeval result JSON, an lm-eval results_*.json or its --output_path folder"
        )
    if path.is_dir():
        files = find_results_files(path)
        if len(files) > 1:
            logger.info(
                "%s: %d lm-eval results files; using the newest, %s", path, len(files), files[-1].name
            )
        return _run(path, convert_lm_eval(files[-1]), files[-1], files[-1].parent)
    obj = _read_json(path, argument)
    if isinstance(obj, dict) and obj.get("schema") == SCHEMA_ID:
        validate_result(obj, where=f"{argument} {str(path)!r}")
        lm_file = Path(obj.get("provenance", {}).get("converted_from") or "")
        lm_file = lm_file if lm_file.name and lm_file.is_file() else None
        return _run(path, obj, lm_file, path.parent)
    if isinstance(obj, dict) and "results" in obj and "config" in obj:
        return _run(path, convert_lm_eval(path), path, path.parent)
    raise ConfigError(
        f"{argument} {str(path)!r}: neither effeval JSON ({SCHEMA_ID}) nor lm-eval output. "
        "Fix: pass an effeval result JSON, an lm-eval results_*.json or its --output_path folder"
    )


def load_runs(paths: list[str | Path]) -> list[Run]:
    """Several runs with unique labels (a repeated run_id gets ``#2``, ``#3`` ...)."""
    runs = [load_run(p, argument=f"run #{i}") for i, p in enumerate(paths, 1)]
    seen: dict[str, int] = {}
    for run in runs:
        n = seen.get(run.label, 0) + 1
        seen[run.label] = n
        if n > 1:
            run.label = f"{run.label}#{n}"
    return runs


def read_samples(path: Path) -> dict[tuple[int, str], dict]:
    """lm-eval samples JSONL -> ``{(doc_id, filter): line}`` (one line per document and filter)."""
    out: dict[tuple[int, str], dict] = {}
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise ConfigError(
                    f"{path}: line {n} is not JSON. Fix: pass an untouched lm-eval samples file"
                ) from None
            if "doc_id" not in row:
                raise ConfigError(f"{path}: line {n} has no doc_id. Fix: pass lm-eval --log_samples output")
            out[(int(row["doc_id"]), str(row.get("filter", "none")))] = row
    return out


def split_metric(name: str) -> tuple[str, str]:
    """effeval metric key -> (lm-eval metric, filter): ``acc`` -> (acc, none)."""
    metric, _, filt = name.partition(",")
    return metric, filt or "none"


# lm-eval metrics that are proportions in [0, 1] (a ``*_rate`` metric is one too when its value is)
PROPORTION_METRICS = ("acc", "acc_norm", "exact_match", "f1", "pass@1", "mcc", "brier_score", "math_verify")


def is_proportion(metric: str, value: float) -> bool:
    """Is ``metric`` (``name`` or ``name,filter``) a score on a 0-1 scale?"""
    base = split_metric(metric)[0]
    return base in PROPORTION_METRICS or (
        base.endswith(("_rate", "_accuracy")) and isinstance(value, (int, float)) and 0 <= value <= 1
    )


def primary_metric(metrics: dict) -> str | None:
    """The metric a table shows for a task: a usual headline metric if present, else the first."""
    for name in ("acc", "exact_match", "acc_norm", "pass@1", "f1", "clip_score", "word_perplexity"):
        if name in metrics and metrics[name].get("value") is not None:
            return name
    for name, val in metrics.items():
        if val.get("value") is not None:
            return name
    return None
