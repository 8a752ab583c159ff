"""Control-corrected leakage for the shapes world (Kaplan et al.'s leakage, with a baseline).

A *read* of one image is two numbers from the judge: ``drawn`` (the target's shape is in the
picture) and ``carries`` (the target is drawn with the source's attribute value ``v``; this
implies ``drawn``). With several seeds they are means over the seeds.

Leakage of one ``shapes-leakage`` prompt = its ``carries`` minus that of its matched control
(``shapes-leakage-control``: the same target, the source's attribute changed to a third value,
so nobody in the prompt has ``v``): how much more often the target takes ``v`` when the source
has it than when nobody has it. The per-pair difference is the bootstrap unit (pairs resampled
with replacement, ``effeval.image.metrics.bootstrap_indices``).

Reported per group (``all``, ``source-first``, ``target-first``):

- ``leak_rate``: mean ``carries`` of the prompts (target drawn AND carries ``v``),
- ``control_rate``: the same on the controls,
- ``corrected``: ``leak_rate - control_rate`` (paired), with its CI,
- ``conditional``: P(carries | drawn) on the prompts minus the same on the controls (ratio of
  sums within each resample), so an intervention that makes the target vanish cannot look like
  one that stops it leaking,
- ``target_omission``: 1 - mean ``drawn`` of the prompts.

``change_vs`` compares two interventions' ``corrected`` (and ``conditional``) on the same pairs.
"""

from __future__ import annotations

import math

GROUPS = ("all", "source-first", "target-first")


def reads_from_rows(rows: list[dict]) -> dict[tuple[str, str], dict[str, float]]:
    """{(record id, intervention): {"drawn", "carries"}} from the image runner's per-prompt rows
    (the judge's ``q.target.present.p_yes`` and ``q.leak.p_yes``), averaged over seeds."""
    acc: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in rows:
        if "q.leak.p_yes" not in r or "q.target.present.p_yes" not in r:
            continue
        acc.setdefault((r["id"], r["intervention"]), []).append(
            (float(r["q.target.present.p_yes"]), float(r["q.leak.p_yes"]))
        )
    return {
        k: {"drawn": sum(d for d, _ in v) / len(v), "carries": sum(c for _, c in v) / len(v)}
        for k, v in acc.items()
    }


def pairs_for(
    tests: list[dict], controls: list[dict], reads: dict, control_reads: dict, intervention: str
) -> list[dict]:
    """One entry per prompt with both reads: {"id", "order", "test": read, "control": read}."""
    by_pair = {c["leak"]["control_of"]: c for c in controls}
    out = []
    for t in tests:
        c = by_pair.get(t["id"])
        if c is None:
            continue
        a, b = reads.get((t["id"], intervention)), control_reads.get((c["id"], intervention))
        if a is not None and b is not None:
            out.append({"id": t["id"], "order": t["leak"]["order"], "test": a, "control": b})
    return out


def _quantiles(values: list[float], confidence: float) -> tuple[float | None, float | None]:
    import torch

    v = torch.tensor([x for x in values if math.isfinite(x)], dtype=torch.float64)
    if v.numel() == 0:
        return None, None
    alpha = (1 - confidence) / 2
    q = torch.quantile(v, torch.tensor([alpha, 1 - alpha], dtype=torch.float64))
    return float(q[0]), float(q[1])


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else float("nan")


def _stats(pairs: list[dict]) -> dict[str, float]:
    n = len(pairs)
    t_drawn = sum(p["test"]["drawn"] for p in pairs)
    t_carry = sum(p["test"]["carries"] for p in pairs)
    c_drawn = sum(p["control"]["drawn"] for p in pairs)
    c_carry = sum(p["control"]["carries"] for p in pairs)
    return {
        "leak_rate": t_carry / n,
        "control_rate": c_carry / n,
        "corrected": (t_carry - c_carry) / n,
        "conditional": _ratio(t_carry, t_drawn) - _ratio(c_carry, c_drawn),
        "conditional_leak_rate": _ratio(t_carry, t_drawn),
        "conditional_control_rate": _ratio(c_carry, c_drawn),
        "target_omission": 1 - t_drawn / n,
    }


def control_corrected(pairs: list[dict], n_boot: int = 1000, seed: int = 0, confidence: float = 0.95) -> dict:
    """The module doc's numbers for one set of pairs, each with a percentile bootstrap CI."""
    from effeval.image.metrics import bootstrap_indices

    if not pairs:
        return {"n": 0}
    point = _stats(pairs)
    idx = bootstrap_indices(len(pairs), n_boot, seed).tolist()
    boots = [_stats([pairs[i] for i in row]) for row in idx]
    out: dict = {"n": len(pairs)}
    for key, value in point.items():
        lo, hi = _quantiles([b[key] for b in boots], confidence)
        out[key] = {"value": value if math.isfinite(value) else None, "ci_low": lo, "ci_high": hi}
    return out


def by_order(pairs: list[dict], n_boot: int = 1000, seed: int = 0) -> dict[str, dict]:
    """``control_corrected`` for all pairs and for each order."""
    return {
        g: control_corrected([p for p in pairs if g == "all" or p["order"] == g], n_boot, seed)
        for g in GROUPS
    }


def change_vs(
    pairs: list[dict], baseline: list[dict], n_boot: int = 1000, seed: int = 0, confidence: float = 0.95
) -> dict:
    """``corrected`` and ``conditional`` of ``pairs`` minus those of ``baseline`` on the prompts
    both have (the same resampled prompts for both arms), with the relative change of
    ``corrected`` (None when the baseline's is 0)."""
    from effeval.image.metrics import bootstrap_indices

    base = {p["id"]: p for p in baseline}
    mine = [p for p in pairs if p["id"] in base]
    if not mine:
        return {"n_paired": 0}
    other = [base[p["id"]] for p in mine]
    idx = bootstrap_indices(len(mine), n_boot, seed).tolist()
    out: dict = {"n_paired": len(mine)}
    a, b = _stats(mine), _stats(other)
    boots = [(_stats([mine[i] for i in row]), _stats([other[i] for i in row])) for row in idx]
    for key in ("corrected", "conditional", "target_omission"):
        lo, hi = _quantiles([x[key] - y[key] for x, y in boots], confidence)
        diff = a[key] - b[key]
        out[key] = {"value": diff if math.isfinite(diff) else None, "ci_low": lo, "ci_high": hi}
    if b["corrected"] != 0:
        rel = [
            (x["corrected"] - y["corrected"]) / y["corrected"] if y["corrected"] else math.nan
            for x, y in boots
        ]
        lo, hi = _quantiles(rel, confidence)
        out["corrected_rel"] = {
            "value": (a["corrected"] - b["corrected"]) / b["corrected"],
            "ci_low": lo,
            "ci_high": hi,
        }
    return out
