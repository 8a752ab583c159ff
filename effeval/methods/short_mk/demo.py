"""Demo step: short-2@4 through the stock ``lm_eval`` CLI on the offline arithmetic twin.

``measure_savings=true`` keeps the aborted chains running apart, so the one run also reports what
generating all k chains to the end would have cost (``thinking_tokens_saved_ratio``). With the
random zoo (the default demo) chains rarely emit ``</think>``, so the numbers show the mechanics;
``--trained`` uses the briefly trained reasoner, where early stopping saves tokens.
"""

from __future__ import annotations

from pathlib import Path


def run(ctx) -> list[Path]:
    model_dir = ctx.zoo("reasoner-sp")
    model_args = (
        f"pretrained={model_dir},k=4,m=2,strategy=short,max_think_tokens=40,answer_tokens=8,"
        "measure_savings=true,dtype=float32"
    )
    extra = [] if ctx.limit else ["--limit", "4"]
    return [
        ctx.run_lm_eval("short-mk-reasoner-sp", "effeval-short-mk", model_args, "short_mk_arith_mini", extra)
    ]
