"""`effeval-spellm`: lm-eval wrapper around a SpeLLM directory (``effeval spellm distill``).

Thin: arguments -> ``SpeLLMForCausalLM``; scoring and decoding live in effeval.methods.spellm.
``loglikelihood`` / ``loglikelihood_rolling`` are exact under the SpeLLM's string distribution
(docs/spellm.md: padded-row log-probs, long tokens scored as the k-byte chunks SpeLLM emits).
"""

from __future__ import annotations

import logging

from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from tqdm.auto import tqdm

from effeval.config_fields import positive
from effeval.errors import ConfigError
from effeval.models.base import (
    Arg,
    EffevalWrapperMixin,
    check_gen_kwargs,
    check_pretrained,
    parse_model_args,
    request_keys,
    resolve_device,
    track_requests,
)

logger = logging.getLogger(__name__)

_LM_EVAL_PASSTHROUGH = ("max_batch_size", "trust_remote_code", "revision", "parallelize", "backend")


@register_model("effeval-spellm")
class SpeLLMLM(EffevalWrapperMixin, TemplateLM):
    MODEL_NAME = "effeval-spellm"
    METHOD = "spellm"
    ARGS = [
        Arg("pretrained", str, help="a SpeLLM directory made by `effeval spellm distill`"),
        Arg("scoring", str, None, choices=("padded", "terminated", "vocab"), allow_none=True),
        Arg("max_length", int, 2048, check=positive),
        Arg("seed", int, 0),
        Arg("dtype", str, "float32", choices=("float32", "bfloat16", "float16", "auto")),
    ]

    @classmethod
    def checked_args(cls, kwargs: dict) -> tuple[dict, dict]:
        """(ours, {"path": the checked pretrained folder}) after every check that needs no
        model; ``effeval lm`` runs it before lm-eval starts."""
        ours, rest = parse_model_args(cls.ARGS, kwargs, cls.MODEL_NAME)
        for key in (*_LM_EVAL_PASSTHROUGH, "device", "batch_size"):  # the last two: __init__'s own
            rest.pop(key, None)
        if rest:
            raise ConfigError(
                f"{cls.MODEL_NAME}: unknown model_args {', '.join(sorted(rest))}. Fix: use only "
                f"{', '.join(a.name for a in cls.ARGS)} (plus lm-eval's device and batch_size)"
            )
        from effeval.methods.spellm.model import CONFIG_NAME

        # a plain model dir (config.json) passes here so SpeLLM's loader can say how to convert it
        path = check_pretrained(
            ours["pretrained"], model=cls.MODEL_NAME, model_files=("config.json", CONFIG_NAME)
        )
        return ours, {"path": path}

    def __init__(self, device: str | None = None, batch_size=1, **kwargs):
        ours, checked = self.checked_args(kwargs)
        super().__init__()
        self._effeval_init(ours)
        import torch

        from effeval.methods.spellm.model import SpeLLMForCausalLM

        path = checked["path"]
        self._device = resolve_device(device)
        dtype = None if ours["dtype"] == "auto" else getattr(torch, ours["dtype"])
        self.model = SpeLLMForCausalLM.from_pretrained(path, device=self._device, dtype=dtype)
        self.tokenizer = self.model.tokenizer
        self.scoring = ours["scoring"] or self.model.scoring
        self.max_length = ours["max_length"]
        try:
            self.batch_size = max(1, int(batch_size))
        except (TypeError, ValueError):  # "auto": tiny batches are fine for scoring on CPU
            self.batch_size = 8
        self.seed = ours["seed"]

    # ------------------------------------------------------------------ TemplateLM plumbing

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        bos = self.tokenizer.bos_token_id
        return bos if bos is not None else self.tokenizer.eos_token_id

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        # Same convention as lm-eval's HFLM: None = the tokenizer's own default (e.g. BOS).
        if add_special_tokens is None:
            return self.tokenizer.encode(string)
        return self.tokenizer.encode(string, add_special_tokens=add_special_tokens)

    def effeval_method_info(self) -> dict:
        info = self.model.output_layer_facts()
        info["scoring"] = self.scoring
        info["coverage_of_input_vocab"] = self.model.codec.coverage()["coverage"]
        dist = self.model.spellm_config.get("distillation") or {}
        if dist.get("final"):
            info["distill_top1_agreement"] = dist["final"].get("top1_agreement")
            info["distill_steps"] = dist.get("steps_done")
        return info

    # ------------------------------------------------------------------ requests

    def _score(self, items, disable_tqdm: bool):
        self.stats.add(
            scored_steps=sum(len(i.steps) for i in items),
            scored_tokens_chunked=sum(1 for i in items for s in i.steps if len(s.tokens) != 1),
        )
        self.stats.prompt_tokens += sum(len(i.context) for i in items)
        return self.model.score(
            items,
            max_length=self.max_length,
            batch_size=self.batch_size,
            mode=self.scoring,
            progress=not disable_tqdm,
        )

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs):
        from effeval.methods.spellm.model import ScoreItem

        items = [ScoreItem(list(ctx), self.model.steps_for(cont, self.scoring)) for _, ctx, cont in requests]
        return self._score(items, disable_tqdm)

    @track_requests("loglikelihood")
    def loglikelihood(self, requests, disable_tqdm: bool = False):
        return super().loglikelihood(requests, disable_tqdm=disable_tqdm)

    @track_requests("loglikelihood_rolling")
    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        from effeval.methods.spellm.model import ScoreItem

        items = []
        for (string,) in [r.args for r in requests]:
            tokens = self.tok_encode(string)
            if tokens and tokens[0] == self.prefix_token_id:
                tokens = tokens[1:]
            items.append(ScoreItem([self.prefix_token_id], self.model.steps_for(tokens, self.scoring)))
        return [lp for lp, _ in self._score(items, disable_tqdm)]

    @track_requests("generate_until")
    def generate_until(self, requests, disable_tqdm: bool = False):
        for request in requests:  # every request's settings before the first is generated
            check_gen_kwargs(request.args[1], f"{self.MODEL_NAME} gen_kwargs")
        out = []
        keys = request_keys(requests)
        for request, key in zip(tqdm(requests, desc="spellm generate", disable=disable_tqdm), keys):
            context, gen_kwargs = request.args
            if key.padding:  # lm-eval discards the answers to its padding copies
                out.append("")
                continue
            kw = dict(gen_kwargs or {})
            until = kw.pop("until", None) or []
            if isinstance(until, str):
                until = [until]
            max_new = int(kw.pop("max_gen_toks", kw.pop("max_new_tokens", 256)))
            temperature = float(kw.pop("temperature", 0.0) or 0.0)
            do_sample = bool(kw.pop("do_sample", temperature > 0)) and temperature > 0
            ctx = self.tok_encode(context)[-max(1, self.max_length - max_new) :]
            self.stats.prompt_tokens += len(ctx)
            text, info = self.model.generate(
                ctx,
                max_new_tokens=max_new,
                stop_strings=until,
                do_sample=do_sample,
                temperature=temperature if do_sample else 1.0,
                # one stream per request: run seed + doc id + repeat (not one stream for the run)
                generator=key.generator(self.seed),
                max_length=self.max_length,
                mode=self.scoring,
            )
            self.stats.generated_tokens += info["generated_tokens"]
            self.stats.add(decode_steps=info["steps"], generated_bytes=info["generated_bytes"])
            out.append(text)
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
        return out
