"""lm-eval results files -> effeval/result/v1.

lm-eval writes ``<out>/<model_sanitized>/results_<timestamp>.json`` (+ ``samples_<task>_<timestamp>.jsonl``).
Its ``config`` carries what our wrappers return from ``get_model_info()`` under ``"effeval"``
(method, args, efficiency), so the converted file has quality and cost side by side.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

from effeval.errors import ConfigError
from effeval.hashing import sha256_file
from effeval.model_identity import identify, name_models
from effeval.results.schema import SCHEMA_ID
from effeval.results.writer import finite

logger = logging.getLogger(__name__)

_RESULTS_RE = re.compile(r"^results_(?P<stamp>.+)\.json$")


def git_hash(cwd: str | Path | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(
    names=("effeval", "lm_eval", "torch", "transformers", "diffusers", "open_clip_torch"),
) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name.replace("_", "-"))
        except PackageNotFoundError:
            out[name] = None
    return out


def environment_block(device: str | None = None) -> dict:
    return {
        "versions": {"python": platform.python_version(), **package_versions()},
        "device": device,
        "git_hash": git_hash(),
        "platform": platform.platform(),
    }


def find_results_files(path: str | Path) -> list[Path]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"results path {str(path)!r} does not exist. Fix: pass an lm-eval --output_path folder or a results_*.json file"
        )
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("results_*.json") if _RESULTS_RE.match(p.name))
    if not files:
        raise ConfigError(
            f"no lm-eval results_*.json under {str(path)!r}. Fix: pass the folder given to lm_eval --output_path"
        )
    return files


def load_lm_eval_results(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{path}: not JSON ({exc.__class__.__name__}). Fix: pass an lm-eval results_*.json file"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict) or "config" not in data:
        raise ConfigError(
            f"{path}: not lm-eval output (no 'results' and 'config' keys). "
            "Fix: pass a results_*.json written by lm_eval --output_path"
        )
    return data


def _parse_model_args(model_args: Any) -> dict:
    if isinstance(model_args, dict):
        return dict(model_args)
    out = {}
    for part in str(model_args or "").split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


_NOT_METRICS = {"alias", "name", "sample_len", "sample_count", "samples"}


def _metrics(task_results: dict, higher: dict, n_samples: int | None) -> dict:
    out: dict[str, dict] = {}
    for key, value in task_results.items():
        # lm-eval also writes bookkeeping keys beside the metrics (sample_len is a count, not a score)
        if key in _NOT_METRICS or "_stderr," in key or key.endswith("_stderr"):
            continue
        metric, _, filt = key.partition(",")
        name = metric if filt in ("", "none") else f"{metric},{filt}"
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        stderr = task_results.get(f"{metric}_stderr,{filt}") if filt else task_results.get(f"{metric}_stderr")
        out[name] = {
            "value": float(value),
            "stderr": float(stderr)
            if isinstance(stderr, (int, float)) and not isinstance(stderr, bool)
            else None,
            "higher_is_better": higher.get(metric),
            "n_samples": n_samples,
        }
    return out


def _nonzero_parameters(efficiency: dict) -> int | None:
    # the pruning wrapper reports ``nonzero_params``; the schema's name is ``nonzero_parameters``
    for key in ("nonzero_parameters", "nonzero_params"):
        value = efficiency.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def convert_lm_eval(path: str | Path) -> dict:
    """One lm-eval results file -> one effeval/result/v1 dict; every model folder in it (the
    model, ``model_args``' drafter, the copied lm-eval config) named by what it is."""
    result = _convert_lm_eval(Path(path))
    for task, metrics in result["tasks"].items():
        for metric, m in metrics.items():
            if isinstance(m["value"], float) and not math.isfinite(m["value"]):
                logger.warning(
                    "%s: %s %s is %s in lm-eval's output; recorded as null (no value)",
                    path,
                    task,
                    metric,
                    m["value"],
                )
    # lm-eval writes NaN for what is undefined (the stderr of one document); effeval JSON says null
    return name_models(finite(result))


def _safe_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


def _convert_lm_eval(path: Path) -> dict:
    data = load_lm_eval_results(path)
    config = data.get("config") or {}
    model_args = _parse_model_args(config.get("model_args"))
    effeval = config.get("effeval") or {}
    wrapper = config.get("model")
    source = str(model_args.get("pretrained") or data.get("model_name") or wrapper or "unknown")

    tasks: dict[str, dict] = {}
    for task, res in data["results"].items():
        higher = (data.get("higher_is_better") or {}).get(task, {}) or {}
        n = ((data.get("n-samples") or {}).get(task) or {}).get("effective")
        metrics = _metrics(res, higher, n if isinstance(n, int) else None)
        if metrics:
            tasks[task] = metrics

    efficiency: dict[str, Any] = dict(effeval.get("efficiency") or {})
    total = data.get("total_evaluation_time_seconds")
    try:
        total_s = float(total) if total is not None else None
    except (TypeError, ValueError):
        total_s = None
    efficiency.setdefault("wall_time_s", total_s)
    efficiency["evaluation_wall_time_s"] = total_s

    stamp = _RESULTS_RE.match(path.name)
    created = data.get("date")
    try:
        created_iso = _dt.datetime.fromtimestamp(float(created), tz=_dt.timezone.utc).isoformat()
    except (TypeError, ValueError):
        created_iso = _dt.datetime.now(tz=_dt.timezone.utc).isoformat()
    # named by what it is (zoo name / package / sha256), never by this machine's cache path
    identity = identify(source)
    if identity["name"] == source and data.get("model_name"):
        identity = identify(str(data["model_name"]))
    source = identity["source"]
    run_id = f"{(wrapper or 'lm')}__{_safe_id(identity['name'])}__{stamp.group('stamp') if stamp else sha256_file(path)[:12]}"

    source_files = [{"path": str(path), "sha256": sha256_file(path)}]
    if stamp:
        for sample in sorted(path.parent.glob(f"samples_*_{stamp.group('stamp')}.jsonl")):
            source_files.append({"path": str(sample), "sha256": sha256_file(sample)})
    method = effeval.get("method") or {"name": "baseline", "args": {}}
    versions = {
        "python": None,
        "lm_eval": data.get("lm_eval_version"),
        "transformers": data.get("transformers_version"),
    }
    return {
        "schema": SCHEMA_ID,
        "kind": "lm",
        "run_id": run_id,
        "created": created_iso,
        "model": {
            **identity,
            "revision": config.get("model_revision") or model_args.get("revision"),
            "dtype": str(config.get("model_dtype")) if config.get("model_dtype") is not None else None,
            "parameters": config.get("model_num_parameters")
            if isinstance(config.get("model_num_parameters"), int) and config.get("model_num_parameters") >= 0
            else None,
            "nonzero_parameters": _nonzero_parameters(efficiency),
            "wrapper": wrapper,
        },
        "method": {
            "name": method.get("name", "baseline"),
            "args": method.get("args") or {},
            "model_args": model_args,
        },
        "tasks": tasks,
        "efficiency": efficiency,
        "environment": {
            "versions": {k: (str(v) if v is not None else None) for k, v in versions.items()}
            | {k: v for k, v in package_versions(("effeval", "torch")).items()},
            "device": str(config.get("device")) if config.get("device") is not None else None,
            "git_hash": data.get("git_hash"),
            "platform": None,
        },
        "provenance": {"source_files": source_files, "command": None, "converted_from": str(path)},
        "extra": {
            "lm_eval_config": {k: v for k, v in config.items() if k != "effeval"},
            "n_shot": data.get("n-shot"),
        },
    }
