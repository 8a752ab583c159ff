"""`effeval-spellm`: lm-eval wrapper (not implemented yet; issue #5)."""

from lm_eval.api.registry import register_model

from effeval.models.base import not_implemented_yet

SpeLLMLM = register_model("effeval-spellm")(not_implemented_yet("effeval-spellm", "issue #5", __name__, "SpeLLMLM"))
