"""Demo step: SLEM through the stock ``lm_eval`` CLI on the offline CNN/DailyMail twin, with
``verify=true`` (target-only decoding alongside, so the run shows equality and speedup)."""

from __future__ import annotations


def run(ctx) -> list:
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
