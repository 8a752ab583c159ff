"""``effeval results compare A B [...]``: the same tasks under two or more runs, side by side.

The first run is the baseline. For every other run and every metric of every task:

- ``delta`` = run value - baseline value (from the aggregated results);
- a paired bootstrap CI of the mean per-document difference, from lm-eval's ``samples_*.jsonl``
  paired by ``(doc_id, filter)``: documents are resampled with replacement ``iters`` times with a
  seeded ``torch.Generator``; the interval is the percentile interval
  ``[s[floor(a/2 * B)], s[ceil((1 - a/2) * B) - 1]]`` of the sorted resampled means ``s``
  (``a`` = 1 - confidence, ``B`` = iters);
- efficiency ratios (speedup, tokens saved, tokens/s, sparsity, non-zero parameters);
- output equality per task where both runs logged samples (same ``filtered_resps`` per document).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from effeval.bootstrap import check_bootstrap_settings
from effeval.errors import ConfigError
from effeval.formatting import format_number
from effeval.results.runs import Run, load_runs, read_samples, split_metric

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- statistics


def bootstrap_indices(n: int, iters: int, seed: int):
    """``iters`` x ``n`` resampling indices (with replacement), reproducible from ``seed``."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    return torch.randint(0, n, (iters, n), generator=gen)


def percentile_interval(stats: list[float], confidence: float) -> tuple[float, float]:
    """Percentile interval of bootstrap statistics (the rule in the module docstring)."""
    s = sorted(stats)
    b = len(s)
    alpha = 1.0 - confidence
    lo = s[min(b - 1, max(0, math.floor(alpha / 2 * b)))]
    hi = s[min(b - 1, max(0, math.ceil((1 - alpha / 2) * b) - 1))]
    return float(lo), float(hi)


def paired_bootstrap_ci(
    diffs: list[float], iters: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """CI of the mean of paired differences ``diffs`` by the seeded percentile bootstrap."""
    import torch

    if not diffs:
        raise ValueError("no paired differences")
    values = torch.tensor(diffs, dtype=torch.float64)
    means = values[bootstrap_indices(len(diffs), iters, seed)].mean(dim=1)
    return percentile_interval(means.tolist(), confidence)


def _number(x: Any) -> float | None:
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, (int, float)) and math.isfinite(x):
        return float(x)
    return None


def paired_values(base: dict, other: dict, metric: str) -> tuple[list[int], list[float], list[float]]:
    """Per-document values of ``metric`` (``name`` or ``name,filter``) present in both sample sets."""
    name, filt = split_metric(metric)
    docs, a, b = [], [], []
    for key in sorted(set(base) & set(other)):
        if key[1] != filt:
            continue
        va, vb = _number(base[key].get(name)), _number(other[key].get(name))
        if va is None or vb is None:
            continue
        docs.append(key[0])
        a.append(va)
        b.append(vb)
    return docs, a, b


def output_equality(base: dict, other: dict) -> dict:
    """Do both runs give the same (filtered) output per document?"""
    keys = sorted(set(base) & set(other))
    differ = [
        k[0]
        for k in keys
        if json.dumps(base[k].get("filtered_resps"), sort_keys=True)
        != json.dumps(other[k].get("filtered_resps"), sort_keys=True)
    ]
    return {
        "paired_documents": len(keys),
        "equal": len(keys) - len(differ),
        "equal_fraction": (len(keys) - len(differ)) / len(keys) if keys else None,
        "differing_doc_ids": sorted(set(differ))[:10],
    }


# ----------------------------------------------------------------------------- efficiency

_SPARSITY_KEYS = ("global_sparsity", "sparsity")


def _eff(run: Run, *keys: str) -> float | None:
    for key in keys:
        v = _number(run.efficiency.get(key))
        if v is not None:
            return v
    return None


def _nonzero(run: Run) -> float | None:
    return _number(run.result.get("model", {}).get("nonzero_parameters")) or _eff(
        run, "nonzero_parameters", "nonzero_params"
    )


