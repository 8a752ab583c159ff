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
    from effeval.bench.common import lm_eval_command, lm_eval_env

    out = workdir / (label or model.replace("/", "_"))
    cmd = lm_eval_command(model, model_args, ",".join(tasks), limit, out, ("--batch_size", "4"))
    env = lm_eval_env(1)
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


# ------------------------------------------------------------------------------ Qwen2.5-Coder-0.5B

QWEN_ZOO = "qwen2.5-coder-0.5b"
MC_LETTERS = "ABCD"


def gsm_multiple_choice(n: int, seed: int = 2026) -> list[dict]:
    """A four-way multiple-choice task built from GSM-symbolic (reasoning-gym, always installed):
    the question, then four numbers - its answer and the answers of three other questions of the
    same draw - in a seeded order; the model is scored on the letter's continuation. Chance = 0.25.
    The distractors are real answers of similar problems (not off-by-one edits), so the task asks
    whether the model relates the numbers to the question, without chain-of-thought."""
    import random

    from effeval.bench.short_mk_real import gsm_symbolic

    rows = gsm_symbolic(n + 3)
    rng = random.Random(seed)
    out = []
    for i, row in enumerate(rows[:n]):
        others = [r["answer"] for j, r in enumerate(rows) if j != i and r["answer"] != row["answer"]]
        options = [row["answer"], *rng.sample(sorted(set(others)), 3)]
        rng.shuffle(options)
        lines = [f"({MC_LETTERS[j]}) {opt}" for j, opt in enumerate(options)]
        out.append(
            {
                "id": row["id"],
                "context": f"Question: {row['question']}\n" + "\n".join(lines) + "\nAnswer: (",
                "answer": MC_LETTERS[options.index(row["answer"])],
            }
        )
    return out


def letter_token_ids(tok) -> list[list[int]]:
    """The token ids of the option letters A-D, each of which must be one token."""
    letter_ids = [tok.encode(x, add_special_tokens=False) for x in MC_LETTERS]
    if any(len(ids) != 1 for ids in letter_ids):
        raise RuntimeError("each option letter must be one token")
    return letter_ids


def mc_picks(model, tok, items: list[dict]) -> list[str]:
    """The letter a plain causal LM rates highest after each item's context (one forward each)."""
    import torch
    from tqdm.auto import tqdm

    letter_ids = letter_token_ids(tok)
    picks = []
    with torch.no_grad():
        for item in tqdm(items, desc="multiple choice", unit="item", leave=False):
            ctx = torch.tensor([tok.encode(item["context"], add_special_tokens=False)])
            logits = model(input_ids=ctx).logits[0, -1]
            picks.append(MC_LETTERS[int(torch.argmax(logits[[ids[0] for ids in letter_ids]]))])
    return picks


def accuracy_ci(values: list[float]) -> dict:
    n = len(values)
    mean = sum(values) / n
    se = (mean * (1 - mean) / (n - 1)) ** 0.5 if n > 1 else None
    return {
        "accuracy": mean,
        "stderr": se,
        "ci95": [mean - 1.96 * se, mean + 1.96 * se] if se is not None else None,
    }


def option_scores(spellm, base, context: list[int], options: list[int]) -> dict:
    """Log-score of each one-token option after ``context``: the base's logit (its softmax shares
    the normaliser) and SpeLLM's ``vocab`` and ``padded`` scores. Every option is one step after
    the same context, so one forward per model scores all of them (``SpeLLMForCausalLM.score``
    would run the shared context once per option; the test checks the two agree)."""
    import torch

    from effeval.methods.spellm.heads import string_logprob, vocab_logprob

    rows = torch.tensor([spellm.codec.token_row(t) for t in options])
    ctx = torch.tensor([context])
    with torch.no_grad():
        logits = base(input_ids=ctx).logits[0, -1].float()
        last = spellm(ctx)[0][0, -1].float().expand(len(rows), -1, -1)  # [options, k, |C|]
        return {
            "base": [float(logits[t]) for t in options],
            "spellm_vocab": vocab_logprob(last, rows, spellm.codec.rows()).tolist(),
            "spellm_padded": string_logprob(last, rows, "padded").tolist(),
        }


