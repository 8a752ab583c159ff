"""Chain-of-thought prompt templates for models without thinking tags.

Such a model's chain ends at EOS or at the final-answer pattern (``sampler.FINAL_ANSWER_PATTERN``:
a closed ``\\boxed{}`` or "the answer is <number>"), so the prompt must ask for one of those
answer formats: a template that asks for none leaves every chain running to its token budget and
the answers to a last-number guess, which silently turns short-m@k into "shortest truncation".
"""

from __future__ import annotations

from effeval.errors import ConfigError

DEFAULT_TEMPLATE = "{question}\nPut your final answer within \\boxed{{}}."
ANSWER_FORMATS = ("\\boxed{", "the answer is", "the final answer is")


def check_prompt_template(template, argument: str = "prompt_template") -> str:
    """``template`` if it holds ``{question}`` once and asks for an answer format; else one line."""
    if not isinstance(template, str) or template.count("{question}") != 1:
        raise ConfigError(
            f"{argument}: {template!r:.80} must contain {{question}} exactly once. Fix: e.g. "
            f"{DEFAULT_TEMPLATE!r}"
        )
    try:
        text = template.format(question="Q")
    except (IndexError, KeyError, ValueError) as exc:
        raise ConfigError(
            f"{argument}: {template!r:.80} is not a format string with only {{question}} ({exc}). Fix: write "
            "literal braces as {{ and }}, e.g. \\boxed{{}}"
        ) from None
    if not any(fmt in text.lower() for fmt in (f.lower() for f in ANSWER_FORMATS)):
        raise ConfigError(
            f"{argument}: {template!r:.80} asks for no answer format, so no chain would end at an answer "
            "marker. Fix: ask for \\boxed{{}} or 'The answer is <number>', e.g. "
            f"{DEFAULT_TEMPLATE!r}"
        )
    return template


def render(template: str, question: str) -> str:
    return template.format(question=question)
