"""``effeval results export RESULT --format F --out DIR``: one run in other tools' formats.

Formats and where the efficiency block goes (see docs/publishing.md):

- ``eee`` (Every Eval Ever 0.3.0): one record per task at ``data/<task>/<developer>/<model>/<uuid>.json``
  (its repository layout). Every numeric efficiency value becomes an extra ``evaluation_results``
  entry (``evaluation_name`` ``<task>/effeval_efficiency``, metric id ``effeval.efficiency.<key>``);
  the whole block is also kept as a JSON string in ``source_metadata.additional_details``. Nothing dropped.
- ``hf-leaderboard`` (HF demo-leaderboard template): ``results/<org>/<model>/results_<stamp>.json``
  with ``{"config": {model_dtype, model_name, model_sha, effeval}, "results": {task: {metric: score}}}``
  plus ``requests/<org>/<model>_eval_request_False_<precision>_Original.json``. Efficiency: full
  block under ``config.effeval``, numeric values also as the pseudo-task ``effeval_efficiency``
  (the template reads only the tasks it is configured with).
- ``hub``: lm-eval's results/details dataset layout (``<model_sanitized>/results_<stamp>.json``,
  ``<model_sanitized>/samples_<task>_<stamp>.jsonl``, README.md dataset card); the efficiency block
  rides in ``config.effeval`` as lm-eval wrote it. ``push=True`` uploads with huggingface_hub.
- ``hub-eval-results``: the Hub's ``.eval_results/<task>.yaml`` files for the model repository (one
  per benchmark task and variant; spec and mapping in ``effeval.results.hub_eval_results``). The
  spec has no field for efficiency: its headline figures ride in each file's ``notes``.
  ``push=True`` opens a pull request on the model repository.
- ``model-index``: a YAML block for a model card. Numeric efficiency values become metrics of
  an extra result (dataset type ``effeval_efficiency``); nested values (per-request-type dicts,
  per-module sparsity) have no place there and are dropped (logged).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import math
import os
import re
import uuid
from pathlib import Path
from typing import Any

from effeval.errors import ConfigError
from effeval.results.runs import Run, is_proportion, load_run, split_metric

logger = logging.getLogger(__name__)

FORMATS = ("eee", "hf-leaderboard", "hub", "hub-eval-results", "model-index")
EEE_SCHEMA_VERSION = "0.3.0"


def _numeric_efficiency(eff: dict) -> tuple[dict[str, float], list[str]]:
    """Flat finite numbers of the efficiency block, and the keys that are not (nested, text, null)."""
    keep, dropped = {}, []
    for key, val in eff.items():
        if isinstance(val, (int, float)) and not isinstance(val, bool) and math.isfinite(val):
            keep[key] = float(val)
        elif val is not None:
            dropped.append(key)
    return keep, dropped


def cost_is_lower_better(key: str) -> bool:
    """Direction of an efficiency value: times, token counts and calls are costs; rates
    (per second, acceptance, sparsity, savings) are better when higher."""
    words = set(key.split("_"))
    if words & {"per", "rate", "saved", "sparsity", "accepted", "ratio"}:
        return False
    return key.endswith(("time_s", "_tokens", "_calls", "params", "parameters", "flops"))


def _model_id(run: Run) -> tuple[str, str]:
    """(developer, model) for hub-style ids: an ``org/name`` source keeps its org; a local path
    becomes ``local/<dir name>``."""
    src = str(run.result["model"].get("source") or run.result["model"]["name"])
    parts = src.strip("/").split("/")
    if len(parts) == 2 and not src.startswith((".", "/", "~")):
        return parts[0], parts[1]
    return "local", _safe(Path(src).name or run.result["model"]["name"])


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


def _stamp(run: Run) -> str:
    try:
        when = _dt.datetime.fromisoformat(run.result["created"])
    except (KeyError, ValueError):
        when = _dt.datetime.now(tz=_dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H-%M-%S.%f")


def _epoch(run: Run) -> str:
    try:
        return str(int(_dt.datetime.fromisoformat(run.result["created"]).timestamp()))
    except (KeyError, ValueError):
        return str(int(_dt.datetime.now(tz=_dt.timezone.utc).timestamp()))


def _uuid4_from(*parts: str) -> str:
    """A UUID4-shaped id derived from ``parts`` (re-exporting a run gives the same file names)."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()[:16]
    return str(uuid.UUID(bytes=digest, version=4))


