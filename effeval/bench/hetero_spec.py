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
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time

from effeval.bench.common import bench_command

logger = logging.getLogger(__name__)

PAIRS = {
    "a": ("gemma3-270m", "smollm2-135m"),
    "b": ("smollm2-135m", "smollm2-drafter-sp"),
    # random tiny zoo pair (seconds to build): the bench's own smoke test, not a speed claim
    "zoo": ("llama-sp", "qwen-tekken"),
}
ALGORITHMS = ["ar", "slem", "tli", "slrs", "hf"]
MODES = {"greedy": None, "t1": 1.0}
SUMMARY_PROMPT = "Summarize the following passage in one sentence.\n\n{passage}\n\nOne-sentence summary:"


def task_prompts(per_task: int) -> dict[str, list[str]]:
    from effeval import real_data

    humaneval = [row["prompt"] for row in real_data.humaneval_rows()[:per_task]]
    passages = sorted(real_data.prose_documents("heldout", words=100)[:20], key=len)[:per_task]
    summary = [SUMMARY_PROMPT.format(passage=p) for p in passages]
    return {"humaneval": humaneval, "summary": summary}


class ForwardClock:
    """Seconds spent inside the forward passes of some modules (top-level calls only)."""

    def __init__(self, modules):
        self.seconds = 0.0
        self._depth = 0
        self._start = 0.0
        self._hooks = []
        for m in modules:
            self._hooks.append(m.register_forward_pre_hook(self._pre))
            self._hooks.append(m.register_forward_hook(self._post))

    def _pre(self, *_):
        if self._depth == 0:
            self._start = time.perf_counter()
        self._depth += 1

    def _post(self, *_):
        self._depth -= 1
        if self._depth == 0:
            self.seconds += time.perf_counter() - self._start

    def remove(self):
        for h in self._hooks:
            h.remove()


def _config(t_tok, max_new: int, temperature):
    from effeval.methods.hetero_spec.common import SamplingConfig

    eos = (t_tok.eos_token_id,) if t_tok.eos_token_id is not None else ()
    if temperature is None:
        return SamplingConfig(max_new_tokens=max_new, eos_token_ids=eos)
    return SamplingConfig(do_sample=True, temperature=temperature, max_new_tokens=max_new, eos_token_ids=eos)


def _run_one(name, models, prompt_ids, config, k, seed):
    import torch

    from effeval.methods.hetero_spec import get_algorithm

    target, t_tok, drafter, d_tok, hf_drafter = models
    d = hf_drafter if name == "hf" else drafter
    clock = ForwardClock([target, d])
    try:
        res = get_algorithm(name)(
            target,
            t_tok,
            d,
            d_tok,
            prompt_ids,
            config,
            num_draft_tokens=k,
            generator=torch.Generator().manual_seed(seed),
        )
    finally:
        clock.remove()
    return res, clock.seconds


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


def bench_pair(pair: str, args, prompts: dict[str, list[str]], max_new: int) -> dict:
    import copy

    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from effeval import zoo

    t_name, d_name = PAIRS[pair]
    t_path, d_path = zoo.get(t_name), zoo.get(d_name)
    target = AutoModelForCausalLM.from_pretrained(t_path).eval()
    drafter = AutoModelForCausalLM.from_pretrained(d_path).eval()
    hf_drafter = copy.deepcopy(drafter)  # transformers rewrites its drafter in place
    t_tok, d_tok = AutoTokenizer.from_pretrained(t_path), AutoTokenizer.from_pretrained(d_path)
    models = (target, t_tok, drafter, d_tok, hf_drafter)
    algorithms = [a for a in args.algorithms.split(",") if a]
    rows = []
    for mode in args.modes.split(","):
        config = _config(t_tok, max_new, MODES[mode])
        for task, texts in prompts.items():
            ids = [t_tok(text)["input_ids"] for text in texts]
            # warm-up: first-call allocations, vocabulary tables; an algorithm that refuses the
            # pair (e.g. SLRS without every drafter byte in the target vocabulary) is reported
            warm = _config(t_tok, 4, MODES[mode])
            refused = {}
            for name in algorithms:
                try:
                    _run_one(name, models, ids[0][-64:], warm, args.num_draft_tokens, 0)
                except Exception as exc:
                    logger.warning("hetero-spec bench: %s refused: %s", name, exc)
                    refused[name] = f"{type(exc).__name__}: {exc}"
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
                    res, forward_s = _run_one(
                        name, models, ids[pi], config, args.num_draft_tokens, 1000 * rep + pi
                    )
                except Exception as exc:  # reported in the row, not fatal
                    logger.warning("hetero-spec bench: %s failed: %s", name, exc)
                    units[name].append({"error": f"{type(exc).__name__}: {exc}"})
                    continue
                s = res.stats
                units[name].append(
                    {
                        "prompt": pi,
                        "repeat": rep,
                        "tokens": res.token_ids,
                        "wall": s.wall_time_s,
                        "forward": forward_s,
                        "new": s.new_tokens,
                        "drafted": s.drafted,
                        "accepted": s.accepted,
                        "steps": len(s.accepted_lengths),
                        "target_calls": s.target_calls,
                        "drafter_calls": s.drafter_calls,
                        "fallbacks": s.extra.get("dp_budget_fallbacks", 0),
                    }
                )
            rows += _summarise(pair, mode, task, algorithms, units)
    return {
        "pair": pair,
        "target": t_name,
        "drafter": d_name,
        "target_vocab": len(t_tok),
        "drafter_vocab": len(d_tok),
        "rows": rows,
    }


