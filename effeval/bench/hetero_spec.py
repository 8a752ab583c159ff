"""``python -m effeval.bench hetero-spec``: cross-vocabulary speculative decoding on real pairs.

Pairs built by the zoo (one thread, CPU, batch size 1):

- ``a``: Gemma-3-270M target <- SmolLM2-135M drafter (both real, 262k SentencePiece-style BPE vs
  49k byte-level BPE);
- ``b``: SmolLM2-135M target <- ``smollm2-drafter-sp`` (2 layers, 128 wide, Mistral 32k
  SentencePiece, distilled from SmolLM2's own outputs on Python's docs and stdlib text).

Prompts: a HumanEval slice (the first problems) and a summarisation slice: "summarize in one
sentence" over passages of the held-out Project Gutenberg prose (the shortest of the first 20
passages of at least 100 words, to keep prefill small). Both sources are always installed (XSum
comes from the optional BIG-bench archive, which the index no longer serves). Greedy and T=1. Every algorithm (AR,
SLEM, TLI, SLRS, transformers' ``hf``) decodes every prompt in every repeat, the algorithms'
order rotating between repeats (interleaved, so load changes hit all alike). Per row: wall time,
tokens/s, speedup vs AR and vs ``hf`` with a standard error over (prompt, repeat) units, acceptance,
mean accepted length, target/drafter calls, greedy equality with AR, and the per-token overhead:
wall time minus the time inside the models' forward passes (forward hooks on the target and
drafter, the same measurement for every algorithm, transformers' included).

``--before REV`` also measures the per-token overhead of the algorithms as they were at git
revision REV (extracted with ``git archive`` and run in a subprocess on the same prompts).
Writes ``results/bench/hetero-spec.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from effeval.bench.common import bench_command

logger = logging.getLogger(__name__)

PAIRS = {
    # the real-large tier (effeval zoo build --real-large): Qwen2.5-Coder-1.5B target
    "qwen-smollm2": ("qwen2.5-coder-1.5b", "smollm2-135m"),  # different tokenizers
    "qwen-qwen": ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"),  # same tokenizer: the control
    "qwen-gemma": ("qwen2.5-coder-1.5b", "gemma3-270m"),
    "a": ("gemma3-270m", "smollm2-135m"),
    "b": ("smollm2-135m", "smollm2-drafter-sp"),
    # random tiny zoo pair (seconds to build): the bench's own smoke test, not a speed claim
    "zoo": ("llama-sp", "qwen-tekken"),
}
ALGORITHMS = ["ar", "slem", "tli", "slrs", "hf"]
# NAME:a = NAME with adaptive draft length (``--adaptive``), measured beside fixed k
ADAPTIVE = "a"
DEFAULT_ADAPTIVE = "draft_confidence=0.4,draft_schedule=heuristic"
MODES = {"greedy": None, "t1": 1.0}
SUMMARY_PROMPT = "Summarize the following passage in one sentence.\n\n{passage}\n\nOne-sentence summary:"


def task_prompts(per_task: int) -> dict[str, list[str]]:
    from effeval import real_data

    humaneval = [row["prompt"] for row in real_data.humaneval_rows()[:per_task]]
    passages = sorted(real_data.prose_documents("heldout", words=100)[:20], key=len)[:per_task]
    summary = [SUMMARY_PROMPT.format(passage=p) for p in passages]
    return {"humaneval": humaneval, "summary": summary}


class ForwardClock:
    """Seconds spent inside the forward passes of some modules (top-level calls only); per
    module also the number of calls and the first call's time (the prompt's prefill)."""

    def __init__(self, modules):
        self.seconds = 0.0
        self.per_module = [{"seconds": 0.0, "calls": 0, "first_s": 0.0} for _ in modules]
        self._depth = 0
        self._start = 0.0
        self._hooks = []
        for i, m in enumerate(modules):
            self._hooks.append(m.register_forward_pre_hook(self._pre))
            self._hooks.append(m.register_forward_hook(functools.partial(self._post, i)))

    def _pre(self, *_):
        if self._depth == 0:
            self._start = time.perf_counter()
        self._depth += 1

    def _post(self, index, *_):
        self._depth -= 1
        if self._depth == 0:
            elapsed = time.perf_counter() - self._start
            self.seconds += elapsed
            mod = self.per_module[index]
            if mod["calls"] == 0:
                mod["first_s"] = elapsed
            mod["calls"] += 1
            mod["seconds"] += elapsed

    def remove(self):
        for h in self._hooks:
            h.remove()


def _config(t_tok, max_new: int, temperature):
    from effeval.methods.hetero_spec.common import SamplingConfig

    eos = (t_tok.eos_token_id,) if t_tok.eos_token_id is not None else ()
    if temperature is None:
        return SamplingConfig(max_new_tokens=max_new, eos_token_ids=eos)
    return SamplingConfig(do_sample=True, temperature=temperature, max_new_tokens=max_new, eos_token_ids=eos)


def _run_one(name, models, prompt_ids, config, k, seed, adaptive=None):
    """One generation; ``name`` may be ``ALGO:a`` (the algorithm with the ``adaptive`` options)."""
    import torch

    from effeval.methods.hetero_spec import get_algorithm

    target, t_tok, drafter, d_tok, hf_drafter = models
    algo, _, variant = name.partition(":")
    options = dict(adaptive or {}) if variant == ADAPTIVE else {}
    d = hf_drafter if algo == "hf" else drafter
    clock = ForwardClock([target, d])
    try:
        res = get_algorithm(algo)(
            target,
            t_tok,
            d,
            d_tok,
            prompt_ids,
            config,
            num_draft_tokens=k,
            generator=torch.Generator().manual_seed(seed),
            **options,
        )
    finally:
        clock.remove()
    return res, clock


def _ratio_with_stderr(num: list[float], den: list[float]) -> tuple[float | None, float | None]:
    """sum(num)/sum(den), with a standard error from the spread of the per-unit log ratios."""
    if not num or not den or sum(den) <= 0:
        return None, None
    ratio = sum(num) / sum(den)
    logs = [math.log(a / b) for a, b in zip(num, den) if a > 0 and b > 0]
    if len(logs) < 2:
        return ratio, None
    mean = sum(logs) / len(logs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (len(logs) - 1))
    return ratio, ratio * sd / math.sqrt(len(logs))


_LOADED: dict = {}  # zoo name -> (model, tokenizer): the 1.5B target is loaded once for its three pairs


def _load(name: str, fast_path: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from effeval import zoo
    from effeval.methods.hetero_spec import fast_path as fast

    key = (name, fast_path)
    if key not in _LOADED:
        path = zoo.get(name)
        model = AutoModelForCausalLM.from_pretrained(path).eval()
        _LOADED[key] = (fast.apply(model, fast_path), AutoTokenizer.from_pretrained(path))
    return _LOADED[key]


def _release(keep: set) -> None:
    import gc

    for key in [k for k in _LOADED if k[0] not in keep]:
        del _LOADED[key]
    gc.collect()


def _layers(model) -> int:
    return int(getattr(model.config, "num_hidden_layers", 0) or 0)


def measure_costs(target, drafter, t_ids, d_ids, rows: list[int], repeats: int) -> dict:
    """The cost model of one pair, measured: one target forward of n new tokens (n in ``rows``)
    and one drafter forward of 1 token, after a KV-cached context (the pair's first prompt), in
    milliseconds and in target steps (target forward of 1 token)."""
    from effeval.bench.verify_cost import step_costs

    t = step_costs(target, t_ids, rows, repeats)["median_s"]
    d = step_costs(drafter, d_ids, [1], repeats)["median_s"][1]
    step = t[1]
    return {
        "context_target_tokens": len(t_ids),
        "repeats": repeats,
        "target_forward_ms": {str(n): 1e3 * v for n, v in t.items()},
        "drafter_step_ms": 1e3 * d,
        "verify_over_step": {str(n): v / step for n, v in t.items()},
        "drafter_over_step": d / step,
        "target_layers": _layers(target),
        "drafter_layers": _layers(drafter),
    }


def bench_pair(pair: str, args, prompts: dict[str, list[str]], max_new: int) -> dict:
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM

    from effeval import zoo

    t_name, d_name = PAIRS[pair]
    _release({t_name, d_name})
    target, t_tok = _load(t_name, args.fast_path)
    drafter, d_tok = _load(d_name, args.fast_path)
    # transformers rewrites its drafter in place (its own copy) and reads its layers' weights
    # (plain path): the hf row's drafter is a plain copy; its target is the same model as AR's
    hf_drafter = AutoModelForCausalLM.from_pretrained(zoo.get(d_name)).eval()
    models = (target, t_tok, drafter, d_tok, hf_drafter)
    algorithms = [a for a in args.algorithms.split(",") if a]
    adaptive = _parse_adaptive(args.adaptive)
    first = next(iter(prompts.values()))[0]
    rows_measured = sorted({1, 2, 3, 4, 5, 6, 8, args.num_draft_tokens + 1})
    logger.info("hetero-spec bench: cost model of pair %s", pair)
    costs = measure_costs(
        target,
        drafter,
        t_tok(first)["input_ids"],
        d_tok(first)["input_ids"],
        rows_measured,
        args.cost_repeats,
    )
    rows = []
    for mode in args.modes.split(","):
        config = _config(t_tok, max_new, MODES[mode])
        # warm-up (once per mode): first-call allocations, vocabulary tables; an algorithm that
        # refuses the pair (e.g. SLRS without every drafter byte in the target vocabulary) is
        # reported, and so is one that fails (transformers' hf on some pairs)
        warm = _config(t_tok, 4, MODES[mode])
        refused = {}
        for name in algorithms:
            try:
                _run_one(
                    name, models, t_tok(first)["input_ids"][-64:], warm, args.num_draft_tokens, 0, adaptive
                )
            except Exception as exc:
                logger.warning("hetero-spec bench: %s refused: %s", name, exc)
                refused[name] = _one_line(exc)
        for task, texts in prompts.items():
            if mode == "t1" and task not in args.t1_tasks.split(","):
                continue
            ids = [t_tok(text)["input_ids"] for text in texts]
            units: dict[str, list[dict]] = {name: [] for name in algorithms}
            plan = [
                (rep, (pi, name))
                for rep in range(args.repeats)
                for pi in range(len(ids))
                for name in algorithms[rep % len(algorithms) :] + algorithms[: rep % len(algorithms)]
            ]
            for rep, (pi, name) in tqdm(plan, desc=f"{pair} {mode} {task}", leave=False):
                if name in refused:
                    units[name].append({"error": refused[name]})
                    continue
                try:
                    res, clock = _run_one(
                        name, models, ids[pi], config, args.num_draft_tokens, 1000 * rep + pi, adaptive
                    )
                except Exception as exc:  # reported in the row, not fatal
                    logger.warning("hetero-spec bench: %s failed: %s", name, exc)
                    units[name].append({"error": _one_line(exc)})
                    continue
                s = res.stats
                tgt, drf = clock.per_module
                units[name].append(
                    {
                        "prompt": pi,
                        "repeat": rep,
                        "tokens": res.token_ids,
                        "wall": s.wall_time_s,
                        "forward": clock.seconds,
                        # the prompt's prefill (first forward of each model), the same for every
                        # algorithm up to the first verify's extra rows
                        "prefill": tgt["first_s"] + drf["first_s"],
                        "target_forward": tgt["seconds"],
                        "target_first": tgt["first_s"],
                        "target_forwards": tgt["calls"],
                        "drafter_forward": drf["seconds"],
                        "drafter_first": drf["first_s"],
                        "drafter_forwards": drf["calls"],
                        "new": s.new_tokens,
                        "drafted": s.drafted,
                        "accepted": s.accepted,
                        "steps": len(s.accepted_lengths),
                        "target_calls": s.target_calls,
                        "drafter_calls": s.drafter_calls,
                        "fallbacks": s.extra.get("dp_budget_fallbacks", 0),
                        "early_stops": s.extra.get("draft_early_stops", 0),
                    }
                )
            rows += _summarise(pair, mode, task, algorithms, units, costs, args.num_draft_tokens)
    return {
        "pair": pair,
        "target": t_name,
        "drafter": d_name,
        "target_vocab": len(t_tok),
        "drafter_vocab": len(d_tok),
        "fast_path": args.fast_path,
        "adaptive": adaptive,
        "cost_model": costs,
        "rows": rows,
    }


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _parse_adaptive(spec: str) -> dict:
    """``draft_confidence=0.4,draft_schedule=heuristic`` -> options (checked by the algorithms)."""
    from effeval.errors import ConfigError

    out: dict = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        if key == "draft_confidence":
            try:
                out[key] = float(value)
            except ValueError:
                raise ConfigError(
                    f"--adaptive: {item!r} is not a number. Fix: e.g. draft_confidence=0.4"
                ) from None
        elif key == "draft_schedule":
            out[key] = value
        else:
            raise ConfigError(
                f"--adaptive: unknown option {key!r}. Fix: use draft_confidence=X and/or draft_schedule=heuristic"
            )
    return out


def interpolate(table: dict[str, float], x: float) -> float:
    """Piecewise-linear in the row count over the measured points (linear beyond the last two)."""
    pts = sorted((int(k), v) for k, v in table.items())
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x <= x1:
            return y0 + (y1 - y0) * (max(x, x0) - x0) / (x1 - x0)
    (x0, y0), (x1, y1) = pts[-2], pts[-1]
    return y1 + (y1 - y0) * (x - x1) / (x1 - x0)


def alpha_from_accepted(mean_accepted: float, k: float) -> float | None:
    """Per-token acceptance alpha of the i.i.d. model whose expected accepted drafts per round,
    alpha (1 - alpha^k) / (1 - alpha), equal ``mean_accepted`` (bisection; None out of range)."""
    if k <= 0 or mean_accepted is None or not 0 <= mean_accepted <= k:
        return None
    lo, hi = 0.0, 1.0
    for _ in range(60):
        a = (lo + hi) / 2
        value = a * (1 - a**k) / (1 - a) if a < 1 else k
        lo, hi = (a, hi) if value < mean_accepted else (lo, a)
    return (lo + hi) / 2


def _summarise(pair, mode, task, algorithms, units, costs, k) -> list[dict]:
    def key(u):
        return (u["prompt"], u["repeat"])

    ok = {n: {key(u): u for u in us if "error" not in u} for n, us in units.items()}
    ar, hf = ok.get("ar", {}), ok.get("hf", {})
    c_d = costs["drafter_over_step"]
    layer_ratio = costs["drafter_layers"] / costs["target_layers"] if costs["target_layers"] else None
    out = []
    for name in algorithms:
        us = ok[name]
        errors = [u["error"] for u in units[name] if "error" in u]
        row = {"pair": pair, "mode": mode, "task": task, "algorithm": name}
        if errors:
            row["errors"] = sorted(set(errors))
            row["failed"] = errors[0]
        if not us:
            out.append(row)
            continue
        vals = list(us.values())
        new = sum(u["new"] for u in vals)
        wall = sum(u["wall"] for u in vals)
        prefill = sum(u["prefill"] for u in vals)
        forward = sum(u["forward"] for u in vals)
        steps = sum(u["steps"] for u in vals)
        drafted = sum(u["drafted"] for u in vals)
        accepted = sum(u["accepted"] for u in vals)
        target_calls = sum(u["target_calls"] for u in vals)
        drafter_calls = sum(u["drafter_calls"] for u in vals)
        algo = name.partition(":")[0]
        if algo == "hf":  # transformers reports no counts: each target pass emits accepted + 1
            accepted, steps = max(0, new - target_calls), target_calls
            drafter_calls = sum(u["drafter_forwards"] for u in vals)
        # forward passes after the first (prefill) one, per call: the in-run step / verify cost
        t_rest = sum(u["target_forward"] - u["target_first"] for u in vals)
        t_calls_rest = sum(max(u["target_forwards"] - 1, 0) for u in vals)
        row.update(
            {
                "runs": len(vals),
                "new_tokens": new,
                "wall_time_s": wall,
                "tokens_per_s": new / wall if wall else None,
                "prefill_s": prefill,
                "decode_tokens_per_s": new / (wall - prefill) if wall > prefill else None,
                "overhead_us_per_token": 1e6 * (wall - forward) / new if new else None,
                # per verification step (AR: per token): the algorithm's own work between passes
                "overhead_us_per_step": 1e6 * (wall - forward) / (steps or target_calls)
                if (steps or target_calls)
                else None,
                "forward_share": forward / wall if wall else None,
                "target_calls": target_calls,
                "drafter_calls": drafter_calls,
                "tokens_per_target_call": new / target_calls if target_calls else None,
                "acceptance_rate": accepted / drafted if drafted and algo != "hf" else None,
                "mean_accepted_length": accepted / steps if steps and algo != "ar" else None,
                "dp_budget_fallbacks": sum(u["fallbacks"] for u in vals) if algo == "slrs" else None,
                "draft_early_stops": sum(u["early_stops"] for u in vals) if ":" in name else None,
                "in_run_target_call_ms": 1e3 * t_rest / t_calls_rest if t_calls_rest else None,
            }
        )
        for ref_name, ref in (("ar", ar), ("hf", hf)):
            shared = [k for k in us if k in ref]
            # speedup = reference time per token / this time per token, per (prompt, repeat)
            # unit (tokens/s basis: sampled units stop at different lengths)
            for label, strip in (("", False), ("decode_", True)):
                num = [_per_token(ref[k], strip) for k in shared]
                den = [_per_token(us[k], strip) for k in shared]
                ratio, err = _ratio_with_stderr(num, den)
                row[f"{label}speedup_vs_{ref_name}"], row[f"{label}speedup_vs_{ref_name}_stderr"] = ratio, err
                if ratio is not None and err is not None:  # normal approximation over the units
                    row[f"{label}speedup_vs_{ref_name}_ci95"] = [ratio - 1.96 * err, ratio + 1.96 * err]
        if mode == "greedy" and ar:
            shared = [k for k in us if k in ar]
            row["equal_to_ar"] = sum(us[k]["tokens"] == ar[k]["tokens"] for k in shared)
            row["compared"] = len(shared)
        d_calls_rest = sum(max(u["drafter_forwards"] - 1, 0) for u in vals)
        d_rest = sum(u["drafter_forward"] - u["drafter_first"] for u in vals)
        row["in_run_drafter_call_ms"] = 1e3 * d_rest / d_calls_rest if d_calls_rest else None
        if algo != "ar" and target_calls:
            row.update(
                _cost_model(row, costs, c_d, layer_ratio, k, drafter_calls, drafted, target_calls, algo)
            )
            ar_step = _in_run_step(ar)
            if ar_step and row["in_run_target_call_ms"] and row["in_run_drafter_call_ms"]:
                # the same formula on this run's own per-call forward times (AR's step as the
                # unit): what is left between measured and this is work outside forward passes
                cost = (
                    row["drafter_passes_per_round"] * row["in_run_drafter_call_ms"]
                    + row["in_run_target_call_ms"]
                ) / ar_step
                row["ideal_speedup_in_run_costs"] = row["tokens_per_round"] / cost
                if row.get("decode_speedup_vs_ar") is not None:
                    row["measured_over_ideal_in_run_costs"] = (
                        row["decode_speedup_vs_ar"] / row["ideal_speedup_in_run_costs"]
                    )
        out.append(row)
    return out


def _in_run_step(ar_units: dict) -> float | None:
    """AR's target forward per call after the prefill, in ms, over its units."""
    calls = sum(max(u["target_forwards"] - 1, 0) for u in ar_units.values())
    seconds = sum(u["target_forward"] - u["target_first"] for u in ar_units.values())
    return 1e3 * seconds / calls if calls else None


def _per_token(unit: dict, strip_prefill: bool) -> float:
    wall = unit["wall"] - (unit["prefill"] if strip_prefill else 0.0)
    return max(wall, 1e-9) / max(unit["new"], 1)


def _cost_model(row, costs, c_d, layer_ratio, k, drafter_calls, drafted, target_calls, algo) -> dict:
    """The ideal speedup the measured costs and acceptance imply, measured / ideal, and the
    prediction for a machine where a verify costs one step and the drafter its layer share.

    Per round (one target call): ``tokens = new / target calls`` (accepted + 1), drafter passes
    ``k_d = drafter calls / target calls``, verify rows ``r = drafted / target calls + 1``. In target
    steps: ``cost = k_d * c_d + c_v(r)``; ideal = tokens / cost (AR makes 1 token per step)."""
    tokens = row["new_tokens"] / target_calls
    k_d = drafter_calls / target_calls
    verify_rows = drafted / target_calls + 1 if algo != "hf" else min(k_d, k) + 1
    c_v = interpolate(costs["verify_over_step"], verify_rows)
    ideal = tokens / (k_d * c_d + c_v)
    out = {
        "cost_drafter_over_step": c_d,
        f"cost_verify{k + 1}_over_step": costs["verify_over_step"].get(str(k + 1)),
        "cost_verify_rows_per_round": verify_rows,
        "cost_verify_over_step": c_v,
        "drafter_passes_per_round": k_d,
        "tokens_per_round": tokens,
        "alpha_iid": alpha_from_accepted(tokens - 1, k_d) if algo in ("slem", "tli") else None,
        "ideal_speedup": ideal,
        # the same acceptance where verify = 1 step and a drafter pass = its layer share of a step
        "prediction_layer_bound_speedup": tokens / (k_d * layer_ratio + 1) if layer_ratio else None,
    }
    measured = row.get("decode_speedup_vs_ar")
    if measured is not None:
        out["measured_over_ideal"] = measured / ideal
        err = row.get("decode_speedup_vs_ar_stderr")
        out["measured_over_ideal_stderr"] = err / ideal if err is not None else None
    return out


def run_cost_model(efficiency: dict, costs: dict, prefill_over_step: float) -> dict:
    """The wall-time speedup a run's counts imply under a measured cost model (``measure_costs``),
    prefill included, for a run made with ``verify=true`` (its efficiency block has AR's counts).

    In target steps: AR = R prefills + (AR calls - R) steps; speculation = R prefills + rounds x
    c_v(verify rows per round) + drafter passes x c_d, where rounds = target calls - R (each
    request's first target call is its prefill). The drafter's own prefills count as steps (small)."""
    requests = efficiency["requests"]
    rounds = max(efficiency["target_calls"] - requests, 1)
    rows = efficiency["drafted"] / rounds + 1
    c_v = interpolate(costs["verify_over_step"], rows)
    c_d = costs["drafter_over_step"]
    ar = requests * prefill_over_step + efficiency["ar_target_calls"] - requests
    spec = requests * prefill_over_step + rounds * c_v + efficiency["drafter_calls"] * c_d
    measured = efficiency.get("speedup_vs_ar")
    return {
        "cost_drafter_over_step": c_d,
        "cost_verify_rows_per_round": rows,
        "cost_verify_over_step": c_v,
        "cost_prefill_over_step": prefill_over_step,
        "ideal_speedup": ar / spec,
        "measured_speedup": measured,
        "measured_over_ideal": measured / (ar / spec) if measured is not None else None,
    }


BEFORE_SCRIPT = r"""
import json, sys, time, torch
torch.set_num_threads(1)
from transformers import AutoModelForCausalLM, AutoTokenizer
from effeval.methods.hetero_spec import get_algorithm
from effeval.methods.hetero_spec.common import SamplingConfig
spec = json.loads(sys.argv[1])
target = AutoModelForCausalLM.from_pretrained(spec["target"]).eval()
drafter = AutoModelForCausalLM.from_pretrained(spec["drafter"]).eval()
t_tok, d_tok = AutoTokenizer.from_pretrained(spec["target"]), AutoTokenizer.from_pretrained(spec["drafter"])
clock = {"s": 0.0, "depth": 0, "start": 0.0}
def pre(*_):
    if clock["depth"] == 0: clock["start"] = time.perf_counter()
    clock["depth"] += 1
def post(*_):
    clock["depth"] -= 1
    if clock["depth"] == 0: clock["s"] += time.perf_counter() - clock["start"]
for m in (target, drafter):
    m.register_forward_pre_hook(pre); m.register_forward_hook(post)
out = {}
config = SamplingConfig(max_new_tokens=spec["max_new"], eos_token_ids=(t_tok.eos_token_id,))
for name in spec["algorithms"]:
    gen = get_algorithm(name)
    gen(target, t_tok, drafter, d_tok, t_tok(spec["prompts"][0])["input_ids"][-64:],
        SamplingConfig(max_new_tokens=4, eos_token_ids=(t_tok.eos_token_id,)), num_draft_tokens=spec["k"])
    wall = fwd = new = 0.0
    for text in spec["prompts"]:
        clock["s"] = 0.0
        t0 = time.perf_counter()
        res = gen(target, t_tok, drafter, d_tok, t_tok(text)["input_ids"], config, num_draft_tokens=spec["k"])
        wall += time.perf_counter() - t0; fwd += clock["s"]; new += res.stats.new_tokens
    out[name] = {"wall_time_s": wall, "forward_s": fwd, "new_tokens": new,
                 "overhead_us_per_token": 1e6 * (wall - fwd) / max(new, 1)}
print("RESULT " + json.dumps(out))
"""


def overhead_before(rev: str, pair: str, prompts: list[str], args) -> dict:
    """Per-token overhead of greedy SLEM/TLI/SLRS as of git revision ``rev`` (subprocess)."""
    from effeval import zoo

    t_name, d_name = PAIRS[pair]
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", rev, "effeval"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        spec = {
            "target": str(zoo.get(t_name)),
            "drafter": str(zoo.get(d_name)),
            "prompts": prompts,
            "max_new": args.max_new_tokens,
            "k": args.num_draft_tokens,
            "algorithms": ["ar", "slem", "tli", "slrs"],
        }
        env = {**os.environ, "PYTHONPATH": tmp, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        proc = subprocess.run(
            [sys.executable, "-c", BEFORE_SCRIPT, json.dumps(spec)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
            timeout=1800,
        )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        return {"revision": rev, "error": proc.stderr[-2000:]}
    return {"revision": rev, "pair": pair, "mode": "greedy", "prompts": len(prompts), **json.loads(line[7:])}


def _previous_run(out_dir) -> dict | None:
    from effeval.bench.common import bench_dir

    path = (Path(out_dir) if out_dir else bench_dir()) / "hetero-spec.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _previous_runs(previous: dict | None, kept: list[dict]) -> list[dict]:
    """Settings of every earlier run a kept pair comes from (carried over from run to run)."""
    if not previous or not kept:
        return []
    runs = {r["created"]: r for r in previous.get("previous_runs") or []}
    if previous.get("previous_run"):  # the older single-entry form
        runs[previous["previous_run"]["created"]] = previous["previous_run"]
    runs[previous["created"]] = {"created": previous["created"], "settings": previous.get("settings")}
    wanted = {p.get("from_run", previous["created"]) for p in kept}
    return [runs[c] for c in sorted(wanted) if c in runs]


def _verify_cost(out_dir) -> dict | None:
    """``verify-cost.json`` of the same folder (``python -m effeval.bench verify-cost``), if any."""
    from effeval.bench.common import bench_dir

    path = (Path(out_dir) if out_dir else bench_dir()) / "verify-cost.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return {"created": doc.get("created"), "settings": doc.get("settings"), "models": doc.get("models")}


def _per_pair(spec: str, option: str, pairs: list[str], default: int) -> dict[str, int]:
    """``a=1,b=2`` -> a value per pair, each in 1..``default`` (``default`` for the others)."""
    from effeval.errors import ConfigError

    out = dict.fromkeys(pairs, default)
    for item in filter(None, spec.split(",")):
        pair, _, count = item.partition("=")
        if pair not in PAIRS or not count.isdigit() or not 1 <= int(count) <= default:
            raise ConfigError(
                f"{option}: {item!r} is not PAIR=N with a known pair and 1 <= N <= {default}. "
                f"Fix: e.g. {option} a=1"
            )
        out[pair] = int(count)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pairs",
        default="a,b",
        help="pairs to run (qwen-smollm2, qwen-qwen, qwen-gemma: Qwen2.5-Coder-1.5B target, needs "
        "`effeval zoo build --real-large`; a: Gemma<-SmolLM2, b: SmolLM2<-small SP, zoo: random tiny pair)",
    )
    parser.add_argument(
        "--algorithms",
        default=",".join(ALGORITHMS),
        help=f"comma list of {', '.join(ALGORITHMS)}; NAME:{ADAPTIVE} = NAME with --adaptive's options",
    )
    parser.add_argument(
        "--adaptive", default=DEFAULT_ADAPTIVE, help="the options of the NAME:a rows (adaptive draft length)"
    )
    parser.add_argument(
        "--fast-path",
        default="none",
        choices=["none", "mkldnn"],
        help="kernel path of the target and drafter, for AR and every algorithm alike (hf's drafter stays plain)",
    )
    parser.add_argument("--cost-repeats", type=int, default=3, help="repeats of each cost-model forward")
    parser.add_argument(
        "--keep-previous",
        action="store_true",
        help="keep the pairs of the existing output file that this run does not rerun (marked with their run)",
    )
    parser.add_argument("--modes", default="greedy,t1", help="greedy and/or t1 (temperature 1)")
    parser.add_argument("--prompts-per-task", type=int, default=2)
    parser.add_argument(
        "--t1-tasks", default="humaneval,summary", help="tasks run at temperature 1 (greedy runs every task)"
    )
    parser.add_argument(
        "--pair-prompts",
        default="",
        help="fewer prompts per task for some pairs, e.g. a=1 (a slow pair on a loaded machine)",
    )
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument(
        "--pair-max-new-tokens", default="", help="fewer new tokens for some pairs, e.g. a=16"
    )
    parser.add_argument("--num-draft-tokens", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved passes over every prompt")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--before", default=None, help="git revision whose per-token overhead to measure too")
    parser.add_argument("--out", default=None, help="output folder (default results/bench)")


def run(args: argparse.Namespace) -> int:

    import torch

    from effeval.bench.common import print_table, write_bench
    from effeval.errors import ConfigError

    for name, low in (
        ("--prompts-per-task", 1),
        ("--max-new-tokens", 1),
        ("--repeats", 1),
        ("--threads", 1),
        ("--cost-repeats", 1),
    ):
        if getattr(args, name[2:].replace("-", "_")) < low:
            raise ConfigError(f"{name}: must be >= {low}. Fix: pass a positive number")
    pairs = [p for p in args.pairs.split(",") if p]
    bad = [p for p in pairs if p not in PAIRS]
    if bad:
        raise ConfigError(f"--pairs: unknown {', '.join(bad)}. Fix: use some of {', '.join(PAIRS)}")
    known = set(ALGORITHMS) | {f"{a}:{ADAPTIVE}" for a in ALGORITHMS if a != "ar"}
    unknown = [a for a in args.algorithms.split(",") if a and a not in known]
    if unknown:
        raise ConfigError(
            f"--algorithms: unknown {', '.join(unknown)}. Fix: use some of {', '.join(sorted(known))}"
        )
    _parse_adaptive(args.adaptive)
    bad_tasks = [t for t in args.t1_tasks.split(",") if t and t not in ("humaneval", "summary")]
    if bad_tasks:
        raise ConfigError(f"--t1-tasks: unknown {', '.join(bad_tasks)}. Fix: use humaneval and/or summary")
    from effeval import zoo

    missing = [p for p in pairs if any(n.startswith("qwen2.5") and not zoo.is_built(n) for n in PAIRS[p])]
    if missing:
        raise ConfigError(
            f"--pairs: {', '.join(missing)} need the real-large zoo tier, which is not built. "
            "Fix: run `effeval zoo build --real-large` first, or drop those pairs"
        )
    previous = _previous_run(args.out) if args.keep_previous else None
    per_pair = _per_pair(args.pair_prompts, "--pair-prompts", pairs, args.prompts_per_task)
    new_tokens = _per_pair(args.pair_max_new_tokens, "--pair-max-new-tokens", pairs, args.max_new_tokens)
    torch.set_num_threads(args.threads)
    prompts = task_prompts(args.prompts_per_task)
    results, before = [], []

    def payload(complete: bool) -> dict:
        kept = [p for p in (previous or {}).get("pairs", []) if p["pair"] not in pairs]
        return {
            "settings": {
                "pairs": {p: {"target": PAIRS[p][0], "drafter": PAIRS[p][1]} for p in pairs},
                "prompts_per_task": per_pair,
                "tasks": {
                    "humaneval": "first problems",
                    "summary": "one-sentence summary of the shortest of the first 20 held-out prose passages (>= 100 words)",
                },
                "max_new_tokens": new_tokens,
                "t1_tasks": args.t1_tasks,
                "num_draft_tokens": args.num_draft_tokens,
                "adaptive": _parse_adaptive(args.adaptive),
                "fast_path": args.fast_path,
                "repeats": args.repeats,
                "torch_threads": args.threads,
                "timing": "every algorithm decodes every prompt in every repeat, order rotating per repeat; "
                "speedups are ratios of time per token, with a standard error over (prompt, repeat) units",
                "overhead": "wall time minus time inside the target's and drafter's forward passes, "
                "per new token and per verification step",
                "cost_model": "per pair: target forward of n new tokens and drafter forward of 1 token after "
                "the first prompt as KV-cached context (median of --cost-repeats), in target steps; "
                "ideal = tokens per round / (drafter passes per round * drafter/step + verify(rows)/step); "
                "measured/ideal uses the decode speedup (prefill, the first forward of each model, removed)",
                "complete": complete,
                "argv": sys.argv,
            },
            # a kept pair names the run it came from; that run's settings are in previous_runs
            "pairs": results + [{"from_run": previous["created"], **p} for p in kept],
            "previous_runs": _previous_runs(previous, kept),
            "overhead_before": before,
            "verify_cost": _verify_cost(args.out),
        }

    for pair in pairs:
        texts = {task: texts[: per_pair[pair]] for task, texts in prompts.items()}
        results.append(bench_pair(pair, args, texts, new_tokens[pair]))
        # written after every pair: a run cut short keeps the pairs it finished
        path = write_bench("hetero-spec", payload(complete=False), args.out)
    if args.before:
        for pair in pairs:
            logger.info("hetero-spec bench: overhead at %s on pair %s", args.before, pair)
            before.append(overhead_before(args.before, pair, prompts["humaneval"], args))
    path = write_bench("hetero-spec", payload(complete=True), args.out)
    columns = [
        "pair",
        "mode",
        "task",
        "algorithm",
        "tokens_per_s",
        "speedup_vs_ar",
        "decode_speedup_vs_ar",
        "decode_speedup_vs_ar_stderr",
        "decode_speedup_vs_hf",
        "mean_accepted_length",
        "acceptance_rate",
        "cost_drafter_over_step",
        "cost_verify_over_step",
        "ideal_speedup",
        "measured_over_ideal",
        "measured_over_ideal_stderr",
        "prediction_layer_bound_speedup",
        "equal_to_ar",
        "failed",
    ]
    print_table([r for res in results for r in res["rows"]], columns)
    for res in results:
        c = res["cost_model"]
        print(
            f"{res['pair']}: target step {c['target_forward_ms']['1']:.1f} ms, drafter step "
            f"{c['drafter_step_ms']:.1f} ms ({c['drafter_over_step']:.2f} steps), verify/step "
            + ", ".join(f"{n}: {v:.2f}" for n, v in c["verify_over_step"].items())
        )
    for b in before:
        print(json.dumps(b))
    print(f"\nwrote {path}")
    return 0


main = bench_command("hetero-spec", __doc__, add_arguments, run)