def mc_quality(spellm, base, tok, items: list[dict]) -> dict:
    """Base and SpeLLM (vocab and padded scoring) pick the letter with the highest log-probability;
    accuracy per model, paired differences with 95% CIs, and each model's answer distribution (a
    model stuck on one letter would show a constant answer, not quality)."""
    import collections

    from effeval.bench.common import paired_difference

    letter_ids = letter_token_ids(tok)
    picks = {"base": [], "spellm_vocab": [], "spellm_padded": []}
    for item in items:
        ctx = tok.encode(item["context"], add_special_tokens=False)
        scores = option_scores(spellm, base, ctx, [ids[0] for ids in letter_ids])
        for name, sc in scores.items():
            picks[name].append(MC_LETTERS[max(range(4), key=sc.__getitem__)])
    gold = [x["answer"] for x in items]
    correct = {m: [float(p == g) for p, g in zip(ps, gold)] for m, ps in picks.items()}
    return {
        "n": len(items),
        "chance": 0.25,
        "accuracy": {m: accuracy_ci(c) for m, c in correct.items()},
        "spellm_minus_base": {
            m: paired_difference(correct[m], correct["base"]) for m in ("spellm_vocab", "spellm_padded")
        },
        "answer_distribution": {m: dict(sorted(collections.Counter(ps).items())) for m, ps in picks.items()},
        "gold_distribution": dict(sorted(collections.Counter(gold).items())),
        "agreement_with_base": {
            m: sum(a == b for a, b in zip(picks[m], picks["base"])) / len(items)
            for m in ("spellm_vocab", "spellm_padded")
        },
    }


def humaneval_slice(spellm_dir: str, limit: int, workdir: Path) -> dict:
    """pass@1 of the SpeLLM model on the first ``limit`` HumanEval problems through the stock
    lm_eval CLI (greedy, the guarded runner), paired per problem with the base model's recorded
    greedy run of the same task (results/bench/humaneval-large.json, ``--model hf``)."""
    from effeval.bench.humaneval_large import TASK, lm_eval_finish, lm_eval_start, recorded_pairing, wilson

    logger.info("HumanEval slice (%d problems): SpeLLM through lm_eval", limit)
    run = lm_eval_finish(
        lm_eval_start("effeval-spellm", f"pretrained={spellm_dir}", limit, workdir / "he", 1)
    )
    out: dict = {"task": TASK, "problems": limit, "command": run["command"], "status": run["status"]}
    if run["status"] != "ok":
        return out
    passed = {s["task_id"]: s["passed"] for s in run["samples"].values()}
    out.update(
        spellm_pass1=wilson(sum(passed.values()), len(passed)),
        spellm_wall_s=run["wall_s"],
        completions={s["task_id"]: s["completion"] for s in run["samples"].values()},
        efficiency=run["efficiency"],
    )
    pairing = recorded_pairing(QWEN_ZOO, passed)
    if pairing is None:
        out["base"] = "not recorded for these problems: run python -m effeval.bench humaneval-large first"
        return out
    out["base_pass1"], out["spellm_minus_base"] = pairing
    out["base_source"] = "results/bench/humaneval-large.json, --model hf (same task, greedy)"
    return out


def head_vs_projection_time(spellm, base, tokens: int, repeats: int) -> dict:
    """The output layer alone on ``tokens`` hidden states: the base's 151,936-row projection vs
    SpeLLM's k heads (median wall time, one thread)."""
    import torch

    from effeval.bench.common import time_call

    hidden = torch.randn(1, tokens, base.config.hidden_size)
    proj = base.get_output_embeddings()
    with torch.no_grad():
        t_proj = time_call(lambda: proj(hidden), repeats=repeats)["median_s"]
        t_heads = time_call(lambda: spellm.heads(hidden), repeats=repeats)["median_s"]
    return {
        "tokens": tokens,
        "projection_s": t_proj,
        "heads_s": t_heads,
        "heads_vs_projection_time": t_heads / t_proj,
    }


