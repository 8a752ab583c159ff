"""What every ``effeval-*`` lm-eval wrapper shares.

- ``Arg`` / ``parse_model_args``: declarative model_args validation. lm-eval's CLI auto-types
  values (``k=4`` arrives as int, ``verify=true`` as bool); Python callers pass anything.
  Each bad value raises one ``ConfigError`` naming the argument and the fix.
- ``resolve_device``: the CLI passes ``cuda:0`` by default; fall back to CPU when CUDA is absent.
- ``check_pretrained``: a missing local directory is a clear error, not a hub lookup.
- ``EffevalWrapperMixin``: efficiency stats (wall time, tokens, method counters) merged across
  data-parallel ranks at the end of each request batch (``get_model_info`` runs on rank 0 only,
  where no collective can be called), returned from ``get_model_info()`` under ``"effeval"``.
  lm-eval merges that dict into ``results["config"]``, so cost sits beside the scores.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from effeval.errors import ConfigError, NotImplementedYetError

logger = logging.getLogger(__name__)

REQUIRED = object()
_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


@dataclass
class Arg:
    """One model_arg: name, type, default (``REQUIRED`` if none) and optional checks."""

    name: str
    type: type
    default: Any = REQUIRED
    choices: Iterable[Any] | None = None
    check: Callable[[Any], str | None] | None = None  # returns a problem description or None
    help: str = ""
    allow_none: bool = False


def _coerce(spec: Arg, value: Any, model: str) -> Any:
    where = f"{model} model_args '{spec.name}'"
    if value is None:
        if spec.allow_none:
            return None
        raise ConfigError(f"{where}: no value given. Fix: pass {spec.name}=<{spec.type.__name__}>")
    try:
        if spec.type is bool:
            if isinstance(value, bool):
                out = value
            elif str(value).strip().lower() in _TRUE:
                out = True
            elif str(value).strip().lower() in _FALSE:
                out = False
            else:
                raise ValueError
        elif spec.type is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            out = int(value)
        elif spec.type is float:
            if isinstance(value, bool):
                raise ValueError
            out = float(value)
        else:
            out = spec.type(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: {value!r} is not a valid {spec.type.__name__}. "
            f"Fix: pass {spec.name}=<{spec.type.__name__}>{' ' + spec.help if spec.help else ''}"
        ) from None
    if spec.choices is not None:
        choices = list(spec.choices)
        if out not in choices:
            raise ConfigError(
                f"{where}: unknown value {value!r}. Fix: use one of {', '.join(map(str, choices))}"
            )
    if spec.check is not None:
        problem = spec.check(out)
        if problem:
            raise ConfigError(f"{where}: {problem}")
    return out


# generation settings a task's generation_kwargs or lm-eval's --gen_kwargs may carry, with the
# kind of value each must be; lm-eval passes them on unchecked (`temperature=abc` reached
# float() deep in a generation loop as a traceback)
_GEN_NUMBERS = {
    "temperature": (float, 0.0, "a number >= 0 (0 = greedy)"),
    "top_p": (float, 0.0, "a number in [0, 1]"),
    "min_p": (float, 0.0, "a number in [0, 1]"),
    "repetition_penalty": (float, 0.0, "a number > 0"),
    "top_k": (int, 0, "a whole number >= 0 (0 = no limit)"),
    "num_beams": (int, 1, "a whole number >= 1"),
    "max_gen_toks": (int, 1, "a whole number >= 1"),
    "max_new_tokens": (int, 1, "a whole number >= 1"),
}
_AT_MOST_ONE = ("top_p", "min_p")


def check_gen_kwargs(gen_kwargs: Any, where: str) -> None:
    """One ConfigError naming ``<where> '<key>'`` for a generation setting of the wrong kind or
    out of range (``temperature=abc``, ``top_p=2``, ``do_sample=maybe``). ``where`` says where
    the user set it (``--gen_kwargs``, or a wrapper's label for the task's generation_kwargs)."""
    import math

    if not isinstance(gen_kwargs, dict):
        return
    for key, value in gen_kwargs.items():
        label = f"{where} '{key}'"
        if key in _GEN_NUMBERS and value is not None:
            kind, low, wanted = _GEN_NUMBERS[key]
            try:
                if isinstance(value, bool):
                    raise ValueError
                number = float(value)
                if kind is int and not number.is_integer():
                    raise ValueError
            except (TypeError, ValueError, OverflowError):
                number = float("nan")
            bad = not math.isfinite(number) or number < low
            bad = bad or (key in _AT_MOST_ONE and number > 1) or (key == "repetition_penalty" and number <= 0)
            if bad:
                raise ConfigError(
                    f"{label}: {value!r} is not {wanted}. Fix: set {key} to {wanted} in --gen_kwargs "
                    "or the task's generation_kwargs"
                )
        elif key == "do_sample" and value is not None and not isinstance(value, bool):
            if str(value).strip().lower() not in _TRUE | _FALSE:
                raise ConfigError(
                    f"{label}: {value!r} is not true or false. Fix: pass do_sample=true or false"
                )
        elif key == "until" and value is not None:
            stops = value if isinstance(value, list) else [value]
            if not all(isinstance(s, str) for s in stops):
                raise ConfigError(
                    f"{label}: {value!r} is not a stop string or a list of them. "
                    'Fix: pass until=["\\n\\n"] (a JSON list of strings)'
                )


def parse_model_args(specs: Iterable[Arg], given: dict[str, Any], model: str) -> tuple[dict, dict]:
    """Split ``given`` into (validated effeval args, remaining args for the base class).

    Missing required args and bad values raise ``ConfigError``; unknown keys are returned in
    the second dict so the lm-eval base (e.g. HFLM's ``dtype``, ``max_length``) can take them.
    """
    ours: dict[str, Any] = {}
    rest = dict(given)
    for spec in specs:
        if spec.name in rest:
            ours[spec.name] = _coerce(spec, rest.pop(spec.name), model)
        elif spec.default is REQUIRED:
            raise ConfigError(
                f"{model}: missing model_args '{spec.name}'. Fix: add {spec.name}=... to --model_args"
                + (f" ({spec.help})" if spec.help else "")
            )
        else:
            ours[spec.name] = spec.default
    return ours, rest


# from_pretrained keywords HFLM forwards to transformers (anything else is a typo or another
# method's argument, which transformers would report as a deep TypeError from the model's __init__)
FROM_PRETRAINED_KWARGS = frozenset(
    {
        "attn_implementation",
        "low_cpu_mem_usage",
        "device_map",
        "quantization_config",
        "load_in_8bit",
        "load_in_4bit",
        "cache_dir",
        "local_files_only",
        "token",
        "use_safetensors",
        "variant",
    }
)


def reject_unknown_model_args(rest: dict, base: type, model: str, specs: Iterable[Arg]) -> None:
    """``rest`` (what ``parse_model_args`` left for the lm-eval base class) may hold only the base
    class's own parameters and the from_pretrained keywords it forwards; else one ConfigError."""
    import inspect

    params = set(inspect.signature(base.__init__).parameters) - {"self", "args", "kwargs"}
    unknown = sorted(set(rest) - params - FROM_PRETRAINED_KWARGS)
    if unknown:
        ours = ", ".join(a.name for a in specs)
        raise ConfigError(
            f"{model}: unknown model_args {', '.join(unknown)}. Fix: use {model}'s own ({ours}) or "
            f"{base.__name__}'s (e.g. dtype, max_length, batch_size, device, trust_remote_code)"
        )


def args_from(config_cls, exclude: Iterable[str] = (), **overrides: dict[str, Any]) -> list[Arg]:
    """model_args derived from a method's config dataclass (``effeval.config_fields``): one ``Arg``
    per field, with its type, default, help, choices and check; ``overrides`` replace attributes
    of one argument where the wrapper differs (e.g. a default taken from the task)."""
    from effeval.config_fields import MISSING, settings_of

    out = []
    for s in settings_of(config_cls, exclude=exclude):
        spec = Arg(
            s.name,
            s.type,
            REQUIRED if s.default is MISSING else s.default,
            choices=s.choices,
            check=s.check,
            help=s.help,
            allow_none=s.optional,
        )
        for key, value in overrides.get(s.name, {}).items():
            setattr(spec, key, value)
        out.append(spec)
    return out


def resolve_device(device: str | None) -> str:
    """``cuda*`` without CUDA -> ``cpu`` (logged); ``None`` -> best available."""
    import torch

    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        logger.info("effeval: device=%s requested but CUDA is not available; using cpu", device)
        return "cpu"
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        logger.info("effeval: device=mps requested but MPS is not available; using cpu")
        return "cpu"
    return device


def looks_like_local_path(name: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else (``./x``, ``/a/b``, ``a/b/c``) is a path."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name or ":" in name


def check_pretrained(
    value: Any,
    argument: str = "pretrained",
    model: str = "effeval",
    model_files: tuple[str, ...] = ("config.json",),
) -> Any:
    """A path that does not exist is a clear error; a hub id needs a network or the cache.

    A local directory must hold one of ``model_files`` (a wrapper with its own format, like
    SpeLLM's ``effeval_spellm.json``, passes its own marker)."""
    if not isinstance(value, str):
        return value  # an already-built model object
    where = _argument_label(argument, model)
    expanded = os.path.expanduser(value)
    if os.path.isdir(expanded):
        if not any(os.path.exists(os.path.join(expanded, name)) for name in model_files):
            raise ConfigError(
                f"{where}: directory {value!r} has no {' or '.join(model_files)}, so it is "
                "not a saved model. Fix: point it at a folder written by save_pretrained "
                "(e.g. one built by `effeval zoo build`)"
            )
        from effeval.model_files import folder_problem

        problem = folder_problem(expanded)  # header-only reads: before minutes of loading, not after
        if problem is not None:
            raise ConfigError(
                f"{where}: the model in {value!r} is damaged: {problem}. Fix: save it again with "
                "save_pretrained (a zoo model: `effeval zoo build NAME --force`)"
            )
        return expanded
    if looks_like_local_path(value) or os.path.exists(expanded):
        raise ConfigError(
            f"{where}: no model directory at {value!r}. "
            "Fix: pass an existing local directory (build tiny ones with `effeval zoo build`) or a hub id"
        )
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in _TRUE:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(value, "config.json")
        if not isinstance(cached, str):
            raise ConfigError(
                f"{where}: {value!r} is not a local directory and HF_HUB_OFFLINE=1 "
                "with no cached copy. Fix: pass a local directory, or unset HF_HUB_OFFLINE with a network"
            )
        return value
    _check_hub_id(value, argument, model)
    return value


def _argument_label(argument: str, model: str) -> str:
    """What the user typed: a command line flag as is, otherwise the wrapper's model_arg."""
    return argument if argument.startswith("--") else f"{model} model_args '{argument}'"


def _check_hub_id(value: str, argument: str, model: str) -> None:
    """Online: one short request instead of transformers' retries and a deep traceback. A hub
    that cannot be reached is fine when a cached copy exists (transformers falls back to it)."""
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    where = _argument_label(argument, model)
    try:
        HfApi().model_info(value, timeout=10)
    except RepositoryNotFoundError:
        raise ConfigError(
            f"{where}: no model {value!r} on the Hugging Face Hub (or it is private). "
            "Fix: check the id, `huggingface-cli login` for private models, or pass a local directory"
        ) from None
    except GatedRepoError:
        raise ConfigError(
            f"{where}: {value!r} is gated on the Hub. Fix: accept its licence on the model page and "
            "`huggingface-cli login`, or pass a local directory"
        ) from None
    except Exception as exc:  # no network, DNS, proxy, timeout
        if isinstance(try_to_load_from_cache(value, "config.json"), str):
            return
        raise ConfigError(
            f"{where}: the Hub cannot be reached for {value!r} ({type(exc).__name__}) and there is no "
            "cached copy. Fix: check the network (or HF_ENDPOINT), or pass a local directory"
        ) from None


# --------------------------------------------------------------------------- per-request randomness


@dataclass(frozen=True)
class RequestKey:
    """Where one request sits in the run: lm-eval's (task, doc_id, idx) and which repeat it is.

    ``doc_id`` is the document's index in the whole task (lm-eval shards documents across
    data-parallel ranks but keeps their global ids), so a request's key, and the random stream
    derived from it, is the same whatever the batch, the request order or the number of processes.
    ``padding`` marks the extra copies lm-eval appends on a rank with fewer requests (their
    answers are discarded); they are answered without work and left out of the counts."""

    task: str
    doc_id: int
    idx: int
    repeat: int
    padding: bool = False

    def seed(self, run_seed: int) -> int:
        text = f"{int(run_seed)}|{self.task}|{self.doc_id}|{self.idx}|{self.repeat}"
        return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little") >> 1

    def generator(self, run_seed: int, device: Any = None):
        import torch

        gen = (
            torch.Generator(device=device)
            if device is not None and str(device) != "cpu"
            else torch.Generator()
        )
        return gen.manual_seed(self.seed(run_seed))


def request_keys(requests: list) -> list[RequestKey]:
    """One ``RequestKey`` per request. lm-eval passes ``Instance`` objects and clones an
    instance ``repeats`` times in a row for pass@k / maj@k; the n-th occurrence of the same
    (task, doc_id, idx) is repeat n. Requests without lm-eval metadata (Python callers) are keyed
    by their position in the list."""
    seen: dict[tuple, int] = {}
    keys = []
    for position, request in enumerate(requests):
        task, doc_id = getattr(request, "task_name", None), getattr(request, "doc_id", None)
        if doc_id is None:
            keys.append(RequestKey("", position, 0, 0))
            continue
        ident = (str(task), int(doc_id), int(getattr(request, "idx", 0) or 0))
        repeat = seen.get(ident, 0)
        seen[ident] = repeat + 1
        repeats = getattr(request, "repeats", None)
        keys.append(RequestKey(*ident, repeat, padding=repeats is not None and repeat >= int(repeats)))
    return keys


# --------------------------------------------------------------------------- efficiency stats


@dataclass
class EfficiencyStats:
    """Counters for one wrapper instance. Sums merge across ranks; ``extra`` is method-specific."""

    wall_time_s: float = 0.0
    requests: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    per_request_type: dict[str, dict[str, float]] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)

    def add(self, **counts: float) -> None:
        for key, value in counts.items():
            self.counters[key] = self.counters.get(key, 0) + value

    def merge(self, other: EfficiencyStats) -> None:
        self.wall_time_s = max(self.wall_time_s, other.wall_time_s)  # ranks run concurrently
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.generated_tokens += other.generated_tokens
        for kind, vals in other.per_request_type.items():
            mine = self.per_request_type.setdefault(kind, {})
            for k, v in vals.items():
                mine[k] = max(mine.get(k, 0), v) if k == "wall_time_s" else mine.get(k, 0) + v
        for key, value in other.counters.items():
            self.counters[key] = self.counters.get(key, 0) + value

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "wall_time_s": round(self.wall_time_s, 6),
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "generated_tokens": self.generated_tokens,
            # generated tokens per second of request time; None when nothing was generated
            "tokens_per_s": (self.generated_tokens / self.wall_time_s)
            if self.wall_time_s > 0 and self.generated_tokens > 0
            else None,
            "per_request_type": self.per_request_type,
        }
        out.update(self.counters)
        return out


