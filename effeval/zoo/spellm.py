"""Zoo entry ``spellm-llama-sp``: a SpeLLM briefly self-distilled from the zoo's llama-sp."""

from __future__ import annotations

from pathlib import Path

from effeval.zoo import register

DEMO_STEPS = 50


@register(
    "spellm-llama-sp",
    "SpeLLM (k=16 byte heads) self-distilled from llama-sp",
    default=False,
    depends=("llama-sp",),
)
def build_spellm_llama_sp(out: Path, trained: bool) -> None:
    from effeval import zoo
    from effeval.methods.spellm.distill import DistillConfig, distill

    base = zoo.get("llama-sp", trained=trained)
    from effeval.zoo.corpus import texts_for

    distill(
        DistillConfig(
            base=str(base),
            out=str(out),
            k=16,
            steps=DEMO_STEPS,
            batch_size=8,
            seqlen=32,
            pool=512,
            eval_every=DEMO_STEPS,
            eval_positions=128,
            save_every=DEMO_STEPS,
            resume=False,
            progress=False,
        ),
        *texts_for("python"),
    )
