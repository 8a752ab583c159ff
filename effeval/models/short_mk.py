"""``effeval-short-mk``: short-m@k voting for reasoning models (Hassid et al., arXiv 2505.17813).

HFLM subclass: ``generate_until`` samples k chains per request in one batch that shares the
prompt's KV cache, halts all of them once m have finished thinking (strategy ``short``), votes,
and returns the chosen chain's FULL text so the task's own filters/metrics score it. Sampling
settings (temperature, top_p, top_k, do_sample, max_gen_toks, until) come from the task's
generation_kwargs; ``until`` applies to the answer written after the end-of-thinking marker only.
Loglikelihood requests are HFLM's own. Requests run one at a time (each is a batch of k chains).

Per-chain log: after each request the wrapper adds ``{"effeval_short_mk": {...}}`` to that
request's generation-kwargs dict. lm-eval writes request arguments into its samples file
(``arguments.gen_args_0.arg_1``), so with ``--log_samples`` every sample carries every chain's
thinking/answer tokens, status (finished / eos / truncated / aborted), extracted answer, vote key,
whether it voted, plus the tally and the chosen chain. ``effeval short-mk analyze`` reads exactly
that. ``chain_log=PATH`` also appends the same records to a JSONL side file.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from effeval.errors import ConfigError, loading
from effeval.methods.short_mk.sampler import ShortMKConfig
from effeval.models.base import (
    Arg,
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

LOG_KEY = "effeval_short_mk"


# The method's settings come from its config (one source); the task's generation_kwargs supply
# the sampling ones, and the wrapper adds where the model lives and where the chain log goes.
ARGS = [
    Arg("pretrained", str, help="a local model directory or hub id"),
    *args_from(
        ShortMKConfig,
        exclude=("temperature", "top_p", "top_k", "do_sample", "stop"),
        max_think_tokens={
            "default": None,
            "allow_none": True,
            "help": "thinking budget (default: the task's max_gen_toks)",
        },
    ),
    Arg("chain_log", str, None, allow_none=True, help="also append the per-chain log to this JSONL file"),
    Arg("log_text", bool, False, help="include every chain's text in the per-chain log"),
]
METHOD_ARGS = [
    a.name for a in ARGS if a.name not in ("pretrained", "chain_log", "log_text", "max_think_tokens")
]


@register_model("effeval-short-mk")
class ShortMKLM(EffevalWrapperMixin, HFLM):
    MODEL_NAME = "effeval-short-mk"
    METHOD = "short-m@k"

    @classmethod
    def checked_args(cls, kwargs: dict) -> tuple[dict, dict]:
        """(ours, the rest for HFLM) after every check that needs no model; ``effeval lm`` runs it
        before lm-eval starts, so a mistake costs no task set-up or model load."""
        ours, rest = parse_model_args(ARGS, kwargs, cls.MODEL_NAME)
        from effeval.errors import model_args
        from effeval.methods.short_mk.answers import make_extractor
        from effeval.methods.short_mk.voting import check_strategy

        with model_args(cls.MODEL_NAME):
            check_strategy(ours["strategy"], ours["k"], ours["m"])
        if ours["max_think_tokens"] is not None and ours["max_think_tokens"] < 1:
            raise ConfigError(
                f"{cls.MODEL_NAME} model_args 'max_think_tokens': must be >= 1. Fix: pass e.g. max_think_tokens=32768"
            )
        make_extractor(ours["answer"])
        if ours["chain_log"]:  # a log that cannot be appended to fails here, not at the first request
            from effeval.atomic import check_output_file

            check_output_file(ours["chain_log"], f"{cls.MODEL_NAME} model_args 'chain_log'")
        rest["pretrained"] = check_pretrained(ours["pretrained"], model=cls.MODEL_NAME)
        reject_unknown_model_args(rest, HFLM, cls.MODEL_NAME, ARGS)
        return ours, rest

    def __init__(self, **kwargs):
        from effeval.methods.short_mk.answers import make_extractor

        ours, rest = self.checked_args(kwargs)
        self._extractor = make_extractor(ours["answer"])
        rest["device"] = resolve_device(rest.get("device"))
        with loading("pretrained", rest["pretrained"]):
            super().__init__(**rest)
        self._effeval_init(ours)
        self.chain_logs: list[dict] = []  # every request's per-chain log, in completion order
        from effeval.methods.short_mk.sampler import ThinkEndDetector

        self._detector = ThinkEndDetector(ours["think_end"], self._encode_plain, self._decode)

    # ------------------------------------------------------------------ helpers
    def _encode_plain(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _config_for(self, gen_kwargs: dict):
        from lm_eval.models.utils import normalize_gen_kwargs

        kw = normalize_gen_kwargs({k: v for k, v in gen_kwargs.items() if k != LOG_KEY}, self.max_gen_toks)
        max_gen = int(kw["max_gen_toks"])
        do_sample = bool(kw.get("do_sample", False))
        temperature = float(kw.get("temperature", 0.0) or 0.0)
        if do_sample and temperature <= 0:
            temperature = 1.0
        a = self.effeval_args
        think_budget = a["max_think_tokens"] or max_gen
        until = [s for s in kw.get("until", []) if s]
        return ShortMKConfig(
            **{name: a[name] for name in METHOD_ARGS},
            max_think_tokens=min(think_budget, max_gen),
            temperature=temperature if do_sample else 1.0,
            top_p=float(kw.get("top_p", 1.0) or 1.0),
            top_k=int(kw.get("top_k", 0) or 0),
            do_sample=do_sample,
            stop=tuple(until),
        ), max_gen

    def _step_backend(self):
        from effeval.methods.short_mk.hf_backend import HFStepBackend

        return HFStepBackend(self.model, self.device)

    # ------------------------------------------------------------------ lm-eval API
    loglikelihood = track_requests("loglikelihood")(HFLM.loglikelihood)
    loglikelihood_rolling = track_requests("loglikelihood_rolling")(HFLM.loglikelihood_rolling)

    @track_requests("generate_until")
    def generate_until(self, requests, disable_tqdm: bool = False):
        from tqdm.auto import tqdm

        from effeval.methods.short_mk.sampler import sample_short_mk

        eos_ids = {self.eot_token_id, getattr(self.tokenizer, "eos_token_id", None)}
        for req in requests:  # every request's settings before the first is generated
            check_gen_kwargs(req.args[1], f"{self.MODEL_NAME} gen_kwargs")
        out = []
        keys = request_keys(requests)
        for req, key in zip(
            tqdm(requests, desc="short-m@k requests", disable=disable_tqdm or self.rank != 0), keys
        ):
            context, gen_kwargs = req.args[0], req.args[1]
            if key.padding:  # lm-eval discards the answers to its padding copies
                out.append("")
                continue
            cfg, max_gen = self._config_for(gen_kwargs)
            # Each request draws from its own stream: run seed + its place in the run (doc, repeat).
            cfg.seed = key.seed(self.effeval_args["seed"])
            # Keep room for the whole chain within the model's context window.
            room = self.max_length - max_gen
            if room < 16:
                max_gen = max(16, self.max_length // 2)
                room = self.max_length - max_gen
                cfg.max_think_tokens = min(cfg.max_think_tokens, max_gen)
                logger.warning(
                    "short-m@k: max_gen_toks exceeds the model's %d-token window; using %d",
                    self.max_length,
                    max_gen,
                )
            prompt = self.tok_encode(context, left_truncate_len=room)
            result = sample_short_mk(
                self._step_backend(),
                prompt,
                cfg,
                decode=self._decode,
                encode=self._encode_plain,
                eos_ids=eos_ids,
                extractor=self._extractor,
                detector=self._detector,
            )
            eff = result.efficiency()
            self.stats.prompt_tokens += len(prompt)
            self.stats.generated_tokens += result.total_tokens
            self.stats.add(
                **{key: value for key, value in eff.items() if key != "chains"},
                chains_sampled=eff["chains"],
                shadow_forward_passes=result.shadow_forward_passes,
                vote_ties=int(result.vote.margin == 0 and len(result.vote.tally) > 1),
            )
            log = result.log(with_text=self.effeval_args["log_text"])
            if isinstance(gen_kwargs, dict):
                gen_kwargs[LOG_KEY] = log  # lm-eval writes request arguments into the samples file
            self.chain_logs.append(log)
            if self.effeval_args["chain_log"]:
                path = Path(self.effeval_args["chain_log"])
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"context": context, **log}) + "\n")
            out.append(result.text)
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), result.text)
        return out

    def effeval_method_info(self) -> dict:
        c = self._effeval_merged.counters
        info = {
            "k": self.effeval_args["k"],
            "m": self.effeval_args["m"],
            "strategy": self.effeval_args["strategy"],
            "think_end_detection": "token id" if self._detector.token_id is not None else "decoded text",
            "prompt_kv_cache": "shared (computed once, expanded to k rows)",
        }
        requests = self._effeval_merged.per_request_type.get("generate_until", {}).get("requests", 0)
        if requests:
            info["mean_vote_margin"] = c.get("vote_margin", 0) / requests
        if "counterfactual_total_tokens" in c:
            info["tokens_saved"] = c["counterfactual_total_tokens"] - c.get("total_generated_tokens", 0)
            info["tokens_saved_ratio"] = (
                info["tokens_saved"] / c["counterfactual_total_tokens"]
                if c["counterfactual_total_tokens"]
                else 0.0
            )
            info["thinking_tokens_saved"] = c["counterfactual_thinking_tokens"] - c.get(
                "thinking_tokens_all", 0
            )
            info["thinking_tokens_saved_ratio"] = (
                info["thinking_tokens_saved"] / c["counterfactual_thinking_tokens"]
                if c["counterfactual_thinking_tokens"]
                else 0.0
            )
        elif self.effeval_args["strategy"] in ("majority", "longest"):
            info["tokens_saved"] = 0  # every chain ran to its end
            info["thinking_tokens_saved_ratio"] = 0.0
        else:
            info["tokens_saved"] = None  # unknown without measure_savings=true (aborted chains' full length)
        return info