def efficiency_ratios(base: Run, run: Run) -> dict:
    """Cost of ``run`` relative to ``base``. Speedup uses lm-eval's total evaluation time when both
    have it (the same clock for every wrapper), else the wrappers' request time."""
    out: dict[str, Any] = {}
    for key in ("evaluation_wall_time_s", "wall_time_s"):
        ta, tb = _eff(base, key), _eff(run, key)
        if ta and tb:
            out.update(speedup=ta / tb, speedup_clock=key, baseline_wall_time_s=ta, wall_time_s=tb)
            break
    ga, gb = _eff(base, "generated_tokens"), _eff(run, "generated_tokens")
    if ga is not None and gb is not None:
        out.update(
            baseline_generated_tokens=ga,
            generated_tokens=gb,
            tokens_saved=ga - gb,
            tokens_saved_fraction=(1 - gb / ga) if ga else None,
        )
    ra, rb = _eff(base, "tokens_per_s"), _eff(run, "tokens_per_s")
    if ra and rb is not None:
        out["tokens_per_s_ratio"] = rb / ra
    sa, sb = _eff(base, *_SPARSITY_KEYS), _eff(run, *_SPARSITY_KEYS)
    if sa is not None or sb is not None:
        out.update(baseline_sparsity=sa or 0.0, sparsity=sb or 0.0)
    na, nb = _nonzero(base), _nonzero(run)
    if na and nb is not None:
        out["nonzero_parameters_ratio"] = nb / na
    return out


# ----------------------------------------------------------------------------- compare


def check_same_tasks(runs: list[Run], tasks: list[str] | None = None) -> list[str]:
    """The task list every run must share; a clear error naming the tasks that differ."""
    if tasks:
        missing = {r.label: [t for t in tasks if t not in r.tasks] for r in runs}
        missing = {k: v for k, v in missing.items() if v}
        if missing:
            detail = "; ".join(f"{label} lacks {', '.join(v)}" for label, v in missing.items())
            raise ConfigError(f"--tasks: {detail}. Fix: pick tasks every run has")
        return list(tasks)
    base = set(runs[0].tasks)
    problems = []
    for run in runs[1:]:
        only_base, only_run = sorted(base - set(run.tasks)), sorted(set(run.tasks) - base)
        if only_base or only_run:
            parts = []
            if only_base:
                parts.append(f"only {runs[0].label} has {', '.join(only_base)}")
            if only_run:
                parts.append(f"only {run.label} has {', '.join(only_run)}")
            problems.append("; ".join(parts))
    if problems:
        raise ConfigError(
            "compare: the runs cover different tasks (" + " | ".join(problems) + "). "
            "Fix: pass runs of the same tasks, or restrict with --tasks to tasks all runs share"
        )
    return sorted(base)


def _need_two_runs(count: int) -> None:
    if count < 2:
        raise ConfigError(
            "compare: needs at least two runs. Fix: pass a baseline and one or more runs to compare"
        )