def track_requests(kind: str):
    """Decorator for ``loglikelihood`` / ``generate_until`` / ...: time the call, count requests,
    then merge the stats across data-parallel ranks (every rank calls these, so it is safe)."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(self, requests, *args, **kwargs):
            start = time.perf_counter()
            before = self._effeval_local.generated_tokens
            out = fn(self, requests, *args, **kwargs)
            elapsed = time.perf_counter() - start
            local = self._effeval_local
            # lm-eval's padding copies (uneven data-parallel shards) are not requests of the run:
            # not counted, and answered with their original's answer (the wrappers skip the work)
            keys = request_keys(requests)
            counted = sum(not key.padding for key in keys)
            if counted < len(requests) and isinstance(out, list):
                answered: dict[int, Any] = {}
                for i, (request, key) in enumerate(zip(requests, keys)):
                    if key.padding:
                        out[i] = answered.get(id(request), out[i])
                    else:
                        answered[id(request)] = out[i]
            local.wall_time_s += elapsed
            local.requests += counted
            slot = local.per_request_type.setdefault(kind, {"requests": 0, "wall_time_s": 0.0})
            slot["requests"] += counted
            slot["wall_time_s"] += elapsed
            if kind == "generate_until":
                slot["generated_tokens"] = slot.get("generated_tokens", 0) + local.generated_tokens - before
            self._effeval_sync_stats()
            return out

        return inner

    return wrap


class EffevalWrapperMixin:
    """Mix into an lm-eval LM subclass (before it in the MRO).

    Subclasses set ``MODEL_NAME`` and ``ARGS`` and call ``self._effeval_init(args)`` in their
    ``__init__``; they add counters with ``self.stats.add(...)`` and report method settings in
    ``effeval_method_info()``.
    """

    MODEL_NAME = "effeval"
    METHOD = "none"
    ARGS: list[Arg] = []

    def _effeval_init(self, method_args: dict[str, Any]) -> None:
        self._effeval_local = EfficiencyStats()
        self._effeval_merged = EfficiencyStats()
        self.effeval_args = dict(method_args)
        self._effeval_cpu_data_parallel()

    def _effeval_cpu_data_parallel(self) -> None:
        """HFLM turns ``accelerate launch`` into data parallelism only when it sees GPUs; on CPU
        every process would evaluate every document. With more than one process, each takes
        its shard (lm-eval splits documents by rank; gathering uses gloo)."""
        accelerator = getattr(self, "accelerator", None)
        if accelerator is not None and accelerator.num_processes > 1 and getattr(self, "_world_size", 1) == 1:
            self._rank = accelerator.process_index
            self._world_size = accelerator.num_processes

    @property
    def stats(self) -> EfficiencyStats:
        return self._effeval_local

    def _effeval_sync_stats(self) -> None:
        world = getattr(self, "world_size", 1) or 1
        if world > 1:
            import torch.distributed as dist

            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, self._effeval_local)
            merged = EfficiencyStats()
            for one in gathered:
                merged.merge(one)
            self._effeval_merged = merged
        else:
            self._effeval_merged = self._effeval_local

    def effeval_method_info(self) -> dict[str, Any]:
        """Method-specific static facts (vocab sizes, parameter counts, ...). Override."""
        return {}

    def effeval_info(self) -> dict[str, Any]:
        return {
            "model_name": self.MODEL_NAME,
            "method": {"name": self.METHOD, "args": _jsonable(self.effeval_args)},
            "efficiency": {
                **self._effeval_merged.summary(),
                "processes": int(getattr(self, "world_size", 1) or 1),  # data-parallel ranks merged here
                **_jsonable(self.effeval_method_info()),
            },
        }

    def get_model_info(self) -> dict:
        try:
            info = super().get_model_info()  # type: ignore[misc]
        except Exception:  # HFLM may try a hub lookup for the sha; never fail the run for it
            info = {}
        info = dict(info or {})
        info["effeval"] = self.effeval_info()
        return info


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def not_implemented_yet(model_name: str, issue: str, module: str, class_name: str) -> type:
    """An lm-eval model class that fails with a clear message when instantiated.

    ``module``/``class_name`` must match the registry placeholder so that lm-eval's
    placeholder -> class upgrade accepts it."""
    from lm_eval.api.model import LM

    class _NotYet(LM):
        def __init__(self, *args, **kwargs):
            raise NotImplementedYetError(
                f"--model {model_name}: not implemented yet in this effeval version ({issue}). "
                "Fix: use a released wrapper (see `effeval lm --list-models`)"
            )

        def loglikelihood(self, requests):  # pragma: no cover
            raise NotImplementedError

        def loglikelihood_rolling(self, requests):  # pragma: no cover
            raise NotImplementedError

        def generate_until(self, requests):  # pragma: no cover
            raise NotImplementedError

    _NotYet.__module__ = module
    _NotYet.__name__ = _NotYet.__qualname__ = class_name
    return _NotYet