def _summarise(pair, mode, task, algorithms, units) -> list[dict]:
    def key(u):
        return (u["prompt"], u["repeat"])

    ok = {n: {key(u): u for u in us if "error" not in u} for n, us in units.items()}
    ar, hf = ok.get("ar", {}), ok.get("hf", {})
    out = []
    for name in algorithms:
        us = ok[name]
        errors = [u["error"] for u in units[name] if "error" in u]
        row = {"pair": pair, "mode": mode, "task": task, "algorithm": name}
        if errors:
            row["errors"] = sorted(set(errors))
        if not us:
            out.append(row)
            continue
        vals = list(us.values())
        new = sum(u["new"] for u in vals)
        wall = sum(u["wall"] for u in vals)
        forward = sum(u["forward"] for u in vals)
        steps = sum(u["steps"] for u in vals)
        drafted = sum(u["drafted"] for u in vals)
        accepted = sum(u["accepted"] for u in vals)
        target_calls = sum(u["target_calls"] for u in vals)
        if name == "hf":  # transformers reports no counts: each target pass emits accepted + 1
            accepted, steps = max(0, new - target_calls), target_calls
        row.update(
            {
                "runs": len(vals),
                "new_tokens": new,
                "wall_time_s": wall,
                "tokens_per_s": new / wall if wall else None,
                "overhead_us_per_token": 1e6 * (wall - forward) / new if new else None,
                # per verification step (AR: per token): the algorithm's own work between passes
                "overhead_us_per_step": 1e6 * (wall - forward) / (steps or target_calls)
                if (steps or target_calls)
                else None,
                "forward_share": forward / wall if wall else None,
                "target_calls": target_calls,
                "drafter_calls": sum(u["drafter_calls"] for u in vals),
                "tokens_per_target_call": new / target_calls if target_calls else None,
                "acceptance_rate": accepted / drafted if drafted and name != "hf" else None,
                "mean_accepted_length": accepted / steps if steps and name != "ar" else None,
                "dp_budget_fallbacks": sum(u["fallbacks"] for u in vals) if name == "slrs" else None,
            }
        )
        for ref_name, ref in (("ar", ar), ("hf", hf)):
            shared = [k for k in us if k in ref]
            # speedup = reference wall / this wall, per (prompt, repeat) unit; tokens/s basis so
            # that units that stopped at different lengths (sampling) compare fairly
            num = [ref[k]["wall"] / max(ref[k]["new"], 1) for k in shared]
            den = [us[k]["wall"] / max(us[k]["new"], 1) for k in shared]
            ratio, err = _ratio_with_stderr(num, den)
            row[f"speedup_vs_{ref_name}"], row[f"speedup_vs_{ref_name}_stderr"] = ratio, err
            if ratio is not None and err is not None:  # normal approximation over the units
                row[f"speedup_vs_{ref_name}_ci95"] = [ratio - 1.96 * err, ratio + 1.96 * err]
        if mode == "greedy" and ar:
            shared = [k for k in us if k in ar]
            row["equal_to_ar"] = sum(us[k]["tokens"] == ar[k]["tokens"] for k in shared)
            row["compared"] = len(shared)
        out.append(row)
    return out


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
        help="pairs to run (a: Gemma<-SmolLM2, b: SmolLM2<-small SP, zoo: random tiny pair)",
    )
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--modes", default="greedy,t1", help="greedy and/or t1 (temperature 1)")
    parser.add_argument("--prompts-per-task", type=int, default=2)
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

    for name, low in (("--prompts-per-task", 1), ("--max-new-tokens", 1), ("--repeats", 1), ("--threads", 1)):
        if getattr(args, name[2:].replace("-", "_")) < low:
            raise ConfigError(f"{name}: must be >= {low}. Fix: pass a positive number")
    pairs = [p for p in args.pairs.split(",") if p]
    bad = [p for p in pairs if p not in PAIRS]
    if bad:
        raise ConfigError(f"--pairs: unknown {', '.join(bad)}. Fix: use a, b, zoo or a comma list")
    per_pair = _per_pair(args.pair_prompts, "--pair-prompts", pairs, args.prompts_per_task)
    new_tokens = _per_pair(args.pair_max_new_tokens, "--pair-max-new-tokens", pairs, args.max_new_tokens)
    torch.set_num_threads(args.threads)
    prompts = task_prompts(args.prompts_per_task)
    results, before = [], []

    def payload(complete: bool) -> dict:
        return {
            "settings": {
                "pairs": {p: {"target": PAIRS[p][0], "drafter": PAIRS[p][1]} for p in pairs},
                "prompts_per_task": per_pair,
                "tasks": {
                    "humaneval": "first problems",
                    "summary": "one-sentence summary of the shortest of the first 20 held-out prose passages (>= 100 words)",
                },
                "max_new_tokens": new_tokens,
                "num_draft_tokens": args.num_draft_tokens,
                "repeats": args.repeats,
                "torch_threads": args.threads,
                "timing": "every algorithm decodes every prompt in every repeat, order rotating per repeat; "
                "speedups are ratios of time per token, with a standard error over (prompt, repeat) units",
                "overhead": "wall time minus time inside the target's and drafter's forward passes, "
                "per new token and per verification step",
                "complete": complete,
                "argv": sys.argv,
            },
            "pairs": results,
            "overhead_before": before,
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
        "speedup_vs_ar_stderr",
        "speedup_vs_hf",
        "speedup_vs_hf_stderr",
        "mean_accepted_length",
        "acceptance_rate",
        "target_calls",
        "overhead_us_per_token",
        "overhead_us_per_step",
        "equal_to_ar",
    ]
    print_table([r for res in results for r in res["rows"] if "tokens_per_s" in r], columns)
    for b in before:
        print(json.dumps(b))
    print(f"\nwrote {path}")
    return 0


main = bench_command("hetero-spec", __doc__, add_arguments, run)
