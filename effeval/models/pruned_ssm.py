"""`effeval-pruned-ssm`: lm-eval's HFLM on a pruned model, at load time.

Not SSM-only despite the name (the paper it follows prunes Mamba / Mamba2): magnitude, WANDA,
SparseGPT (unstructured, 2:4, 4:8) and FLAP also prune decoder-only transformers (Llama family,
e.g. SmolLM2: every block linear by default); d_state / head-dim / heads are Mamba2-only.

HFLM loads the checkpoint (so lm-eval's device, dtype and batch handling stay as they are); the
model is then pruned in place (unstructured / N:M), or replaced by its shrunk copy (structured).
The algorithms live in ``effeval.methods.pruned_ssm``; this file only maps model_args onto them and
reports the cost: per-module and global sparsity, parameters before/after, non-zero parameters,
pruning wall time, calibration tokens, and dense-vs-pruned forward throughput for structured runs.

    lm_eval --model effeval-pruned-ssm \
      --model_args pretrained=DIR,method=wanda,sparsity=0.5,calibration=notes.txt --tasks pruned_ssm_mini
"""

from __future__ import annotations

import logging
from typing import Any

from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from effeval.config_fields import build
from effeval.methods.pruned_ssm.api import PruneSpec
from effeval.models.base import (
    Arg,
    EffevalWrapperMixin,
    args_from,
    check_pretrained,
    parse_model_args,
    reject_unknown_model_args,
    resolve_device,
    track_requests,
)

logger = logging.getLogger(__name__)


# The pruning settings come from PruneSpec (one source); lm-eval's own batch_size is the
# evaluation batch, so the calibration batch keeps its default here.
ARGS = [
    *args_from(PruneSpec, exclude=("batch_size",), method={"default": "wanda"}),
    Arg(
        "calibration",
        str,
        None,
        allow_none=True,
        help="text file, dataset:NAME[:CONFIG[:SPLIT[:COLUMN]]] or task:NAME",
    ),
    Arg("save_to", str, None, allow_none=True, help="also save the pruned model to this folder"),
]


def task_documents(name: str, limit: int = 2000) -> list[str]:
    """Texts of an lm-eval task's documents (prompt + gold answer), for calibration.

    Training docs are preferred so that calibration does not see the evaluated split."""
    from lm_eval.tasks import TaskManager, get_task_dict

    from effeval.errors import ConfigError
    from effeval.task_data import task_configs_dir

    # our own configs first: indexing lm-eval's ~14k built-in tasks takes seconds
    manager = TaskManager(include_path=str(task_configs_dir()), include_defaults=False)
    if name not in manager.all_tasks:
        manager = TaskManager(include_path=str(task_configs_dir()))
    try:
        task = get_task_dict([name], manager)[name]
    except Exception as exc:
        raise ConfigError(
            f"calibration: lm-eval task {name!r} cannot be loaded ({type(exc).__name__}: "
            f"{str(exc)[:200]}). Fix: use a task name from `lm_eval ls tasks`"
        ) from None
    if task.has_training_docs():
        docs = task.training_docs()
    elif task.has_validation_docs():
        docs = task.validation_docs()
    else:
        docs = task.test_docs()
    texts = []
    for doc in docs:
        text = task.doc_to_text(doc)
        text = text if isinstance(text, str) else ""
        target = task.doc_to_target(doc)
        if task.OUTPUT_TYPE == "multiple_choice":
            choices = task.doc_to_choice(doc)
            if isinstance(target, int) and 0 <= target < len(choices):
                target = choices[target]
        if isinstance(target, str):
            text = text + task.config.target_delimiter + target
        if text.strip():
            texts.append(text)
        if len(texts) >= limit:
            break
    return texts


def _check_targets_early(pretrained, targets, method: str) -> None:
    """Validate target names from config.json before the (slow) model load."""
    from transformers import AutoConfig

    from effeval.methods.pruned_ssm.arch import resolve_targets

    try:
        model_type = AutoConfig.from_pretrained(pretrained).model_type
    except Exception:  # HFLM will report an unreadable checkpoint in its own words
        return
    if model_type in ("mamba", "mamba2"):
        resolve_targets(model_type, targets)


