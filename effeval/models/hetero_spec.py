"""`effeval-hetero-spec`: lm-eval wrapper (not implemented yet; issue #3)."""

from lm_eval.api.registry import register_model

from effeval.models.base import not_implemented_yet

HeteroSpecLM = register_model("effeval-hetero-spec")(not_implemented_yet("effeval-hetero-spec", "issue #3", __name__, "HeteroSpecLM"))
