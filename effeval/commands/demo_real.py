"""``make demo`` on the real tier: SmolLM2-135M and Gemma 3 270M on small slices of real data.

Each step takes a ``DemoContext`` and returns the effeval JSON paths it wrote (see
``effeval.demo``). Slices are sized so the whole demo stays within about 10 minutes on two idle
cores once the real tier is converted; every number is what the models honestly score.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

TARGET = "smollm2-135m"
# model_args are comma-separated: the pattern has none
FINAL_ANSWER_REGEX = r"[Ff]inal [Aa]nswer:? *\$?-?[0-9][0-9.]*[^0-9.]"
PAIR_TARGET = "gemma3-270m"  # hetero-spec: Gemma 3 (262k vocab) verifies SmolLM2's (49k) drafts


def real_tier_problem() -> str | None:
    """Why the real tier cannot run here (the one-line install error), or None when it can."""
    from effeval.errors import ConfigError
    from effeval.zoo import real

    try:
        for name in real.REAL_MODELS:
            real.check_installed(name)
    except ConfigError as err:
        return str(err)
    return None


def zoo(ctx) -> list[Path]:
    from effeval import zoo as zoo_module

    for name, path in zoo_module.build_all(real=True).items():
        print(f"    zoo {name}: {path}", flush=True)
    return []


def _limit(ctx, default: int) -> list[str]:
    return [] if ctx.limit else ["--limit", str(default)]


# ---- the target alone (lm-eval's own hf model), one lm_eval run over real tasks; HumanEval (which
# executes the model's code) only when the user opted in
HF_TASKS = "effeval_real_prose_ppl,effeval_real_gsm_symbolic"
CODE_TASK = "effeval_real_humaneval"


def hf_baseline(ctx) -> list[Path]:
    target = ctx.zoo(TARGET)
    tasks = HF_TASKS + ("," + CODE_TASK if ctx.run_generated_code else "")
    if not ctx.run_generated_code:
        ctx.skipped_code(CODE_TASK)
    return [
        ctx.run_lm_eval(
            "hf-smollm2",
            "hf",
            f"pretrained={target},dtype=float32",
            tasks,
            [*_limit(ctx, 6), *ctx.code_flags(), "--gen_kwargs", "max_gen_toks=128"],
        )
    ]


# ---- hetero-spec: lossless speculative decoding across vocabularies. With the opt-in real-large
# tier built, the target is Qwen2.5-Coder-1.5B (the pair of issue 22) and the step also measures
# the pair's cost model, so the row says how far the run is from what this machine allows.
LARGE_TARGET = "qwen2.5-coder-1.5b"
SPEC_DRAFT_TOKENS = 4


def hetero_spec(ctx) -> list[Path]:
    from effeval import zoo as zoo_module

    large = zoo_module.is_built(LARGE_TARGET, trained=ctx.trained)
    if large:
        run_name, target = "hetero-spec-slem-qwen1.5b-smollm2", ctx.zoo(LARGE_TARGET)
    else:
        run_name, target = "hetero-spec-slem-gemma3-smollm2", ctx.zoo(PAIR_TARGET)
        print(
            "    hetero-spec: Gemma 3 270M <- SmolLM2-135M. For Qwen2.5-Coder-1.5B <- SmolLM2-135M with its "
            "measured cost model, build the real-large tier once: effeval zoo build --real-large "
            "(a 1.6 GB download, 9.6 GB of disk, about 6 min)",
            flush=True,
        )
    drafter = ctx.zoo(TARGET)
    # greedy, so verify=true checks the outputs equal the target's own; HumanEval (code, the paper's
    # setting) when the user opted in to running generated code, else GSM-symbolic (no execution)
    task = CODE_TASK if ctx.run_generated_code else "effeval_real_gsm_symbolic"
    if not ctx.run_generated_code:
        ctx.skipped_code(CODE_TASK, instead="effeval_real_gsm_symbolic")
    path = ctx.run_lm_eval(
        run_name,
        "effeval-hetero-spec",
        f"pretrained={target},drafter={drafter},algorithm=slem,num_draft_tokens={SPEC_DRAFT_TOKENS},verify=true",
        task,
        [*_limit(ctx, 2), *ctx.code_flags(), "--gen_kwargs", "max_gen_toks=48"],
    )
    if large:
        report_cost_model(ctx, path, target, drafter)
    return [path]


def report_cost_model(ctx, result_path: Path, target_dir: str, drafter_dir: str) -> None:
    """Measure the pair's cost model (target step, verify of 1..k+1 rows, drafter step, prefill of
    the run's mean prompt; torch's default threads, as in the run), print it with the ideal
    speedup the run's counts imply and measured / ideal, and write it beside the run's JSON (not
    a result file: the leaderboard skips it)."""
    import json
    import time

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from effeval.bench.hetero_spec import measure_costs, run_cost_model
    from effeval.bench.verify_cost import context_ids
    from effeval.results.writer import write_json_atomic

    eff = json.loads(result_path.read_text(encoding="utf-8"))["efficiency"]
    prompt_len = max(1, round(eff["prompt_tokens"] / eff["requests"]))
    target = AutoModelForCausalLM.from_pretrained(target_dir).eval()
    drafter = AutoModelForCausalLM.from_pretrained(drafter_dir).eval()
    t_ids = context_ids(AutoTokenizer.from_pretrained(target_dir), prompt_len)
    d_ids = context_ids(AutoTokenizer.from_pretrained(drafter_dir), prompt_len)
    costs = measure_costs(target, drafter, t_ids, d_ids, list(range(1, SPEC_DRAFT_TOKENS + 2)), repeats=3)
    with torch.no_grad():
        prefills = []
        for _ in range(2):
            start = time.perf_counter()
            target(input_ids=torch.tensor([t_ids]), logits_to_keep=1)
            prefills.append(time.perf_counter() - start)
    prefill_over_step = 1e3 * min(prefills) / costs["target_forward_ms"]["1"]
    model = run_cost_model(eff, costs, prefill_over_step)
    k1 = str(SPEC_DRAFT_TOKENS + 1)
    print(
        f"    cost model (torch threads {torch.get_num_threads()}): target step "
        f"{costs['target_forward_ms']['1']:.0f} ms, verify({k1}) / step {costs['verify_over_step'][k1]:.2f}, "
        f"drafter step / target step {costs['drafter_over_step']:.2f}, prefill of {prompt_len} tokens / step "
        f"{prefill_over_step:.1f}",
        flush=True,
    )
    measured = model["measured_speedup"]
    versus = (
        f"measured {measured:.2f}x; measured / ideal {model['measured_over_ideal']:.2f}"
        if measured is not None
        else "measured: not recorded (the run has no AR baseline)"
    )
    print(
        f"    ideal speedup for this run's acceptance ({eff['acceptance_rate']:.2f}) under that cost model: "
        f"{model['ideal_speedup']:.2f}x AR; {versus}",
        flush=True,
    )
    path = ctx.out_dir / f"{result_path.stem}.cost-model.json"
    write_json_atomic(path, {"run": result_path.name, "costs": costs, "prompt_tokens": prompt_len, **model})


# ---- pruning: WANDA 50% of every block linear; its dense twin is hf-baseline's prose run
# (same task, same documents), so no second dense run is needed
def pruned(ctx) -> list[Path]:
    from effeval.real_data import prose_documents

    target = ctx.zoo(TARGET)
    # calibration on the story's first half; the perplexity task reads the second half
    calib = ctx.out_dir / "lm_eval" / "pruned_calibration.txt"
    calib.parent.mkdir(parents=True, exist_ok=True)
    calib.write_text("\n\n".join(prose_documents("train")), encoding="utf-8")
    args = f"pretrained={target},method=wanda,sparsity=0.5,calibration={calib},nsamples=16,seqlen=128"
    return [
        ctx.run_lm_eval(
            "pruned-smollm2-wanda50", "effeval-pruned-ssm", args, "effeval_real_prose_ppl", _limit(ctx, 6)
        )
    ]


# ---- short-m@k: k sampled chains, stop when m finish, vote
def short_mk(ctx) -> list[Path]:
    target = ctx.zoo(TARGET)
    # SmolLM2 has no thinking tags: a chain finishes when it states its final answer (the task's
    # prompt asks for "Final answer: <number>"; a non-digit must follow so the number is complete)
    model_args = (
        f"pretrained={target},k=4,m=1,strategy=short,think_end=regex:{FINAL_ANSWER_REGEX},"
        "answer_phase=in_chain,answer_tokens=0,answer=number,measure_savings=true,dtype=float32"
    )
    return [
        ctx.run_lm_eval(
            "short-mk-smollm2-gsm",
            "effeval-short-mk",
            model_args,
            "effeval_real_gsm_symbolic",
            # the task decodes greedily; short-m@k needs k different chains
            [*_limit(ctx, 2), "--gen_kwargs", "max_gen_toks=128,do_sample=true,temperature=0.7,top_p=0.95"],
        )
    ]


# ---- SpeLLM: a SpeLLM distilled from a real model where the zoo has one; otherwise the tiny
# random-zoo SpeLLM (its model column says so): distilling SmolLM2 takes far longer than a demo
def spellm(ctx) -> list[Path]:
    from effeval import zoo as zoo_module

    name = next((n for n in zoo_module.entries() if n.startswith("spellm-") and TARGET in n), None)
    if name is None:
        name = "spellm-llama-sp"
        print(
            f"    spellm: no SpeLLM distilled from {TARGET} in the zoo; running the tiny random {name} "
            "(its scores mean nothing; see `effeval spellm distill` and python -m effeval.bench spellm)",
            flush=True,
        )
    return [
        ctx.run_lm_eval(
            f"{name}-prose",
            "effeval-spellm",
            f"pretrained={ctx.zoo(name)}",
            "effeval_real_prose_ppl",
            _limit(ctx, 6),
        )
    ]