def _metric_names(run: Run, task: str) -> list[str]:
    return [m for m, v in run.tasks[task].items() if isinstance(v.get("value"), (int, float))]


# ----------------------------------------------------------------------------- eee


def _eee_bounds(metric: str, value: float) -> tuple[str, Any, Any]:
    """score_type and bounds: the usual proportions are in [0, 1]; anything else is unbounded."""
    if is_proportion(metric, value):
        return "continuous", 0.0, 1.0
    return "continuous", "-Infinity", "Infinity"


def eee_records(run: Run) -> list[tuple[str, dict]]:
    """``[(relative path, EvaluationLog dict)]`` — one Every Eval Ever 0.3.0 record per task."""
    developer, model = _model_id(run)
    res = run.result
    epoch = _epoch(run)
    eff = res.get("efficiency") or {}
    eff_numbers, _ = _numeric_efficiency(eff)
    versions = (res.get("environment") or {}).get("versions") or {}
    model_details = {
        "deployment_type": "self_deployed",
        "model_availability": "unknown",
        "effeval_method": str(res["method"].get("name")),
        "effeval_method_args": json.dumps(res["method"].get("args") or {}, sort_keys=True),
    }
    for key in ("dtype", "revision", "parameters", "nonzero_parameters", "wrapper"):
        if res["model"].get(key) is not None:
            model_details[key] = str(res["model"][key])
    records = []
    for task in sorted(run.tasks):
        source_data = {"dataset_name": task, "source_type": "other"}
        results = []
        for metric in _metric_names(run, task):
            m = run.tasks[task][metric]
            name, filt = split_metric(metric)
            score_type, lo, hi = _eee_bounds(metric, m["value"])
            higher = m.get("higher_is_better")
            config = {
                "evaluation_description": metric,
                "metric_id": name,
                "metric_name": name,
                "lower_is_better": (higher is False),
                "score_type": score_type,
                "min_score": lo,
                "max_score": hi,
            }
            details: dict[str, Any] = {"score": float(m["value"])}
            unc: dict[str, Any] = {}
            if isinstance(m.get("stderr"), (int, float)) and math.isfinite(m["stderr"]):
                unc["standard_error"] = {"value": float(m["stderr"]), "method": "lm-eval"}
            if isinstance(m.get("n_samples"), int):
                unc["num_samples"] = m["n_samples"]
            if unc:
                details["uncertainty"] = unc
            results.append(
                {
                    "evaluation_result_id": f"{name}/{filt}",
                    "evaluation_name": task if filt == "none" else f"{task}/{filt}",
                    "source_data": source_data,
                    "metric_config": config,
                    "score_details": details,
                }
            )
        for key, value in eff_numbers.items():
            results.append(
                {
                    "evaluation_result_id": f"effeval.efficiency.{key}",
                    "evaluation_name": f"{task}/effeval_efficiency",
                    "source_data": source_data,
                    "metric_config": {
                        "evaluation_description": f"effeval efficiency of the whole run: {key}",
                        "metric_id": f"effeval.efficiency.{key}",
                        "metric_name": key,
                        "metric_kind": "efficiency",
                        "lower_is_better": cost_is_lower_better(key),
                        "score_type": "continuous",
                        "min_score": "-Infinity",
                        "max_score": "Infinity",
                    },
                    "score_details": {"score": value},
                }
            )
        record = {
            "schema_version": EEE_SCHEMA_VERSION,
            "evaluation_id": f"{task}/{developer}/{model}/{epoch}",
            "evaluation_timestamp": epoch,
            "retrieved_timestamp": epoch,
            "source_metadata": {
                "source_name": "effeval",
                "source_type": "evaluation_run",
                "source_organization_name": "effeval",
                "evaluator_relationship": "third_party",
                "additional_details": {
                    "effeval_run_id": res["run_id"],
                    "effeval_efficiency_json": json.dumps(eff, sort_keys=True, default=str),
                },
            },
            "eval_library": {
                "name": "lm_eval" if res.get("kind") == "lm" else "effeval",
                "version": str(versions.get("lm_eval") or versions.get("effeval") or "unknown"),
                "additional_details": {"effeval": str(versions.get("effeval") or "unknown")},
            },
            "model_info": {
                "name": res["model"]["name"],
                "id": f"{developer}/{model}",
                "developer": developer,
                "additional_details": model_details,
            },
            "evaluation_results": results,
        }
        rel = f"data/{_safe(task)}/{developer}/{model}/{_uuid4_from(res['run_id'], task)}.json"
        records.append((rel, record))
    return records


