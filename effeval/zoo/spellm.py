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


GUTENBERG_START = "*** START OF THE PROJECT GUTENBERG EBOOK"
GUTENBERG_END = "*** END OF THE PROJECT GUTENBERG EBOOK"


def story_prose_split(heldout_share: float = 0.2) -> tuple[list[str], list[str]]:
    """(training, held-out) for ``--data real-prose``: pydoc's topic help plus the first 80% of
    the *story* of "In the Year 2889" (whole paragraphs, by characters); the story's last 20% is
    held out.

    Only the text between Project Gutenberg's START and END markers is the novella: the file's
    last ~35% is the Gutenberg licence, so a plain 80/20 split of the file held out licence text
    and trained on the whole story (``effeval.zoo.corpus.real_prose_split``, kept as it is for
    the hetero-spec zoo models built on it)."""
    from effeval.zoo.corpus import pydoc_topics, year_2889_text

    text = year_2889_text()
    start, end = text.find(GUTENBERG_START), text.find(GUTENBERG_END)
    if start >= 0 and end > start:
        text = text[text.index("\n", start) + 1 : end]
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    total, cut, seen = sum(len(p) for p in paragraphs), len(paragraphs), 0
    for i, p in enumerate(paragraphs):
        seen += len(p)
        if seen > total * (1 - heldout_share):
            cut = i + 1
            break
    return pydoc_topics() + ["\n\n".join(paragraphs[:cut])], ["\n\n".join(paragraphs[cut:])]
