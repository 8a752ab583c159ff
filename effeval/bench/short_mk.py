"""``python -m effeval.bench short-mk``: maj@k vs short-1@k vs short-3@k, side by side in one run.

Same model (the zoo's trained ``reasoner-sp``), same questions (held-out synthetic arithmetic),
same k and seed. For every question the three strategies run back to back (so machine load hits
them alike); per strategy we record thinking tokens (all chains, incl. aborted), thinking tokens of
the finished chains, total generated tokens, forward passes, wall time and accuracy, and report
ratios to maj@k. The majority run's complete chains also feed the pool analysis (every m <= k
without generating again), stored in the same JSON. -> results/bench/short-mk.json
"""

from __future__ import annotations

import argparse
import logging
import time

logger = logging.getLogger(__name__)

STRATEGIES = (("majority", 1, "maj@k"), ("short", 1, "short-1@k"), ("short", 3, "short-3@k"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m effeval.bench short-mk", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--questions", type=int, default=40, help="held-out questions (default 40)")
    parser.add_argument("--k", type=int, default=8, help="chains per question (default 8)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--max-think-tokens", type=int, default=160)
    parser.add_argument("--answer-tokens", type=int, default=12)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a busy 2-core machine 2 threads ran ~14x slower)",
    )
    parser.add_argument("--untrained", action="store_true", help="use the random reasoner (mechanics only)")
    parser.add_argument("--out", default=None, help="output folder (default results/bench)")
    args = parser.parse_args(argv)

    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from effeval import zoo
    from effeval.bench.common import print_table, write_bench
    from effeval.methods.short_mk.answers import is_correct
    from effeval.methods.short_mk.hf_backend import HFStepBackend
    from effeval.methods.short_mk.pool import analyze_pool, questions_from_results
    from effeval.methods.short_mk.sampler import SamplingConfig, sample_short_mk
    from effeval.zoo.reasoner import make_problems

    torch.set_num_threads(args.threads)
    path = zoo.get("reasoner-sp", trained=not args.untrained)
    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path)).eval()
    problems = make_problems(args.questions, seed=args.seed + 99)  # not the task twin's seed, not training's

    def decode(ids):
        return tok.decode(ids, skip_special_tokens=True)

    def encode(text):
        return tok.encode(text, add_special_tokens=False)

    totals = {
        label: {
            "thinking_tokens": 0,
            "thinking_tokens_finished": 0,
            "total_tokens": 0,
            "forward_passes": 0,
            "wall_time_s": 0.0,
            "correct": 0,
            "chains_finished": 0,
            "chains_aborted": 0,
        }
        for _, _, label in STRATEGIES
    }
    pool = []
    for qi, prob in enumerate(tqdm(problems, desc="short-mk bench", unit="question")):
        prompt = tok.encode(prob["question"])
        for strategy, m, label in STRATEGIES:
            cfg = SamplingConfig(
                k=args.k,
                m=m,
                strategy=strategy,
                temperature=args.temperature,
                top_p=args.top_p,
                max_think_tokens=args.max_think_tokens,
                answer_tokens=args.answer_tokens,
                seed=args.seed,
            )
            start = time.perf_counter()
            result = sample_short_mk(
                HFStepBackend(model), prompt, cfg, decode=decode, encode=encode, eos_ids=[tok.eos_token_id]
            )
            elapsed = time.perf_counter() - start
            eff = result.efficiency()
            t = totals[label]
            t["thinking_tokens"] += eff["thinking_tokens_all"]
            t["thinking_tokens_finished"] += eff["thinking_tokens_finished"]
            t["total_tokens"] += eff["total_generated_tokens"]
            t["forward_passes"] += eff["forward_passes"]
            t["wall_time_s"] += elapsed
            t["chains_finished"] += eff["chains_finished"]
            t["chains_aborted"] += eff["chains_aborted"]
            t["correct"] += int(is_correct(result.vote.answer, prob["answer"]))
            if strategy == "majority":
                pool.append((qi, prob["answer"], result.chains))
    n = len(problems)
    base = totals["maj@k"]
    rows = []
    for _, _, label in STRATEGIES:
        t = totals[label]
        rows.append(
            {
                "strategy": label,
                "accuracy": t["correct"] / n,
                "thinking_tokens": t["thinking_tokens"],
                "thinking_tokens_finished": t["thinking_tokens_finished"],
                "total_tokens": t["total_tokens"],
                "forward_passes": t["forward_passes"],
                "wall_time_s": round(t["wall_time_s"], 3),
                "chains_finished": t["chains_finished"],
                "chains_aborted": t["chains_aborted"],
                "thinking_tokens_ratio": t["thinking_tokens"] / base["thinking_tokens"],
                "total_tokens_ratio": t["total_tokens"] / base["total_tokens"],
                "wall_time_ratio": t["wall_time_s"] / base["wall_time_s"],
                "forward_passes_ratio": t["forward_passes"] / base["forward_passes"],
                "accuracy_minus_majority": (t["correct"] - base["correct"]) / n,
            }
        )
    print_table(
        rows,
        [
            "strategy",
            "accuracy",
            "thinking_tokens",
            "total_tokens",
            "wall_time_s",
            "thinking_tokens_ratio",
            "total_tokens_ratio",
            "wall_time_ratio",
        ],
    )
    analysis = analyze_pool(questions_from_results(pool), seed=args.seed)
    payload = {
        "description": "maj@k vs short-1@k vs short-3@k on the same model, questions, k and seed; ratios are to maj@k",
        "model": {"zoo": "reasoner-sp", "trained": not args.untrained, "path": str(path)},
        "settings": {
            "questions": n,
            "k": args.k,
            "seed": args.seed,
            "temperature": args.temperature,
            "top_p": args.top_p,
            "max_think_tokens": args.max_think_tokens,
            "answer_tokens": args.answer_tokens,
            "answer_phase": "continue",
            "threads": args.threads,
        },
        "results": rows,
        "pool_analysis_of_majority_run": analysis,
    }
    path_out = write_bench("short-mk", payload, out_dir=args.out)
    print(f"\nwrote {path_out}")
    return 0