def run_qwen(args) -> dict:
    """SpeLLM on Qwen2.5-Coder-0.5B-Instruct: output-layer cost, decode step time, heads distilled
    within a CPU budget, multiple-choice quality with paired CIs, answer distributions, and
    characters vs bytes on this vocabulary."""
    import torch

    from effeval import zoo
    from effeval.methods.spellm.alphabet import CharCodec
    from effeval.methods.spellm.distill import DistillConfig, distill
    from effeval.methods.spellm.model import SpeLLMForCausalLM, load_causal_lm
    from effeval.zoo.corpus import story_prose_split

    start = time.perf_counter()
    path = str(zoo.get(QWEN_ZOO))
    base, tok = load_causal_lm(path)
    base.eval()
    codec = CharCodec(tok, args.k)
    out: dict = {
        "model": {
            "zoo": QWEN_ZOO,
            "upstream": "Qwen/Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, dequantised to float32)",
            "params": sum(p.numel() for p in base.parameters()),
            "output_projection": list(base.get_output_embeddings().weight.shape),
            "tied_embeddings": bool(base.config.tie_word_embeddings),
        },
        "k": args.k,
        "coverage": codec.coverage(),
        "characters_vs_bytes": codec.characters_vs_bytes(),
    }
    out["model"]["output_projection_share"] = (
        base.get_output_embeddings().weight.numel() / out["model"]["params"]
    )
    # the SmolLM2 recipe's data (--data real-prose): pydoc's topic help + the story's first 80%;
    # the story's last 20% is held out for the agreement, perplexity and step-time text
    train, heldout = story_prose_split()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = DistillConfig(
            base=path,
            out=os.path.join(tmp, "spellm"),
            k=args.k,
            steps=args.qwen_distill_steps,
            batch_size=8,
            seqlen=64,
            pool=args.qwen_pool,
            eval_every=args.qwen_distill_steps,
            eval_positions=256,
            save_every=args.qwen_distill_steps,
            resume=False,
            progress=True,
        )
        wall0, cpu0 = time.perf_counter(), time.process_time()
        summary = distill(cfg, train, heldout)
        out["distillation"] = {
            "config": {
                "tune": "heads (backbone frozen)",
                "steps": cfg.steps,
                "batch_size": cfg.batch_size,
                "seqlen": cfg.seqlen,
                "pool_positions": cfg.pool,
                "target_temperature": cfg.target_temperature,
                "data": "real-prose (zoo.corpus.story_prose_split): pydoc topics + the first 80% of the story; "
                "the story's last 20% held out",
                "max_blocks": cfg.max_blocks,
            },
            "cpu_budget_s": args.qwen_distill_budget_s,
            "wall_s": round(time.perf_counter() - wall0, 1),
            "cpu_s": round(time.process_time() - cpu0, 1),
            "initial": summary["initial"],
            "final": summary["final"],
            "lora": "not run (CPU budget); `effeval spellm distill --tune lora` is the option",
        }
        spellm = SpeLLMForCausalLM.from_pretrained(cfg.out).eval()
        if args.qwen_humaneval > 0:
            out["humaneval"] = humaneval_slice(cfg.out, args.qwen_humaneval, Path(tmp))
    facts = spellm.output_layer_facts()
    out["output_layer"] = {
        **facts,
        **head_vs_projection_time(spellm, base, tokens=args.tokens, repeats=args.repeats),
    }
    out["step_time"] = step_time(spellm, base, tok, heldout[0], args.prompt, args.steps, args.repeats)
    out["perplexity"] = heldout_ppl(spellm, base, tok, heldout[0], 128, args.ppl_tokens)
    items = gsm_multiple_choice(args.qwen_mc_questions)
    out["quality"] = {
        "task": "gsm_symbolic_mc: four-way multiple choice built from reasoning-gym GSM-symbolic (seed "
        "2026); distractors = answers of other questions of the same draw; scored on the letter",
        **mc_quality(spellm, base, tok, items),
    }
    out["wall_s"] = round(time.perf_counter() - start, 1)
    out["threads"] = torch.get_num_threads()
    return out