# ----------------------------------------------------------------------------- hf-leaderboard


def hf_leaderboard_files(run: Run) -> list[tuple[str, dict]]:
    developer, model = _model_id(run)
    res = run.result
    dtype = str(res["model"].get("dtype") or "unknown").replace("torch.", "")
    eff_numbers, _ = _numeric_efficiency(res.get("efficiency") or {})
    results = {
        task: {m: run.tasks[task][m]["value"] for m in _metric_names(run, task)} for task in sorted(run.tasks)
    }
    if eff_numbers:
        results["effeval_efficiency"] = eff_numbers
    result_file = {
        "config": {
            "model_dtype": dtype,
            "model_name": f"{developer}/{model}",
            "model_sha": str(res["model"].get("revision") or ""),
            "effeval": {
                "run_id": res["run_id"],
                "method": res["method"],
                "efficiency": res.get("efficiency"),
            },
        },
        "results": results,
    }
    params = res["model"].get("parameters")
    request = {
        "model": f"{developer}/{model}",
        "base_model": "",
        "revision": str(res["model"].get("revision") or "main"),
        "precision": dtype,
        "weight_type": "Original",
        "status": "FINISHED",
        "submitted_time": res["created"],
        "model_type": "effeval: " + str(res["method"].get("name")),
        "likes": 0,
        "params": round(params / 1e9, 6) if isinstance(params, int) else 0,
        "license": "?",
        "private": False,
    }
    stamp = _stamp(run)
    return [
        (f"results/{developer}/{model}/results_{stamp}.json", result_file),
        (f"requests/{developer}/{model}_eval_request_False_{dtype}_Original.json", request),
    ]


# ----------------------------------------------------------------------------- hub


def _lm_eval_shaped(run: Run) -> dict:
    """An lm-eval-style results dict rebuilt from effeval JSON (when the original file is gone)."""
    res = run.result
    results: dict[str, dict] = {}
    for task in sorted(run.tasks):
        out: dict[str, Any] = {"alias": task}
        for metric, m in run.tasks[task].items():
            name, filt = split_metric(metric)
            out[f"{name},{filt}"] = m.get("value")
            out[f"{name}_stderr,{filt}"] = m.get("stderr") if m.get("stderr") is not None else "N/A"
        results[task] = out
    config = dict((res.get("extra") or {}).get("lm_eval_config") or {})
    config.setdefault("model", res["model"].get("wrapper") or "effeval")
    config["effeval"] = {
        "model_name": res["model"]["name"],
        "method": res["method"],
        "efficiency": res.get("efficiency"),
    }
    return {
        "results": results,
        "config": config,
        "model_name": res["model"]["source"],
        "higher_is_better": {
            t: {split_metric(m)[0]: v.get("higher_is_better") for m, v in run.tasks[t].items()}
            for t in run.tasks
        },
    }


def _hub_card(model_dir: str, tasks: list[str], stamp: str, run: Run) -> str:
    """Dataset card whose configs follow lm-eval's own (``<model>__<task>``, ``<model>__results``;
    splits: the run's sanitized timestamp and ``latest``)."""
    import yaml

    split = re.sub(r"[^\w.]", "_", stamp)

    def config(name: str, filename: str) -> dict:
        files = [f"**/{filename}"]
        return {
            "config_name": name,
            "data_files": [{"split": split, "path": files}, {"split": "latest", "path": files}],
        }

    configs = [config(model_dir + "__" + re.sub(r"\W", "_", t), f"samples_{t}_{stamp}.jsonl") for t in tasks]
    configs.append(config(f"{model_dir}__results", f"results_{stamp}.json"))
    # names from the run are one line each: a line break in them must not start a heading or a key
    name = " ".join(str(run.result["model"]["name"]).split())
    front = yaml.safe_dump({"pretty_name": f"Evaluation run of {name}", "configs": configs}, sort_keys=False)
    return (
        f"---\n{front}---\n\n# Evaluation run of {name}\n\n"
        f"lm-eval results and per-sample details (the layout `lm_eval --hf_hub_log_args` pushes), run "
        f"{_comment_text(run.result['run_id'])} ({stamp}), exported by effeval. The efficiency block is in the results file "
        "under `config.effeval`.\n"
    )


