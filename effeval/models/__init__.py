"""lm-eval adapters, one file per ``effeval-*`` model name.

The plugin hook imports this module when lm-eval's registry loads: it only names the classes
(``"module:Class"`` placeholders that lm-eval imports on first use).
"""

from effeval.registry import Registry

MODEL_TARGETS: Registry[type] = Registry(
    "model",
    {
        "effeval-hetero-spec": "effeval.models.hetero_spec:HeteroSpecLM",
        "effeval-short-mk": "effeval.models.short_mk:ShortMKLM",
        "effeval-spellm": "effeval.models.spellm:SpeLLMLM",
        "effeval-pruned-ssm": "effeval.models.pruned_ssm:PrunedSSMLM",
    },
    argument="--model",
)
