"""``make demo`` steps, one per method: each takes a ``DemoContext`` and returns the effeval JSON
paths it wrote (see ``effeval.demo``)."""

from __future__ import annotations

from pathlib import Path


# ---- hetero_spec
def hetero_spec(ctx) -> list:
    target, drafter = ctx.zoo("llama-sp"), ctx.zoo("qwen-tekken")
    extra = [] if ctx.limit else ["--limit", "4"]  # keeps the step well under a minute on 2 cores
    path = ctx.run_lm_eval(
        "hetero-spec-slem",
        "effeval-hetero-spec",
        f"pretrained={target},drafter={drafter},algorithm=slem,num_draft_tokens=4,verify=true",
        "hetero_spec_cnndm_mini",
        extra_args=extra,
    )
    return [path]


# ---- short_mk
def short_mk(ctx) -> list[Path]:
    model_dir = ctx.zoo("reasoner-sp")
    model_args = (
        f"pretrained={model_dir},k=4,m=2,strategy=short,max_think_tokens=40,answer_tokens=8,"
        "measure_savings=true,dtype=float32"
    )
    extra = [] if ctx.limit else ["--limit", "4"]
    return [
        ctx.run_lm_eval("short-mk-reasoner-sp", "effeval-short-mk", model_args, "short_mk_arith_mini", extra)
    ]


# ---- spellm
def spellm(ctx):
    spellm_dir = ctx.zoo("spellm-llama-sp")  # built (distilled) once, then cached in the zoo
    return [ctx.run_lm_eval("spellm-llama-sp", "effeval-spellm", f"pretrained={spellm_dir}", "effeval_smoke")]


# ---- pruned_ssm
def pruned_ssm(ctx) -> list[Path]:
    from effeval.zoo.corpus import corpus_texts

    model = ctx.zoo("mamba2-sp")
    # Python's own docs text, written beside lm-eval's raw output (not a result to commit).
    calib = ctx.out_dir / "lm_eval" / "pruned_ssm_calibration.txt"
    calib.parent.mkdir(parents=True, exist_ok=True)
    calib.write_text("\n\n".join(corpus_texts("prose")[:40]), encoding="utf-8")
    args = f"pretrained={model},method=wanda,sparsity=0.5,targets=in_proj,calibration={calib},nsamples=16,seqlen=64"
    return [ctx.run_lm_eval("pruned-ssm-wanda50", "effeval-pruned-ssm", args, "pruned_ssm_mini")]
