"""``python -m effeval.bench spellm``: SpeLLM's output layer vs the vocabulary projection.

1. Output layer alone, for V in {32000, 131072, 262144} x d in {1024, 4096}: projection
   (``x @ W^T`` + log-softmax over V) vs k=16 character heads (``x @ H^T`` + k log-softmaxes over
   258 symbols), a few tokens per call (decode-like), time per token and memory (weights +
   output activations) side by side.
2. End to end on the large-vocabulary zoo model (qwen-tekken, tekken 131k): prompt forward, then
   per-step forward + decode choice with the *same* input tokens for both (teacher-forced on
   held-out text), base HF model (body + lm_head + softmax + argmax) vs its SpeLLM (body + heads
   + exact best string + string -> tokens). Head weights do not change the cost, so the SpeLLM's
   heads are freshly initialised here.
3. Optional (``--distill-steps N``, default 300): distil mamba2-sp (trained zoo) at target temperatures 1, 0.5, 0 and record the
   top-1 teacher agreement before/after and the majority-token baseline.

4. ``--real SPELLM_DIR``: a distilled real SpeLLM (SmolLM2-135M) beside its base: agreement,
   held-out perplexity ratio, accuracy on real multiple-choice tasks through the stock lm_eval
   CLI, step time (``spellm_real.py``). Only this part runs; it writes results/bench/spellm-real.json.

Writes results/bench/spellm.json and prints the ratios. Runs single-threaded by default (``--threads``).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import tempfile
import time

from effeval.bench.common import bench_command

logger = logging.getLogger(__name__)

VOCABS = (32000, 131072, 262144)
HIDDENS = (1024, 4096)


def _mem_available_bytes() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 40


def output_layer(k: int, tokens: int, repeats: int) -> list[dict]:
    import torch

    from effeval.bench.common import time_call
    from effeval.methods.spellm.alphabet import NUM_SYMBOLS

    gen = torch.Generator().manual_seed(0)
    rows = []
    for d in HIDDENS:
        x = torch.randn(tokens, d, generator=gen)
        heads = torch.randn(k * NUM_SYMBOLS, d, generator=gen) * d**-0.5
        head_bias = torch.zeros(k * NUM_SYMBOLS)

        def run_heads(x=x, heads=heads, head_bias=head_bias):
            logits = torch.addmm(head_bias, x, heads.t()).view(tokens, k, NUM_SYMBOLS)
            return torch.log_softmax(logits, -1)

        t_heads = time_call(run_heads, repeats=repeats)
        for v in VOCABS:
            weight_bytes = v * d * 4
            row = {"vocab": v, "hidden": d, "k": k, "tokens_per_call": tokens}
            if weight_bytes * 1.5 > _mem_available_bytes():
                row["skipped"] = "not enough free memory for the fp32 projection"
                rows.append(row)
                continue
            w = torch.empty(v, d).normal_(0, d**-0.5, generator=gen)

            def run_proj(x=x, w=w):
                return torch.log_softmax(x @ w.t(), -1)

            t_proj = time_call(run_proj, repeats=repeats)
            del w, run_proj  # free the V x d weight before the next size
            row.update(
                projection_s_per_token=t_proj["median_s"] / tokens,
                heads_s_per_token=t_heads["median_s"] / tokens,
                heads_vs_projection_time=t_heads["median_s"] / t_proj["median_s"],
                projection_params=v * d,
                heads_params=k * NUM_SYMBOLS * (d + 1),
                heads_vs_projection_params=k * NUM_SYMBOLS * (d + 1) / (v * d),
                projection_memory_bytes=weight_bytes + 2 * tokens * v * 4,
                heads_memory_bytes=k * NUM_SYMBOLS * (d + 1) * 4 + 2 * tokens * k * NUM_SYMBOLS * 4,
                projection_flops_per_token=2 * d * v,
                heads_flops_per_token=2 * d * k * NUM_SYMBOLS,
            )
            row["heads_vs_projection_memory"] = row["heads_memory_bytes"] / row["projection_memory_bytes"]
            rows.append(row)
            logger.info(
                "output layer V=%d d=%d: heads/projection time %.4f", v, d, row["heads_vs_projection_time"]
            )
    return rows


def decode_loops(base, spellm, prompt: list[int], follow: list[int]):
    """Two callables that decode ``follow`` after ``prompt`` with a KV cache, teacher-forced so
    both do the same steps: the base (softmax + argmax over its projection) and the SpeLLM (the
    exact best string of its heads, mapped back to tokens): the per-step work each model does."""
    import torch

    from effeval.methods.spellm.heads import best_rows

    @torch.no_grad()
    def run_base():
        out = base(input_ids=torch.tensor([prompt]), use_cache=True)
        cache = out.cache
        for t in follow:
            torch.softmax(out.logits[:, -1].float(), -1).argmax(-1)  # the decode choice
            out = base(input_ids=torch.tensor([[t]]), cache=cache, use_cache=True)
            cache = out.cache

    @torch.no_grad()
    def run_spellm():
        lp, cache = spellm(torch.tensor([prompt]), use_cache=True)
        for t in follow:
            rows, _ = best_rows(lp[:, -1])  # the decode choice: exact best string
            spellm.codec.string_to_tokens(spellm.codec.row_to_string(rows[0].tolist()) or b"")
            lp, cache = spellm(torch.tensor([[t]]), cache=cache, use_cache=True)

    return run_base, run_spellm


def end_to_end(zoo_name: str, k: int, prompt_len: int, steps: int, repeats: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from effeval import zoo
    from effeval.bench.common import time_call
    from effeval.methods.spellm.model import SpeLLMForCausalLM
    from effeval.zoo.corpus import heldout_texts

    path = str(zoo.get(zoo_name))
    base = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(path)
    spellm = SpeLLMForCausalLM.from_base(path, k, seed=0).eval()
    ids = tok.encode(heldout_texts(1)[0], add_special_tokens=False)[: prompt_len + steps]
    prompt, follow = ids[:prompt_len], ids[prompt_len : prompt_len + steps]

    run_base, run_spellm = decode_loops(base, spellm, prompt, follow)
    t_base = time_call(run_base, repeats=repeats)
    t_spellm = time_call(run_spellm, repeats=repeats)
    facts = spellm.output_layer_facts()
    calls = len(follow) + 1
    return {
        "model": zoo_name,
        "vocab": facts["input_vocab_size"],
        "hidden": facts["hidden_size"],
        "k": k,
        "prompt_tokens": len(prompt),
        "decode_steps": len(follow),
        "base_s": t_base["median_s"],
        "spellm_s": t_spellm["median_s"],
        "base_s_per_step": t_base["median_s"] / calls,
        "spellm_s_per_step": t_spellm["median_s"] / calls,
        "spellm_vs_base_time": t_spellm["median_s"] / t_base["median_s"],
        "base_params": sum(p.numel() for p in base.parameters()),
        "spellm_params": facts["backbone_params"] + facts["head_params"],
        "head_params": facts["head_params"],
        "projection_params": facts["projection_params"],
        "note": "tiny body (hidden 64): the output layer dominates, so the saving is an upper bound for big bodies",
    }


def distill_check(steps: int, zoo_name: str = "mamba2-sp", temperatures=(1.0, 0.5, 0.0)) -> list[dict]:
    """Distil the trained zoo model once per target temperature: the agreement/fit trade-off."""
    from effeval import zoo
    from effeval.methods.spellm.distill import DistillConfig, distill
    from effeval.zoo.corpus import texts_for

    base = str(zoo.get(zoo_name, trained=True))
    out = []
    for temperature in temperatures:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            summary = distill(
                DistillConfig(
                    base=base,
                    out=os.path.join(tmp, "spellm"),
                    steps=steps,
                    eval_every=max(1, steps // 3),
                    save_every=steps,
                    resume=False,
                    target_temperature=temperature,
                    progress=False,
                ),
                *texts_for("python"),
            )
            wall = time.perf_counter() - start
        out.append(
            {
                "base": f"{zoo_name} (trained zoo)",
                "target_temperature": temperature,
                "steps": steps,
                "wall_s": wall,
                "initial": summary["initial"],
                "final": summary["final"],
                "loss_first": summary["losses"][0],
                "loss_last": summary["losses"][-1],
                "evals": summary["evals"],
            }
        )
        logger.info(
            "distill T=%s: agreement %.3f -> %.3f",
            temperature,
            summary["initial"]["top1_agreement"],
            summary["final"]["top1_agreement"],
        )
    return out


def _main_real(args) -> int:
    from effeval.bench.common import print_table, write_bench
    from effeval.bench.spellm_real import run_real
    from effeval.errors import ConfigError

    if not os.path.isdir(args.real):
        raise ConfigError(
            f"--real: {args.real!r} is not a directory. Fix: pass the --out of effeval spellm distill"
        )
    if args.tag and not re.fullmatch(r"[A-Za-z0-9_-]+", args.tag):
        raise ConfigError(f"--tag: {args.tag!r} is not a plain name. Fix: letters, digits, '-' or '_' only")
    tasks = [t for t in args.tasks.split(",") if t.strip()]
    real = run_real(args.real, tasks, args.limit, args.ppl_tokens, args.repeats)
    real["threads"] = args.threads
    # results/bench/spellm-real.json, or spellm-real-TAG.json for a variant recipe
    write_bench("spellm-real" + (f"-{args.tag}" if args.tag else ""), real)
    ppl, st = real["perplexity"], real["step_time"]
    rows = [
        {
            "measure": "top-1 agreement (majority-token baseline)",
            "base": real["agreement"]["majority_token_baseline"],
            "spellm": real["agreement"]["top1_agreement"],
        },
        {
            "measure": "held-out perplexity (vocab)",
            "base": ppl["base_ppl"],
            "spellm": ppl["vocab"]["spellm_ppl"],
        },
        {
            "measure": "held-out 'perplexity' (padded)",
            "base": ppl["base_ppl"],
            "spellm": ppl["padded"]["spellm_ppl"],
        },
        {
            "measure": "step time s (median)",
            "base": st["base_s_per_step_median"],
            "spellm": st["spellm_s_per_step_median"],
        },
    ]
    for task, acc in (real.get("tasks") or {}).items():
        for scoring in ("padded", "vocab"):
            rows.append(
                {
                    "measure": f"{task} acc (n={acc['n']}, spellm scoring={scoring})",
                    "base": acc["base_acc"],
                    "spellm": acc.get(f"spellm_{scoring}_acc"),
                }
            )
    print_table(rows, ["measure", "base", "spellm"])
    print(
        f"perplexity ratio (vocab) {ppl['vocab']['ppl_ratio']:.3f} (95% CI {ppl['vocab']['ppl_ratio_ci95']}); "
        f"step time ratio {st['spellm_vs_base_time_mean']:.3f} +- {st['spellm_vs_base_time_stderr']}"
    )
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=4, help="tokens per output-layer call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prompt", type=int, default=64, help="prompt tokens (end to end)")
    parser.add_argument("--steps", type=int, default=32, help="decode steps (end to end)")
    parser.add_argument("--distill-steps", type=int, default=300, help="0 skips the distillation check")
    parser.add_argument("--zoo-model", default="qwen-tekken")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a shared machine, multi-threaded small ops mostly wait "
        "for descheduled threads, which buries the output-layer difference in noise)",
    )
    parser.add_argument(
        "--real", default=None, help="a SpeLLM directory distilled from a real model (part 4 only)"
    )
    parser.add_argument(
        "--tag", default="", help="--real: write results/bench/spellm-real-TAG.json (a variant recipe)"
    )
    parser.add_argument(
        "--tasks",
        default=",".join(("effeval_real_bigbench_sports_understanding", "effeval_real_strategyqa")),
        help="--real: lm-eval multiple-choice tasks (comma-separated; empty skips)",
    )
    parser.add_argument("--limit", type=int, default=40, help="--real: documents per task")
    parser.add_argument(
        "--qwen",
        action="store_true",
        help="Qwen2.5-Coder-0.5B (real-large tier): added to results/bench/spellm.json under its name",
    )
    parser.add_argument("--qwen-distill-steps", type=int, default=150, help="--qwen: head distillation steps")
    parser.add_argument(
        "--qwen-pool", type=int, default=1024, help="--qwen: positions with teacher targets (computed once)"
    )
    parser.add_argument(
        "--qwen-distill-budget-s", type=float, default=300.0, help="--qwen: the CPU budget stated in the JSON"
    )
    parser.add_argument("--qwen-mc-questions", type=int, default=40, help="--qwen: multiple-choice questions")
    parser.add_argument(
        "--qwen-humaneval",
        type=int,
        default=20,
        help="--qwen: HumanEval problems generated by SpeLLM (0: none)",
    )
    parser.add_argument("--ppl-tokens", type=int, default=1024, help="--real: held-out tokens scored")


def run(args: argparse.Namespace) -> int:
    import torch

    from effeval.bench.common import print_table, write_bench

    torch.set_num_threads(max(1, args.threads))
    if args.real:
        return _main_real(args)
    if args.qwen:
        from effeval.bench.entries import write_bench_entry
        from effeval.bench.spellm_real import QWEN_ZOO, run_qwen

        result = run_qwen(args)
        path = write_bench_entry("spellm", QWEN_ZOO, result)
        q = result["quality"]
        print_table(
            [{"model": m, **a, "answers": q["answer_distribution"][m]} for m, a in q["accuracy"].items()],
            ["model", "accuracy", "stderr", "answers"],
        )
        print(f"wrote {path}")
        return 0
    from effeval.methods.spellm.alphabet import check_k

    check_k(args.k)
    layer = output_layer(args.k, args.tokens, args.repeats)
    e2e = end_to_end(args.zoo_model, args.k, args.prompt, args.steps, args.repeats)
    payload = {"output_layer": layer, "end_to_end": e2e}
    if args.distill_steps > 0:
        payload["distill"] = distill_check(args.distill_steps)
    at_131k = [r for r in layer if r["vocab"] == 131072 and "heads_vs_projection_time" in r]
    payload["summary"] = {
        "heads_vs_projection_time_at_131k": {
            str(r["hidden"]): r["heads_vs_projection_time"] for r in at_131k
        },
        "heads_vs_projection_params_at_131k": {
            str(r["hidden"]): r["heads_vs_projection_params"] for r in at_131k
        },
        "end_to_end_spellm_vs_base_time": e2e["spellm_vs_base_time"],
    }
    write_bench("spellm", payload)
    print_table(
        [{**r, "V": r["vocab"], "d": r["hidden"]} for r in layer],
        [
            "V",
            "d",
            "projection_s_per_token",
            "heads_s_per_token",
            "heads_vs_projection_time",
            "heads_vs_projection_params",
            "heads_vs_projection_memory",
        ],
    )
    print()
    print_table([e2e], ["model", "vocab", "base_s_per_step", "spellm_s_per_step", "spellm_vs_base_time"])
    if "distill" in payload:
        print()
        print_table(
            [
                {
                    "T": d["target_temperature"],
                    "steps": d["steps"],
                    "agree_before": d["initial"]["top1_agreement"],
                    "agree_after": d["final"]["top1_agreement"],
                    "majority_baseline": d["final"]["majority_baseline"],
                    "heads_kl": d["final"]["heads_kl"],
                    "vocab_kl": d["final"]["vocab_kl"],
                }
                for d in payload["distill"]
            ],
            ["T", "steps", "agree_before", "agree_after", "majority_baseline", "heads_kl", "vocab_kl"],
        )
    return 0


main = bench_command("spellm", __doc__, add_arguments, run)
