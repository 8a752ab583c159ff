"""``python -m effeval.bench spellm --real SPELLM_DIR``: a distilled real SpeLLM beside its base.

SPELLM_DIR is the output of ``effeval spellm distill --base $(effeval zoo path smollm2-135m)
--data real-prose ...``; its base model is read from its ``effeval_spellm.json``. Side by side, in
one run, one thread:

- **agreement**: top-1 agreement with the teacher on held-out prose, from the distillation
  summary (the most-frequent-token baseline beside it);
- **perplexity ratio**: SpeLLM / base per-token perplexity on held-out real prose (the last 20%
  of the story "In the Year 2889", never trained on), same windows and tokens for both; the
  SpeLLM side is its ``vocab`` distribution (string scores renormalised over the base's
  vocabulary, so both are distributions over the same events); the raw ``padded`` string score
  is reported beside it as an upper bound. 95% CI from the per-window log-ratios;
- **task accuracy**: the stock ``lm_eval`` CLI (``--model hf`` vs ``--model effeval-spellm``) on
  real multiple-choice tasks with ``--limit``;
- **step time**: prompt forward, then decode steps on the same input tokens, base (body + vocab
  projection + argmax) vs SpeLLM (body + heads + exact best string + string -> tokens).
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_TASKS = ("effeval_real_bigbench_sports_understanding", "effeval_real_strategyqa")


def _ratio_stats(spellm_nll: list[float], base_nll: list[float], counts: list[int]) -> dict:
    """Per-token perplexity ratio over all windows, and a 95% CI from the per-window log-ratios."""
    n_tok = sum(counts)
    log_ratios = [(s - b) / c for s, b, c in zip(spellm_nll, base_nll, counts)]
    mean = sum(log_ratios) / len(log_ratios)
    se = (
        (sum((x - mean) ** 2 for x in log_ratios) / (len(log_ratios) - 1) / len(log_ratios)) ** 0.5
        if len(log_ratios) > 1
        else None
    )
    return {
        "spellm_ppl": math.exp(sum(spellm_nll) / n_tok),
        "ppl_ratio": math.exp((sum(spellm_nll) - sum(base_nll)) / n_tok),
        "log_ppl_ratio_per_window_mean": mean,
        "log_ppl_ratio_per_window_stderr": se,
        "ppl_ratio_ci95": [math.exp(mean - 1.96 * se), math.exp(mean + 1.96 * se)]
        if se is not None
        else None,
    }


def heldout_ppl(spellm, base, tok, text: str, window: int, max_tokens: int) -> dict:
    """Per-token perplexity of base and SpeLLM on the same windows of ``text``; ratio and CI.

    ``vocab`` (the ratio to read): the SpeLLM's next-token distribution over the base model's
    vocabulary (padded scores renormalised over every token's row; sums to 1 like the base's
    softmax). ``padded``: the raw string score, which leaves the mass of non-token strings
    unassigned, so its "perplexity" is not one of a distribution over tokens and only bounds the
    vocab one from above."""
    import torch

    from effeval.methods.spellm.model import ScoreItem

    ids = tok.encode(text, add_special_tokens=False)[:max_tokens]
    windows = [ids[i : i + window] for i in range(0, len(ids) - 1, window) if len(ids[i : i + window]) > 1]
    base_nll, counts = [], []
    spellm_nll = {"vocab": [], "padded": []}
    for w in windows:
        with torch.no_grad():
            logits = base(input_ids=torch.tensor([w])).logits[0, :-1].float()
        lp = torch.log_softmax(logits, -1).gather(-1, torch.tensor(w[1:]).unsqueeze(-1)).sum().item()
        base_nll.append(-lp)
        for mode, out in spellm_nll.items():
            item = ScoreItem([w[0]], spellm.steps_for(w[1:], mode))
            ((s_lp, _),) = spellm.score([item], max_length=window + 64, mode=mode)
            out.append(-s_lp)
        counts.append(len(w) - 1)
    n_tok = sum(counts)
    return {
        "tokens": n_tok,
        "windows": len(windows),
        "window_tokens": window,
        "base_ppl": math.exp(sum(base_nll) / n_tok),
        "vocab": _ratio_stats(spellm_nll["vocab"], base_nll, counts),
        "padded": _ratio_stats(spellm_nll["padded"], base_nll, counts),
        "note": "vocab = SpeLLM scores renormalised over the input vocabulary (a distribution over the "
        "same next-token events as the base: the comparable ratio); padded = raw string score "
        "(not normalised over tokens: an upper bound, not comparable)",
    }


def step_time(spellm, base, tok, text: str, prompt_len: int, steps: int, repeats: int) -> dict:

    from effeval.bench.common import time_call
    from effeval.bench.spellm import decode_loops

    ids = tok.encode(text, add_special_tokens=False)[: prompt_len + steps]
    prompt, follow = ids[:prompt_len], ids[prompt_len : prompt_len + steps]

    run_base, run_spellm = decode_loops(base, spellm, prompt, follow)
    # interleaved repeats, so machine load hits both alike
    base_t, spellm_t = [], []
    for _ in range(repeats):
        base_t.append(time_call(run_base, repeats=1, warmup=0 if base_t else 1)["median_s"])
        spellm_t.append(time_call(run_spellm, repeats=1, warmup=0 if spellm_t else 1)["median_s"])
    ratios = [s / b for s, b in zip(spellm_t, base_t)]
    mean = sum(ratios) / len(ratios)
    se = (
        (sum((r - mean) ** 2 for r in ratios) / (len(ratios) - 1) / len(ratios)) ** 0.5
        if len(ratios) > 1
        else None
    )
    facts = spellm.output_layer_facts()
    return {
        "prompt_tokens": len(prompt),
        "decode_steps": len(follow),
        "repeats": repeats,
        "base_s": base_t,
        "spellm_s": spellm_t,
        "base_s_per_step_median": sorted(base_t)[len(base_t) // 2] / (len(follow) + 1),
        "spellm_s_per_step_median": sorted(spellm_t)[len(spellm_t) // 2] / (len(follow) + 1),
        "spellm_vs_base_time_mean": mean,
        "spellm_vs_base_time_stderr": se,
        "head_vs_projection_flops": facts["head_vs_projection_flops"],
        "head_params": facts["head_params"],
        "projection_params": facts["projection_params"],
        "backbone_params": facts["backbone_params"],
    }


def lm_eval_accuracy(
    model: str, model_args: str, tasks: list[str], limit: int, workdir: Path, label: str | None = None
) -> dict:
    """Run the stock lm_eval CLI; return {task: {acc, acc_stderr, n}} and its wall time."""
    out = workdir / (label or model.replace("/", "_"))
    cmd = [
        sys.executable,
        "-m",
        "lm_eval",
        "--model",
        model,
        "--model_args",
        model_args,
        "--tasks",
        ",".join(tasks),
        "--include_path",
        str(Path(__file__).resolve().parents[2] / "task_configs"),
        "--limit",
        str(limit),
        "--batch_size",
        "4",
        "--output_path",
        str(out),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"lm_eval failed ({model}): {proc.stderr[-2000:]}")
    files = sorted(out.rglob("results_*.json"))
    results = json.loads(files[-1].read_text())["results"]
    n = json.loads(files[-1].read_text()).get("n-samples", {})
    return {
        "command": " ".join(cmd[2:]),
        "wall_s": wall,
        "tasks": {
            t: {
                "acc": results[t].get("acc,none"),
                "acc_stderr": results[t].get("acc_stderr,none"),
                "n": (n.get(t) or {}).get("effective"),
            }
            for t in tasks
            if t in results
        },
    }


def run_real(
    spellm_dir: str,
    tasks: list[str],
    limit: int,
    ppl_tokens: int,
    repeats: int,
    scorings: tuple[str, ...] = ("padded", "vocab"),
) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from effeval.methods.spellm.model import CONFIG_NAME, SpeLLMForCausalLM
    from effeval.zoo.corpus import story_prose_split

    config = json.loads((Path(spellm_dir) / CONFIG_NAME).read_text())
    base_dir = config["base_model"]
    spellm = SpeLLMForCausalLM.from_pretrained(spellm_dir).eval()
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(base_dir)
    heldout = story_prose_split()[1][0]
    dist = config.get("distillation") or {}
    payload = {
        "spellm_dir_name": Path(spellm_dir).name,
        "base_model": Path(base_dir).name,
        "distillation": {
            "config": dist.get("config"),
            "steps_done": dist.get("steps_done"),
            "objective": dist.get("objective"),
            "initial": dist.get("initial"),
            "final": dist.get("final"),
            "wall_s": dist.get("wall_s"),
            "cpu_s": dist.get("cpu_s"),
        },
        "agreement": {
            "top1_agreement": (dist.get("final") or {}).get("top1_agreement"),
            "majority_token_baseline": (dist.get("final") or {}).get("majority_baseline"),
            "positions": (dist.get("final") or {}).get("positions"),
        },
    }
    logger.info("perplexity on held-out prose")
    payload["perplexity"] = heldout_ppl(spellm, base, tok, heldout, window=128, max_tokens=ppl_tokens)
    logger.info("step time")
    payload["step_time"] = step_time(spellm, base, tok, heldout, prompt_len=64, steps=32, repeats=repeats)
    if tasks and limit > 0:
        with tempfile.TemporaryDirectory() as tmp:
            logger.info("lm_eval: base")
            runs = {
                "base": lm_eval_accuracy(
                    "hf", f"pretrained={base_dir},dtype=float32", tasks, limit, Path(tmp)
                )
            }
            for scoring in scorings:
                logger.info("lm_eval: spellm, scoring=%s", scoring)
                runs[f"spellm_{scoring}"] = lm_eval_accuracy(
                    "effeval-spellm",
                    f"pretrained={spellm_dir},scoring={scoring}",
                    tasks,
                    limit,
                    Path(tmp),
                    label=f"spellm_{scoring}",
                )
        payload["tasks"] = {
            t: {
                **{
                    f"{name}_{key}": run["tasks"].get(t, {}).get(key)
                    for name, run in runs.items()
                    for key in ("acc", "acc_stderr")
                },
                "n": runs["base"]["tasks"].get(t, {}).get("n"),
            }
            for t in tasks
        }
        payload["lm_eval_commands"] = {name: run["command"] for name, run in runs.items()}
        payload["lm_eval_wall_s"] = {name: run["wall_s"] for name, run in runs.items()}
    return payload
