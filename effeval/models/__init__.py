"""lm-eval adapters, one file per ``effeval-*`` model name.

This module is imported at interpreter start by the plugin hook: keep it a plain dict.
"""

MODEL_TARGETS = {
    "effeval-hetero-spec": "effeval.models.hetero_spec:HeteroSpecLM",
    "effeval-short-mk": "effeval.models.short_mk:ShortMKLM",
    "effeval-spellm": "effeval.models.spellm:SpeLLMLM",
    "effeval-pruned-ssm": "effeval.models.pruned_ssm:PrunedSSMLM",
}
