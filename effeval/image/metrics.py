"""Benchmark-level image metrics with seeded bootstrap confidence intervals.

Input rows are the per-prompt (or per prompt-and-seed) score dicts of one intervention, each with
the prompt's ``id`` and the scorers' keys (``leakage``, ``omission``, ``binding``,
``clipscore``, ...; see ``effeval.image.scorers``). Rows of the same ``id`` are averaged first, so
each prompt weighs the same however many seeds it has; prompts are then the resampling unit.

- value: mean over prompts of the per-prompt value, e.g. ``leakage_rate`` = mean share of leak
  questions answered "leaked".
- CI: percentile bootstrap -- ``n_boot`` resamples of the prompts with replacement, indices drawn
  with ``torch.randint`` from a ``torch.Generator`` seeded with ``seed`` (a fresh generator per
  metric, so adding a metric does not move the others), quantiles by linear interpolation.
- change vs the baseline (the ``none`` intervention): over prompts present in both, paired
  (the same resampled prompts for both arms): ``abs_change`` = value - baseline and
  ``rel_change`` = (value - baseline) / baseline, each with its bootstrap CI; ``label`` reads like
  "leakage −85%". ``rel_change`` is None when the baseline is 0.
"""

from __future__ import annotations

import math
from typing import Any

from effeval.bootstrap import check_bootstrap_settings
from effeval.errors import ConfigError

# per-prompt scorer key -> (reported metric name, higher is better, short label)
METRICS: dict[str, tuple[str, bool, str]] = {
    "leakage": ("leakage_rate", False, "leakage"),
    "omission": ("omission_rate", False, "omission"),
    "binding": ("binding_accuracy", True, "binding"),
    "clipscore": ("clipscore", True, "CLIPScore"),
    "clip_similarity": ("clip_similarity", True, "CLIP similarity"),
    "vqa_accuracy": ("vqa_accuracy", True, "VQA accuracy"),
    "vqa_p_expected": ("vqa_p_expected", True, "VQA P(expected)"),
    "baseline_clip_cosine": ("baseline_clip_cosine", True, "CLIP cosine to baseline"),
}
MINUS = "\u2212"


def _row_id(row: dict, k: int) -> str:
    for key in ("id", "prompt_id"):
        if key in row:
            return str(row[key])
    raise ConfigError(
        f"metrics rows: row {k} has no 'id'. Fix: give every per-prompt row the benchmark record's id"
    )


def per_prompt_means(rows: list[dict], key: str) -> dict[str, float]:
    """{prompt id: mean of ``key`` over that prompt's rows}, skipping rows without a finite value."""
    sums: dict[str, list[float]] = {}
    for k, row in enumerate(rows):
        v = row.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            continue
        sums.setdefault(_row_id(row, k), []).append(float(v))
    return {pid: sum(vs) / len(vs) for pid, vs in sums.items()}


def bootstrap_indices(n: int, n_boot: int, seed: int):
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    return torch.randint(0, n, (n_boot, n), generator=gen)


def _quantiles(samples, confidence: float) -> tuple[float | None, float | None]:
    import torch

    samples = samples[torch.isfinite(samples)]
    if samples.numel() == 0:
        return None, None
    alpha = (1.0 - confidence) / 2.0
    q = torch.quantile(samples, torch.tensor([alpha, 1.0 - alpha], dtype=samples.dtype))
    return float(q[0]), float(q[1])


def mean_ci(
    values: list[float], n_boot: int = 1000, seed: int = 0, confidence: float = 0.95
) -> dict[str, Any]:
    import torch

    v = torch.tensor(values, dtype=torch.float64)
    point = float(v.mean())
    lo, hi = _quantiles(v[bootstrap_indices(len(values), n_boot, seed)].mean(dim=1), confidence)
    return {"value": point, "ci_low": lo, "ci_high": hi, "n": len(values)}


def paired_change(
    values: list[float], baseline: list[float], n_boot: int = 1000, seed: int = 0, confidence: float = 0.95
) -> dict[str, Any]:
    import torch

    v = torch.tensor(values, dtype=torch.float64)
    b = torch.tensor(baseline, dtype=torch.float64)
    idx = bootstrap_indices(len(values), n_boot, seed)
    vm, bm = v[idx].mean(dim=1), b[idx].mean(dim=1)
    point_v, point_b = float(v.mean()), float(b.mean())
    abs_lo, abs_hi = _quantiles(vm - bm, confidence)
    out = {
        "baseline": point_b,
        "value": point_v,
        "abs_change": point_v - point_b,
        "abs_ci_low": abs_lo,
        "abs_ci_high": abs_hi,
        "rel_change": None,
        "rel_ci_low": None,
        "rel_ci_high": None,
        "n_paired": len(values),
    }
    if point_b != 0:
        # resamples whose baseline mean is 0 have no relative change: dropped (nan -> filtered)
        rel = torch.where(bm != 0, (vm - bm) / bm, torch.full_like(bm, float("nan")))
        out["rel_change"] = (point_v - point_b) / point_b
        out["rel_ci_low"], out["rel_ci_high"] = _quantiles(rel, confidence)
    return out


def change_label(short: str, rel_change: float | None, abs_change: float) -> str:
    """'leakage −85%' (relative) or 'leakage +0.031' when the baseline is 0."""
    if rel_change is None:
        return f"{short} {'+' if abs_change >= 0 else MINUS}{abs(abs_change):.3g} (baseline 0)"
    pct = rel_change * 100.0
    return f"{short} {'+' if pct >= 0 else MINUS}{abs(pct):.0f}%"


def aggregate(
    per_prompt_rows: list[dict],
    baseline_rows: list[dict] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    keys: list[str] | None = None,
) -> dict[str, Any]:
    """Metrics over one intervention's rows (and their change vs ``baseline_rows``)."""
    check_bootstrap_settings(n_boot, confidence)
    keys = list(keys) if keys else list(METRICS)
    metrics: dict[str, Any] = {}
    changes: dict[str, Any] = {}
    prompt_ids: set[str] = set()
    for key in keys:
        name, higher, short = METRICS.get(key, (key, True, key))
        values = per_prompt_means(per_prompt_rows, key)
        if not values:
            continue
        prompt_ids.update(values)
        ids = sorted(values)  # order-free: merged shards and resumed runs give the same CI
        metrics[name] = {
            **mean_ci([values[i] for i in ids], n_boot, seed, confidence),
            "higher_is_better": higher,
            "key": key,
        }
        if baseline_rows is not None:
            base = per_prompt_means(baseline_rows, key)
            common = sorted(set(values) & set(base))
            if common:
                ch = paired_change(
                    [values[i] for i in common], [base[i] for i in common], n_boot, seed, confidence
                )
                ch["label"] = change_label(short, ch["rel_change"], ch["abs_change"])
                ch["higher_is_better"] = higher
                changes[name] = ch
    out: dict[str, Any] = {
        "n_prompts": len(prompt_ids),
        "n_rows": len(per_prompt_rows),
        "metrics": metrics,
        "bootstrap": {
            "n": n_boot,
            "seed": seed,
            "confidence": confidence,
            "method": "percentile; prompts resampled with replacement (torch.Generator)",
        },
    }
    if baseline_rows is not None:
        out["vs_baseline"] = changes
    return out
