"""``make demo`` step: distil a SpeLLM briefly from the zoo's llama-sp, then evaluate it with the
stock lm_eval CLI on the same smoke tasks as the hf baseline (so the table compares them)."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def run(ctx):
    spellm_dir = ctx.zoo("spellm-llama-sp")  # built (distilled) once, then cached in the zoo
    return [ctx.run_lm_eval("spellm-llama-sp", "effeval-spellm", f"pretrained={spellm_dir}", "effeval_smoke")]
