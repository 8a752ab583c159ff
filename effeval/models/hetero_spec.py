"""``effeval-hetero-spec``: lossless speculative decoding with a drafter of another vocabulary.

``--model effeval-hetero-spec --model_args pretrained=<target>,drafter=<drafter>,algorithm=slem``.
generate_until runs the chosen algorithm from ``effeval.methods.hetero_spec`` (one request at a
time: the algorithms are batch-size-1); loglikelihood requests use the target through HFLM
(lossless methods do not change them). ``verify=true`` also decodes every request with the
target alone and records equality (greedy requests) and the speedup, like Spec-Bench.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from effeval.config_fields import build
from effeval.errors import ConfigError, loading
from effeval.methods.hetero_spec.config import HeteroSpecConfig
from effeval.methods.hetero_spec.registry import get_algorithm
from effeval.models.base import (
    EffevalWrapperMixin,
    args_from,
    check_gen_kwargs,
    check_pretrained,
    parse_model_args,
    reject_unknown_model_args,
    request_keys,
    resolve_device,
    track_requests,
)

logger = logging.getLogger(__name__)


# model_args = the fields of hetero-spec's one config dataclass (types, defaults, help, checks).
ARGS = args_from(HeteroSpecConfig)
SLRS_ARGS = ("drafter_top_k", "canonical_pairs", "max_dp_states")
DRAFT_ARGS = ("draft_confidence", "draft_schedule")  # adaptive draft length (not AR's)


@register_model("effeval-hetero-spec")
class HeteroSpecLM(EffevalWrapperMixin, HFLM):
    MODEL_NAME = "effeval-hetero-spec"
    METHOD = "hetero-spec"
    ARGS = ARGS

    @classmethod
    def checked_args(cls, kwargs: dict) -> tuple[dict, dict]:
        """(ours, the rest for HFLM, with ``pretrained``) after every check that needs no model;
        ``effeval lm`` runs it before lm-eval starts."""
        kwargs = dict(kwargs)
        pretrained = kwargs.pop("pretrained", None)
        ours, rest = parse_model_args(cls.ARGS, kwargs, cls.MODEL_NAME)
        if pretrained is None:
            raise ConfigError(
                f"{cls.MODEL_NAME}: missing model_args 'pretrained'. Fix: add pretrained=<target model>"
            )
        rest["pretrained"] = check_pretrained(pretrained, "pretrained", cls.MODEL_NAME)
        check_pretrained(ours["drafter"], "drafter", cls.MODEL_NAME)
        get_algorithm(ours["algorithm"])  # unknown/unavailable: ConfigError before loading
        reject_unknown_model_args(
            {k: v for k, v in rest.items() if k != "pretrained"}, HFLM, cls.MODEL_NAME, cls.ARGS
        )
        return ours, rest

    def __init__(self, pretrained: Any = None, **kwargs):
        ours, rest = self.checked_args({**kwargs, "pretrained": pretrained})
        pretrained = rest.pop("pretrained")
        drafter_path = check_pretrained(ours["drafter"], "drafter", self.MODEL_NAME)
        self._generate = get_algorithm(ours["algorithm"])
        rest["device"] = resolve_device(rest.get("device"))
        rest.setdefault("dtype", "float32")
        if ours.get("fast_path", "none") != "none" and (
            not str(rest["device"]).startswith("cpu")
            or str(rest["dtype"]) not in ("float32", "torch.float32")
        ):
            raise ConfigError(
                f"fast_path={ours['fast_path']}: oneDNN-prepacked fp32 weights need device=cpu and "
                f"dtype=float32 (got device={rest['device']}, dtype={rest['dtype']}). Fix: drop fast_path or "
                "use device=cpu,dtype=float32"
            )
        from transformers import AutoConfig

        with loading("drafter", drafter_path):  # a broken drafter fails before the target loads
            AutoConfig.from_pretrained(drafter_path)
        with loading("pretrained", pretrained):
            super().__init__(pretrained=pretrained, **rest)
        self._effeval_init(ours)
        self.settings = build(HeteroSpecConfig, ours)
        self.algorithm = self.settings.algorithm
        self.num_draft_tokens = self.settings.num_draft_tokens
        self.verify = self.settings.verify
        self.seed = self.settings.seed
        self.text_mode = self.settings.text_mode
        self.slrs_args = {k: getattr(self.settings, k) for k in SLRS_ARGS}
        self.draft_args = {k: getattr(self.settings, k) for k in DRAFT_ARGS}
        self.fast_path = self.settings.fast_path
        self.drafter_path = drafter_path
        self.drafter_is_target = isinstance(pretrained, str) and os.path.realpath(
            str(drafter_path)
        ) == os.path.realpath(pretrained)
        if self.drafter_is_target:
            logger.warning(
                "%s: drafter is the target itself (%s); allowed, but it measures overhead, not a speedup",
                self.MODEL_NAME,
                drafter_path,
            )
        from transformers import AutoModelForCausalLM, AutoTokenizer

        with loading("drafter", drafter_path):
            self.drafter_tokenizer = AutoTokenizer.from_pretrained(drafter_path)
            # transformers' own path rewrites the drafter in place: it always gets its own copy.
            self.drafter = (
                AutoModelForCausalLM.from_pretrained(drafter_path, dtype=self.model.dtype)
                .to(self.device)
                .eval()
            )
        if self.fast_path != "none":
            from effeval.methods.hetero_spec import fast_path

            # The target once, for the algorithm and for the AR baseline (verify=true) alike.
            # transformers' own path (hf) rewrites its drafter's layers, so its drafter stays plain.
            fast_path.apply(self.model, self.fast_path)
            if self.algorithm != "hf":
                fast_path.apply(self.drafter, self.fast_path)
        from effeval.methods.hetero_spec.tli import shared_vocabulary
        from effeval.methods.hetero_spec.vocab import Intersection, Vocab

        if self.algorithm == "tli":
            shared_vocabulary(self.tokenizer, self.drafter_tokenizer)  # ConfigError when nothing is shared
        self.vocab_info = {
            "target_vocab_size": len(Vocab.of(self.tokenizer)),
            "drafter_vocab_size": len(Vocab.of(self.drafter_tokenizer)),
            "shared_tokens": len(Intersection.of(self.tokenizer, self.drafter_tokenizer)),
        }

    # ------------------------------------------------------------------ lm-eval entry points

    @track_requests("loglikelihood")
    def loglikelihood(self, requests, disable_tqdm: bool = False):
        return super().loglikelihood(requests, disable_tqdm=disable_tqdm)

    @track_requests("loglikelihood_rolling")
    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        return super().loglikelihood_rolling(requests, disable_tqdm=disable_tqdm)

    @track_requests("generate_until")
    def generate_until(self, requests, disable_tqdm: bool = False):
        from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs
        from tqdm.auto import tqdm

        eos_text = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        for request in requests:  # every request's settings before the first is generated
            check_gen_kwargs(request.args[1], f"{self.MODEL_NAME} gen_kwargs")
        out = []
        keys = request_keys(requests)
        for request, key in zip(
            tqdm(requests, disable=disable_tqdm or self.rank != 0, desc=f"hetero-spec {self.algorithm}"),
            keys,
        ):
            context, gen_kwargs = request.args
            if key.padding:  # lm-eval discards the answers to its padding copies
                out.append("")
                continue
            kwargs = normalize_gen_kwargs(gen_kwargs, self.max_gen_toks)
            until = handle_stop_sequences(kwargs.pop("until", None), eos=eos_text)
            max_gen = int(kwargs.pop("max_gen_toks"))
            ids = self.tok_encode(context, left_truncate_len=max(1, self.max_length - max_gen))
            config = self._sampling_config(kwargs, until, max_gen)
            result = self._run(self._generate, ids, config, key)
            self._record(result, len(ids))
            if self.verify:
                from effeval.methods.hetero_spec import ar

                baseline = self._run(ar.generate, ids, config, key)
                equal = result.token_ids == baseline.token_ids
                self.stats.add(
                    verified_requests=1,
                    ar_wall_time_s=baseline.stats.wall_time_s,
                    ar_target_calls=baseline.stats.target_calls,
                )
                if config.do_sample:  # independent samples need not be equal; only greedy is checked
                    self.stats.add(verified_sampled_requests=1)
                else:
                    self.stats.add(verified_greedy_requests=1, equal_outputs=int(equal))
                    if not equal:
                        logger.error(
                            "%s: output differs from target-only decoding for context %r",
                            self.MODEL_NAME,
                            context[-80:],
                        )
            text = self._output_text(result, until)
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
            out.append(text)
        return out

    # ------------------------------------------------------------------ helpers

    def _sampling_config(self, kwargs: dict, until: list[str], max_gen: int):
        from effeval.methods.hetero_spec.common import SamplingConfig

        temperature = float(kwargs.get("temperature", 0.0) or 0.0)
        do_sample = bool(kwargs.get("do_sample", False)) and temperature > 0
        return SamplingConfig(
            do_sample=do_sample,
            temperature=temperature if do_sample else 1.0,
            top_k=int(kwargs.get("top_k", 0) or 0),
            top_p=float(kwargs.get("top_p", 1.0) or 1.0),
            max_new_tokens=max_gen,
            stop_strings=tuple(s for s in until if s),
            eos_token_ids=(int(self.eot_token_id),),
        )

    def _output_text(self, result, until: list[str]) -> str:
        if self.text_mode == "in_context":
            return result.text
        # As HFLM.generate_until: decode the continuation's tokens alone, then split at each stop.
        text = self.tok_decode(result.token_ids)
        for term in until:
            if term:
                text = text.split(term)[0]
        return text

    def _run(self, generate, ids, config, key):
        # One stream per request (run seed + doc id + repeat): independent draws across requests,
        # the same ones whatever the order, batch or number of processes.
        generator = key.generator(self.seed)
        extra = {}
        if generate is self._generate and self.algorithm != "ar":
            extra = {**self.draft_args, **(self.slrs_args if self.algorithm == "slrs" else {})}
        return generate(
            self.model,
            self.tokenizer,
            self.drafter,
            self.drafter_tokenizer,
            ids,
            config,
            num_draft_tokens=self.num_draft_tokens,
            generator=generator,
            **extra,
        )

    def _record(self, result, prompt_len: int) -> None:
        s = result.stats
        self.stats.prompt_tokens += prompt_len
        self.stats.generated_tokens += s.new_tokens
        self.stats.add(
            drafted=s.drafted,
            accepted=s.accepted,
            verification_steps=len(s.accepted_lengths),
            target_calls=s.target_calls,
            drafter_calls=s.drafter_calls,
            spec_wall_time_s=s.wall_time_s,
        )
        if "overhead_s" in s.extra:  # time outside the forward passes
            self.stats.add(spec_overhead_s=s.extra["overhead_s"])
        if "dp_states" in s.extra or "dp_budget_fallbacks" in s.extra:  # SLRS: the cost of exact q
            self.stats.add(
                slrs_dp_states=s.extra.get("dp_states", 0),
                slrs_drafter_batches=s.extra.get("drafter_batches", 0),
                slrs_dp_budget_fallbacks=s.extra.get("dp_budget_fallbacks", 0),
            )
            self.slrs_dp_states_max = max(
                getattr(self, "slrs_dp_states_max", 0), s.extra.get("dp_states_max_per_step", 0)
            )

    def effeval_method_info(self) -> dict[str, Any]:
        c = self._effeval_merged.counters
        generated = self._effeval_merged.generated_tokens

        def ratio(a, b):
            return (a / b) if b else None

        info: dict[str, Any] = {
            "algorithm": self.algorithm,
            "num_draft_tokens": self.num_draft_tokens,
            "drafter": str(self.drafter_path),
            "drafter_is_target": self.drafter_is_target,
            **self.vocab_info,
            "acceptance_rate": ratio(c.get("accepted", 0), c.get("drafted", 0)),
            "mean_accepted_length": ratio(c.get("accepted", 0), c.get("verification_steps", 0)),
            "tokens_per_target_call": ratio(generated, c.get("target_calls", 0)),
            "spec_tokens_per_s": ratio(generated, c.get("spec_wall_time_s", 0)),
            "overhead_us_per_token": ratio(1e6 * c.get("spec_overhead_s", 0), generated),
            "text_mode": self.text_mode,
            "fast_path": self.fast_path,
            **self.draft_args,
        }
        if self.algorithm == "slrs":
            info["slrs_dp_states_per_step"] = ratio(
                c.get("slrs_dp_states", 0), c.get("verification_steps", 0)
            )
            info["slrs_dp_states_max_per_step"] = getattr(
                self, "slrs_dp_states_max", 0
            )  # this rank's maximum
            info["drafter_calls_per_step"] = ratio(c.get("drafter_calls", 0), c.get("verification_steps", 0))
            # positions decoded by the target alone after a step whose exact DP went over budget
            info["slrs_dp_budget_fallbacks"] = c.get("slrs_dp_budget_fallbacks", 0)
            info.update({k: v for k, v in self.slrs_args.items()})
        if self.algorithm == "hf":
            info["accepted_is_derived"] = True  # transformers reports no counts: new tokens - target passes
        if self.verify:
            info["equality_rate"] = ratio(c.get("equal_outputs", 0), c.get("verified_greedy_requests", 0))
            info["ar_tokens_per_s"] = ratio(generated, c.get("ar_wall_time_s", 0))
            info["speedup_vs_ar"] = ratio(c.get("ar_wall_time_s", 0), c.get("spec_wall_time_s", 0))
        return info