def write_hub(run: Run, out: Path) -> list[Path]:
    from effeval.atomic import confined, copy_atomic
    from effeval.results.writer import finite, write_json_atomic, write_text_atomic

    model_dir = _safe((run.result["model"].get("source") or run.result["model"]["name"]).replace("/", "__"))
    if run.lm_eval_file is not None:
        data = json.loads(run.lm_eval_file.read_text(encoding="utf-8"))
        model_dir = str(data.get("model_name_sanitized") or model_dir)
        # lm-eval writes one folder name here; the file is input, so '../x' or '/x' must not escape --out
        if model_dir in (".", "..") or any(sep in model_dir for sep in ("/", "\\", "\x00")):
            raise ConfigError(
                f"RESULT: model_name_sanitized {model_dir!r} in {run.lm_eval_file} is not a plain folder "
                f"name, so the export would write outside --out {out}. Fix: set it to a name without "
                "'/', '\\' or '..' (lm-eval writes the model name with '/' replaced by '__')"
            )
        data.setdefault("config", {}).setdefault(
            "effeval", {"method": run.result["method"], "efficiency": run.result.get("efficiency")}
        )
        data = finite(data)  # lm-eval writes NaN for an undefined stderr; JSON has no NaN: null
    else:
        data = _lm_eval_shaped(run)
        logger.info(
            "hub export: the original lm-eval results file is not available; rebuilt it from effeval JSON"
        )
    stamp = _stamp(run)
    m = re.match(r"^results_(.+)\.json$", run.lm_eval_file.name) if run.lm_eval_file else None
    stamp = m.group(1) if m else stamp
    written = [
        write_json_atomic(confined(out, f"{model_dir}/results_{stamp}.json", "RESULT", "results file"), data)
    ]
    for task, src in sorted(run.samples.items()):
        dst = confined(out, f"{model_dir}/samples_{task}_{stamp}.jsonl", "RESULT", "samples file")
        written.append(copy_atomic(src, dst))  # a killed re-export keeps the previous good copy
    missing = sorted(set(run.tasks) - set(run.samples))
    if missing:
        logger.info(
            "hub export: no samples file for %s (run lm_eval with --log_samples to get details)",
            ", ".join(missing),
        )
    written.append(
        write_text_atomic(out / "README.md", _hub_card(model_dir, sorted(run.samples), stamp, run))
    )
    return written


def push_hub(folder: Path, repo: str | None) -> str:
    """Upload ``folder`` as a dataset repo; a clear ConfigError when offline or not logged in."""
    if not repo:
        raise ConfigError("--push: no --repo given. Fix: pass --repo <org>/<dataset name>")
    if os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in {"1", "true", "yes", "on"}:
        raise ConfigError(
            f"--push: HF_HUB_OFFLINE is set, so nothing can be uploaded to {repo}. Fix: unset "
            f"HF_HUB_OFFLINE on a machine with network access (the export itself is in {folder})"
        )
    try:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(repo, repo_type="dataset", exist_ok=True)
        info = api.upload_folder(
            repo_id=repo, repo_type="dataset", folder_path=str(folder), commit_message="effeval export"
        )
    except Exception as exc:  # network, auth and hub errors all end the same way for the user
        raise ConfigError(
            f"--push: upload to {repo} failed ({exc.__class__.__name__}: {str(exc)[:200]}). Fix: check the "
            f"network and `huggingface-cli login`; the export itself is in {folder}"
        ) from None
    return str(getattr(info, "commit_url", info))


# ----------------------------------------------------------------------------- model-index