def compare_runs(
    runs: list[Run],
    tasks: list[str] | None = None,
    iters: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    _need_two_runs(len(runs))
    check_bootstrap_settings(iters, confidence)
    task_list = check_same_tasks(runs, tasks)
    base = runs[0]
    samples_cache: dict[tuple[str, str], dict | None] = {}

    def samples(run: Run, task: str) -> dict | None:
        key = (run.label, task)
        if key not in samples_cache:
            samples_cache[key] = read_samples(run.samples[task]) if task in run.samples else None
        return samples_cache[key]

    comparisons = []
    for run in runs[1:]:
        per_task: dict[str, Any] = {}
        for task in task_list:
            sb, so = samples(base, task), samples(run, task)
            metrics = {}
            for metric, vb in base.tasks[task].items():
                vo = run.tasks[task].get(metric)
                if vo is None:
                    continue
                a, b = _number(vb.get("value")), _number(vo.get("value"))
                entry: dict[str, Any] = {
                    "baseline": a,
                    "value": b,
                    "delta": (b - a) if a is not None and b is not None else None,
                    "higher_is_better": vb.get("higher_is_better"),
                }
                if sb is not None and so is not None:
                    docs, xa, xb = paired_values(sb, so, metric)
                    if docs:
                        diffs = [y - x for x, y in zip(xa, xb)]
                        lo, hi = paired_bootstrap_ci(diffs, iters, seed, confidence)
                        entry.update(
                            paired_documents=len(docs),
                            paired_mean_delta=sum(diffs) / len(diffs),
                            ci_low=lo,
                            ci_high=hi,
                        )
                    else:
                        entry["ci_note"] = "no numeric per-document values to pair"
                else:
                    lacking = [r for r, s in ((base, sb), (run, so)) if s is None]
                    why = (
                        "run lm_eval with --log_samples"
                        if any(not r.samples for r in lacking)
                        else "a task group has no samples file of its own"
                    )
                    entry["ci_note"] = f"samples missing for {' and '.join(r.label for r in lacking)} ({why})"
                metrics[metric] = entry
            per_task[task] = {"metrics": metrics}
            if sb is not None and so is not None:
                per_task[task]["outputs"] = output_equality(sb, so)
        comparisons.append(
            {
                "run": run.label,
                "path": str(run.path),
                "method": run.result.get("method", {}),
                "tasks": per_task,
                "efficiency": efficiency_ratios(base, run),
            }
        )
    return {
        "baseline": {"run": base.label, "path": str(base.path), "method": base.result.get("method", {})},
        "tasks": task_list,
        "bootstrap": {"iters": iters, "seed": seed, "confidence": confidence, "method": "paired percentile"},
        "comparisons": comparisons,
    }


def format_report(report: dict) -> str:
    """Terminal tables: score deltas with CIs, then efficiency ratios."""
    rows = []
    for comp in report["comparisons"]:
        for task, t in comp["tasks"].items():
            same = t.get("outputs", {}).get("equal_fraction")
            for metric, m in t["metrics"].items():
                ci = (
                    f"[{format_number(m['ci_low'])}, {format_number(m['ci_high'])}]" if "ci_low" in m else "-"
                )
                rows.append(
                    [
                        comp["run"],
                        task,
                        metric,
                        format_number(m["baseline"]),
                        format_number(m["value"]),
                        format_number(m["delta"]),
                        ci,
                        format_number(same, 3),
                    ]
                )
    level = int(round(report["bootstrap"]["confidence"] * 100))
    head = ["run", "task", "metric", "baseline", "value", "delta", f"{level}% CI", "same out"]
    lines = [f"baseline: {report['baseline']['run']}", *_table(head, rows), ""]
    eff_rows = []
    for comp in report["comparisons"]:
        e = comp["efficiency"]
        eff_rows.append(
            [
                comp["run"],
                format_number(e.get("speedup"), 3),
                format_number(e.get("tokens_saved")),
                format_number(e.get("tokens_saved_fraction"), 3),
                format_number(e.get("tokens_per_s_ratio"), 3),
                format_number(e.get("sparsity"), 3),
                format_number(e.get("nonzero_parameters_ratio"), 3),
            ]
        )
    lines += _table(
        ["run", "speedup", "tokens saved", "saved frac", "tok/s ratio", "sparsity", "nonzero ratio"], eff_rows
    )
    return "\n".join(lines)


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return out


def compare(
    paths: list[str],
    out: str | None = None,
    tasks: list[str] | None = None,
    iters: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Load, compare, print the table, write JSON to ``out`` (if given); return the report."""
    from effeval.results.writer import write_json_atomic

    _need_two_runs(len(paths))  # before loading any of them
    report = compare_runs(load_runs(paths), tasks=tasks, iters=iters, seed=seed, confidence=confidence)
    print(format_report(report))
    if out:
        write_json_atomic(Path(out), report)
        logger.info("compare: JSON written to %s", out)
    return report
