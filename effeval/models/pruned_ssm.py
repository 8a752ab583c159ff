"""`effeval-pruned-ssm`: lm-eval wrapper (not implemented yet; issue #6)."""

from lm_eval.api.registry import register_model

from effeval.models.base import not_implemented_yet

PrunedSSMLM = register_model("effeval-pruned-ssm")(not_implemented_yet("effeval-pruned-ssm", "issue #6", __name__, "PrunedSSMLM"))
