"""`effeval-short-mk`: lm-eval wrapper (not implemented yet; issue #4)."""

from lm_eval.api.registry import register_model

from effeval.models.base import not_implemented_yet

ShortMKLM = register_model("effeval-short-mk")(not_implemented_yet("effeval-short-mk", "issue #4", __name__, "ShortMKLM"))