@register_model("effeval-pruned-ssm")
class PrunedSSMLM(EffevalWrapperMixin, HFLM):
    MODEL_NAME = "effeval-pruned-ssm"
    METHOD = "pruning"
    ARGS = ARGS

    @classmethod
    def checked_args(cls, kwargs: dict) -> tuple[dict, dict]:
        """(ours, the rest for HFLM, with ``pretrained``) after every check that needs no model;
        ``effeval lm`` runs it before lm-eval starts."""
        from effeval.errors import ConfigError, model_args

        kwargs = dict(kwargs)
        pretrained = kwargs.pop("pretrained", None)
        ours, rest = parse_model_args(ARGS, kwargs, cls.MODEL_NAME)
        if pretrained is None:
            raise ConfigError(
                f"{cls.MODEL_NAME}: missing model_args 'pretrained'. Fix: add pretrained=<model dir>"
            )
        pretrained = check_pretrained(pretrained, "pretrained", cls.MODEL_NAME)
        with model_args(cls.MODEL_NAME):
            spec = build(PruneSpec, ours).validated()
        _check_targets_early(pretrained, spec.targets, spec.method)
        if ours["save_to"]:  # before loading and pruning, not after
            from effeval.atomic import check_not_input, check_output_dir

            argument = f"{cls.MODEL_NAME} model_args 'save_to'"
            check_output_dir(ours["save_to"], argument)
            check_not_input(ours["save_to"], pretrained, argument, "pretrained")
        calibration = ours["calibration"]
        if isinstance(calibration, str) and not calibration.startswith(("dataset:", "task:")):
            from effeval.methods.pruned_ssm.calibration import load_texts

            with model_args(cls.MODEL_NAME):  # a missing, binary or empty file: before the model loads
                load_texts(calibration)
        reject_unknown_model_args(rest, HFLM, cls.MODEL_NAME, ARGS)
        return ours, {**rest, "pretrained": pretrained}

    def __init__(self, pretrained: Any = None, **kwargs) -> None:
        from effeval.errors import ConfigError, model_args
        from effeval.methods.pruned_ssm.api import forward_tokens_per_s, prune_model, save_pruned

        ours, rest = self.checked_args({**kwargs, "pretrained": pretrained})
        pretrained = rest.pop("pretrained")
        with model_args(self.MODEL_NAME):
            spec = build(PruneSpec, ours).validated()
        rest.setdefault("dtype", "float32")
        rest["device"] = resolve_device(rest.get("device"))  # the CLI passes cuda:0 even without CUDA
        from effeval.errors import loading

        with loading("pretrained", pretrained):
            super().__init__(pretrained=pretrained, **rest)
        self._effeval_init(ours)
        model = self._model
        input_ids = None
        if spec.needs_calibration or spec.method in ("dstate", "headdim", "heads", "flap"):
            if spec.needs_calibration or ours["calibration"] is not None:
                from effeval.methods.pruned_ssm.api import calibration_ids

                if ours["calibration"] is None:
                    raise ConfigError(
                        f"{self.MODEL_NAME} model_args 'calibration': method={spec.method} needs "
                        "calibration text. Fix: add calibration=<text file>, dataset:<name> or task:<name>"
                    )
                with model_args(self.MODEL_NAME):
                    input_ids = calibration_ids(self.tokenizer, ours["calibration"], spec, task_documents)
        structured = spec.method in ("dstate", "headdim", "heads", "flap")
        throughput: dict[str, Any] = {}
        probe = None
        if structured:
            import torch

            probe = (
                input_ids[: min(4, len(input_ids))]
                if input_ids is not None
                else torch.randint(
                    0, len(self.tokenizer), (2, 64), generator=torch.Generator().manual_seed(spec.seed)
                )
            )
            throughput["dense_forward_tokens_per_s"] = forward_tokens_per_s(model, probe)
        result = prune_model(model, self.tokenizer, spec, input_ids=input_ids)
        if result.model is not model:
            self._model = result.model
            self._config = result.model.config
        if structured:
            throughput["pruned_forward_tokens_per_s"] = forward_tokens_per_s(self._model, probe)
            throughput["forward_speedup"] = (
                throughput["pruned_forward_tokens_per_s"] / throughput["dense_forward_tokens_per_s"]
            )
        self._prune_report = {**result.report, **throughput}
        if ours["save_to"]:
            save_pruned(self._model, self.tokenizer, ours["save_to"], result.report)
        logger.info(
            "effeval-pruned-ssm: %s sparsity=%.3f global=%.3f params %d -> %d (non-zero %d) in %.1fs",
            spec.method,
            spec.sparsity,
            result.report.get("global_sparsity", 0.0),
            result.report["params_before"],
            result.report["params_after"],
            result.report["nonzero_params"],
            result.report["prune_wall_time_s"],
        )

    def effeval_method_info(self) -> dict[str, Any]:
        rep = self._prune_report
        keys = (
            "method",
            "architecture",
            "pattern",
            "criterion",
            "flap_metric",
            "flap_units",
            "flap_structure",
            "requested_sparsity",
            "global_sparsity",
            "target_sparsity",
            "module_sparsity",
            "params_before",
            "params_after",
            "nonzero_params_before",
            "nonzero_params",
            "model_sparsity",
            "prune_wall_time_s",
            "calibration_tokens",
            "calibration_samples",
            "config_before",
            "config_after",
            "dense_forward_tokens_per_s",
            "pruned_forward_tokens_per_s",
            "forward_speedup",
        )
        return {k: rep[k] for k in keys if k in rep and rep[k] is not None}

    def _count_prompt_tokens(self, requests) -> None:
        for req in requests:
            self.stats.prompt_tokens += sum(len(self.tok_encode(a)) for a in req.args if isinstance(a, str))

    @track_requests("loglikelihood")
    def loglikelihood(self, requests, disable_tqdm: bool = False):
        self._count_prompt_tokens(requests)
        return super().loglikelihood(requests, disable_tqdm=disable_tqdm)

    @track_requests("loglikelihood_rolling")
    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        self._count_prompt_tokens(requests)
        return super().loglikelihood_rolling(requests, disable_tqdm=disable_tqdm)

    @track_requests("generate_until")
    def generate_until(self, requests, disable_tqdm: bool = False):
        return super().generate_until(requests, disable_tqdm=disable_tqdm)
