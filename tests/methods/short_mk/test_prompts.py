"""Chain-of-thought prompt templates: an answer format the chain can end at, or one line."""

import pytest

from effeval.errors import ConfigError
from effeval.methods.short_mk.prompts import DEFAULT_TEMPLATE, check_prompt_template, render


@pytest.mark.parametrize(
    "template,message",
    [
        ("Solve step by step: {question}", "asks for no answer format"),
        ("Solve step by step.", "must contain {question} exactly once"),
        ("{question} {question} The answer is", "must contain {question} exactly once"),
        ("{question} Put it in \\boxed{} {x}", "is not a format string"),
    ],
)
def test_template_without_an_answer_format_is_one_line(template, message):
    with pytest.raises(ConfigError, match=r"^--prompt-template: .*Fix: ") as e:
        check_prompt_template(template, "--prompt-template")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_templates_asking_for_an_answer_format_pass():
    assert check_prompt_template(DEFAULT_TEMPLATE) == DEFAULT_TEMPLATE
    assert render(DEFAULT_TEMPLATE, "1+1?") == "1+1?\nPut your final answer within \\boxed{}."
    check_prompt_template("{question}\nEnd with 'The answer is N'.")