def model_index(run: Run) -> dict:
    developer, model = _model_id(run)
    source = {
        "name": "effeval (lm-evaluation-harness)",
        "url": "https://github.com/EleutherAI/lm-evaluation-harness",
    }
    results = []
    for task in sorted(run.tasks):
        metrics = [
            {"type": split_metric(m)[0], "name": m, "value": run.tasks[task][m]["value"], "verified": False}
            for m in _metric_names(run, task)
        ]
        results.append(
            {
                "task": {"type": "text-generation"},
                "dataset": {"name": task, "type": task},
                "metrics": metrics,
                "source": dict(source),
            }
        )
    eff_numbers, dropped = _numeric_efficiency(run.result.get("efficiency") or {})
    if eff_numbers:
        results.append(
            {
                "task": {"type": "text-generation", "name": "efficiency"},
                "dataset": {
                    "name": "effeval efficiency (cost of the run above)",
                    "type": "effeval_efficiency",
                    "args": {"method": str(run.result["method"].get("name"))},
                },
                "metrics": [
                    {"type": k, "name": k, "value": v, "verified": False} for k, v in eff_numbers.items()
                ],
                "source": dict(source),
            }
        )
    if dropped:
        logger.warning(
            "model-index export: dropped non-numeric efficiency fields %s (model-index metrics are "
            "numbers; use --format eee or hub to keep them)",
            ", ".join(dropped),
        )
    return {"model-index": [{"name": f"{developer}/{model}", "results": results}]}


# ----------------------------------------------------------------------------- entry point


def export(
    source: str | Path,
    fmt: str,
    out: str | Path,
    push: bool = False,
    repo: str | None = None,
    benchmarks: list[str] | None = None,
    tasks: list[str] | None = None,
) -> list[Path]:
    """Export one run (effeval JSON or lm-eval output) to ``fmt`` under ``out``; returns written
    files. ``benchmarks`` (``TASK=ORG/DATASET[:TASK_ID]``) and ``tasks`` apply to hub-eval-results."""
    import yaml

    from effeval.atomic import confined
    from effeval.results import hub_eval_results
    from effeval.results.writer import write_json_atomic, write_text_atomic

    if fmt not in FORMATS:
        raise ConfigError(f"--format: unknown format {fmt!r}. Fix: use one of {', '.join(FORMATS)}")
    if push and fmt not in ("hub", "hub-eval-results"):
        raise ConfigError(
            f"--push: only --format hub and hub-eval-results can be pushed (got {fmt}). Fix: use one of them"
        )
    for flag, given in (("--benchmark", benchmarks), ("--tasks", tasks)):
        if given and fmt != "hub-eval-results":
            raise ConfigError(
                f"{flag}: only --format hub-eval-results takes it (got {fmt}). Fix: drop {flag}"
            )
    hub_eval_results.parse_benchmark_args(benchmarks)  # a malformed mapping fails before any work
    run = load_run(source, argument="RESULT")
    out = Path(out)
    written: list[Path] = []
    if fmt == "eee":
        for rel, record in eee_records(run):
            written.append(write_json_atomic(confined(out, rel, "RESULT", "model name"), record))
        logger.info(
            "eee export: efficiency kept as extra evaluation_results and in source_metadata.additional_details"
        )
    elif fmt == "hf-leaderboard":
        for rel, obj in hf_leaderboard_files(run):
            written.append(write_json_atomic(confined(out, rel, "RESULT", "model name"), obj))
        logger.info(
            "hf-leaderboard export: efficiency kept under config.effeval and as pseudo-task effeval_efficiency; "
            "the template shows it only if its Tasks list names it"
        )
    elif fmt == "hub":
        written = write_hub(run, out)
        if push:
            print(push_hub(out, repo))
    elif fmt == "hub-eval-results":
        written, url = hub_eval_results.write_eval_results(run, out, repo, push, benchmarks, tasks)
        if url:
            print(url)
    else:
        doc = model_index(run)
        # the run id is text from a file: as a JSON string it stays on the comment's one line
        text = (
            "# model-index for the model card's YAML front matter (exported by effeval from run "
            f"{_comment_text(run.result['run_id'])})\n" + yaml.safe_dump(doc, sort_keys=False)
        )
        if yaml.safe_load(text) != doc:
            raise ConfigError(
                "RESULT: the model-index block does not read back as written. Fix: report this bug"
            )
        written.append(write_text_atomic(out / "model-index.yaml", text))
    return written


def _comment_text(text: str) -> str:
    """``text`` for a YAML or Markdown line: JSON-quoted, ASCII only, so no line break of any kind
    (``\\n``, ``\\r``, U+0085, U+2028) can end the line and start a key of its own."""
    return json.dumps(str(text), ensure_ascii=True)
