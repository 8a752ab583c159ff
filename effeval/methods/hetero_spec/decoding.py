"""The decoding machinery every algorithm shares, so AR and the speculative methods differ only
in how tokens are proposed:

- ``Coins``: the one randomness interface: ``accept(prob)`` and ``categorical(probs)`` (plus
  ``draw_residual``, built on them). The real one draws from a seeded ``torch.Generator``; tests
  substitute one that enumerates every branch with its exact probability (that is how
  losslessness is checked exactly, not by sampling).
- ``CachedLM``: forward passes with a KV cache that is cropped to the longest common prefix when
  the sequence changes (rejected drafts, re-tokenized drafter contexts); counts calls.
- ``Stopper``: EOS, stop strings (matched on the bytes of the generated text, in context) and
  ``max_new_tokens``; tokens are pushed one at a time, so a run that accepts five tokens in one
  step stops exactly where AR would.
- ``choose``: the target's own choice at one position (argmax, or a sample of ``target_probs``).
- ``DecodeSession``: the set-up every algorithm starts from (clock, coins, statistics,
  vocabularies, stopper, cached models, the drafter's context) and the one way a run ends;
  ``algorithm`` turns ``decode(run, num_draft_tokens, **options)`` into the public ``generate``.
"""

from __future__ import annotations

import functools
import time
from functools import cached_property

from effeval.errors import ConfigError
from effeval.methods.hetero_spec.common import GenerationResult, SamplingConfig, SpecStats, target_probs
from effeval.methods.hetero_spec.config import DRAFT_SCHEDULES, NUM_DRAFT_TOKENS, check
from effeval.methods.hetero_spec.vocab import DrafterContext, Vocab


class Coins:
    """Randomness from a seeded ``torch.Generator`` (CPU, so results do not depend on the device)."""

    def __init__(self, generator=None, seed: int = 0):
        import torch

        if generator is None:
            generator = torch.Generator().manual_seed(seed)
        self.generator = generator

    def accept(self, prob: float) -> bool:
        """True with probability ``prob``."""
        import torch

        if prob >= 1.0:
            return True
        if prob <= 0.0:
            return False
        return bool(torch.rand((), generator=self.generator, dtype=torch.float64).item() < prob)

    def categorical(self, probs) -> int:
        import torch

        # Inverse CDF over the support (torch.multinomial is ~100x slower on a 131k vocabulary).
        probs = probs.detach().to("cpu", torch.float64).flatten()
        support = torch.nonzero(probs > 0).flatten()
        cdf = torch.cumsum(probs[support], 0)
        u = torch.rand((), generator=self.generator, dtype=torch.float64) * cdf[-1]
        k = min(int(torch.searchsorted(cdf, u, right=True)), len(support) - 1)
        return int(support[k])


def as_coins(generator) -> Coins:
    """A ``Coins``-like object from ``None``, a ``torch.Generator`` or an existing ``Coins``."""
    if generator is not None and hasattr(generator, "categorical") and hasattr(generator, "accept"):
        return generator
    return Coins(generator)


def draw_residual(coins, p, q_of) -> int:
    """A draw from the residual ``(p − q)₊ / Σ(p − q)₊`` by rejection from ``p`` (keep ``v`` with
    probability ``max(0, 1 − q(v)/p(v))``), so ``q`` is needed only at drawn tokens. Coins that
    know the residual's law exactly (law enumeration) answer it in one step (``coins.residual``)."""
    own = getattr(coins, "residual", None)
    if own is not None:
        return own(p, q_of)
    while True:
        v = coins.categorical(p)
        if coins.accept(1.0 - q_of(v) / float(p[v])):
            return v


class CachedLM:
    """One causal LM with a KV cache keyed by the token ids it has seen."""

    def __init__(self, model):
        self.model = model
        self.ids: list[int] = []
        self.cache = None
        self.calls = 0
        self.forward_s = 0.0  # time inside the model's forward passes (the rest is overhead)
        self.device = getattr(model, "device", "cpu")
        # transformers 5 renamed ``past_key_values`` to ``cache`` (the old name still works, with a warning).
        import inspect

        try:
            params = inspect.signature(model.forward).parameters
        except (TypeError, ValueError, AttributeError):
            params = {}
        self.cache_arg = "cache" if "cache" in params else "past_key_values"
        # Only the rows we read go through the output layer (262k columns for Gemma 3: the
        # prompt's rows alone would cost more than the whole decoding).
        self.keeps_logits = "logits_to_keep" in params

    def common_prefix(self, ids: list[int]) -> int:
        """Length of the common prefix of ``ids`` and the cached ids, in C-speed slices (the
        usual case, the cache being a prefix, costs one comparison)."""
        old = self.ids
        n = min(len(old), len(ids))
        if old[:n] == ids[:n]:
            return n
        lo, hi = 0, n  # old[:lo] == ids[:lo], old[:hi] != ids[:hi]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if old[lo:mid] == ids[lo:mid]:
                lo = mid
            else:
                hi = mid
        return lo

    def next_logits(self, ids: list[int], n: int):
        """Logits ``[n, V]`` of the last ``n`` positions of ``ids`` (row j predicts the token after
        ``ids[:len(ids)-n+j+1]``), reusing the cache for the common prefix with the last call."""
        import torch

        started = time.perf_counter()
        keep = min(self.common_prefix(ids), len(ids) - n)
        if self.cache is not None and keep < len(self.ids):
            if keep == 0:
                self.cache = None
            else:
                try:
                    # A negative count removes that many trailing tokens in every transformers
                    # version; 5.x refuses a positive length (the old form), which used to send
                    # every rejected draft down the recompute-everything path below.
                    self.cache.crop(keep - len(self.ids))
                except Exception:  # a cache without crop (e.g. recurrent state): recompute
                    self.cache, keep = None, 0
        if self.cache is None:
            keep = 0
        feed = torch.tensor([ids[keep:]], dtype=torch.long, device=self.device)
        extra = {"logits_to_keep": n} if self.keeps_logits else {}
        with torch.no_grad():
            out = self.model(input_ids=feed, use_cache=True, **{self.cache_arg: self.cache}, **extra)
        cache = getattr(out, "cache", None)
        self.cache = cache if cache is not None else getattr(out, "past_key_values", None)
        self.ids = list(ids)
        self.calls += 1
        logits = out.logits[0, -n:]
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()
        self.forward_s += time.perf_counter() - started
        return logits


# Heuristic schedule's ceiling: a verify of more rows costs more than it saves on a CPU, and
# transformers' own schedule is unbounded.
MAX_SCHEDULED_DRAFT = 16


class DraftLength:
    """How many tokens a round drafts, and when it stops early.

    ``schedule="constant"``: ``k`` every round; ``"heuristic"`` (transformers'): ``k += 2`` after a
    round whose drafts were all accepted, ``k -= 1`` (not below 1) otherwise. ``confidence > 0``:
    the round stops drafting right after a drafted token whose drafter probability (of the law it
    was drafted from) is below ``confidence``; that token is kept and verified. Both decisions
    read only the history and the drafter's own outputs so far (stopping times), never the coins
    of the positions being verified, so each drafted token is still drawn from the law it is
    verified against and every algorithm stays lossless."""

    def __init__(self, k: int, schedule: str = "constant", confidence: float = 0.0):
        check("num_draft_tokens", int(k))
        check("draft_confidence", float(confidence))
        if schedule not in DRAFT_SCHEDULES:
            raise ConfigError(
                f"draft_schedule={schedule}: unknown. Fix: use one of {', '.join(DRAFT_SCHEDULES)}"
            )
        self.initial, self.schedule, self.confidence = int(k), schedule, float(confidence)
        self.reset()

    def reset(self) -> None:
        """Back to the first round's length (a new generation)."""
        self.k, self.early_stops = self.initial, 0

    def stop_after(self, prob: float) -> bool:
        """True when drafting stops after a token the drafter gave probability ``prob``."""
        if self.confidence > 0 and prob < self.confidence:
            self.early_stops += 1
            return True
        return False

    def update(self, drafted: int, accepted: int) -> None:
        if self.schedule != "heuristic":
            return
        if drafted > 0 and accepted == drafted:
            self.k = min(self.k + 2, MAX_SCHEDULED_DRAFT)
        else:
            self.k = max(1, self.k - 1)

    def record(self, stats: SpecStats) -> None:
        stats.extra["draft_early_stops"] = self.early_stops
        stats.extra["draft_length_final"] = self.k


def choose(logits, config: SamplingConfig, coins: Coins) -> int:
    """The target's own next token: argmax (greedy) or a sample of its processed distribution."""
    if not config.do_sample:
        return int(logits.argmax().item())
    return coins.categorical(target_probs(logits, config))


class Stopper:
    """Accumulates emitted target tokens and decides when generation ends."""

    def __init__(self, config: SamplingConfig, vocab: Vocab):
        self.config = config
        self.vocab = vocab
        self.eos = set(config.eos_token_ids)
        self.stops = [s.encode("utf-8") for s in config.stop_strings if s]
        self.tokens: list[int] = []
        self.data = bytearray()
        self.cut: int | None = None
        self.stopped_by: str | None = None
        self.done = config.max_new_tokens <= 0
        if self.done:
            self.stopped_by = "length"

    @property
    def generated(self) -> bytes:
        return bytes(self.data)

    def push(self, token: int) -> bool:
        """Add one token; True when generation is finished (then nothing more may be pushed)."""
        assert not self.done, "push after the stopper finished"
        if token in self.eos:
            self.done, self.stopped_by = True, "eos"
            return True
        self.tokens.append(int(token))
        before = len(self.data)
        piece = self.vocab.bytes[token] if 0 <= token < len(self.vocab.bytes) else None
        self.data += piece or b""
        hits = [i for s in self.stops if (i := self.data.find(s, max(0, before - len(s) + 1))) >= 0]
        if hits:
            self.cut = min(hits)
            self.done, self.stopped_by = True, "stop_string"
        elif len(self.tokens) >= self.config.max_new_tokens:
            self.done, self.stopped_by = True, "length"
        return self.done

    def result(self, stats: SpecStats, started: float) -> GenerationResult:
        stats.new_tokens = len(self.tokens)
        stats.wall_time_s = time.perf_counter() - started
        data = self.generated if self.cut is None else self.generated[: self.cut]
        return GenerationResult(
            self.tokens, data.decode("utf-8", errors="replace"), stats, self.stopped_by or "length"
        )


def record_overhead(stats: SpecStats, started: float, forward_s: float, drafter_context=None) -> None:
    """Time outside the forward passes (the algorithm's own per-step work), and how the
    drafter's context was kept up to date (look-behind window vs full re-encodings)."""
    stats.extra["forward_s"] = forward_s
    stats.extra["overhead_s"] = time.perf_counter() - started - forward_s
    if drafter_context is not None:
        stats.extra["context_window_encodes"] = drafter_context.window_encodes
        stats.extra["context_full_encodes"] = drafter_context.full_encodes


def logits_size(model) -> int:
    """Width of the model's logits (may exceed the tokenizer's length: padded embeddings)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None and getattr(head, "weight", None) is not None:
        return int(head.weight.shape[0])
    return int(model.config.vocab_size)


def prompt_text(target_tok, prompt_ids) -> str:
    """The prompt as text for the drafter (special tokens dropped; SentencePiece's dummy prefix
    is removed by decoding the whole prompt at once)."""
    return target_tok.decode(list(prompt_ids), skip_special_tokens=True)


class DecodeSession:
    """The set-up every algorithm starts from and the one way its run ends.

    Holds the wall clock, the coins, the statistics, the target's vocabulary and stopper, the ids
    decoded so far, and, made on first use, the drafter's vocabulary, the KV-cached target and
    drafter and the drafter's context (AR never builds a drafter context, ``hf`` no cached
    model). ``finish()`` records calls and the time outside forward passes, and returns the
    result. Forward passes made outside the cached models (SLRS's batched DP levels) add to
    ``extra_forward_s`` / ``extra_drafter_calls``."""

    def __init__(
        self, target, target_tok, drafter, drafter_tok, prompt_ids, config: SamplingConfig, generator
    ):
        self.started = time.perf_counter()
        self.target, self.target_tok, self.drafter, self.drafter_tok = (
            target,
            target_tok,
            drafter,
            drafter_tok,
        )
        self.config = config
        self.coins = as_coins(generator)
        self.stats = SpecStats()
        self.t_vocab = Vocab.of(target_tok)
        self.stopper = Stopper(config, self.t_vocab)
        self.prompt_ids = [
            int(i) for i in (prompt_ids.tolist() if hasattr(prompt_ids, "tolist") else prompt_ids)
        ]
        self.ids = list(self.prompt_ids)  # prompt + emitted target tokens
        self.extra_forward_s = 0.0
        self.extra_drafter_calls = 0

    @cached_property
    def d_vocab(self) -> Vocab:
        return Vocab.of(self.drafter_tok)

    @cached_property
    def target_lm(self) -> CachedLM:
        return CachedLM(self.target)

    @cached_property
    def drafter_lm(self) -> CachedLM:
        return CachedLM(self.drafter)

    @cached_property
    def d_context(self) -> DrafterContext:
        return DrafterContext(self.d_vocab, prompt_text(self.target_tok, self.prompt_ids))

    def emit(self, token: int) -> bool:
        """Push one target token (stopper and ids); True when generation is finished."""
        done = self.stopper.push(token)
        self.ids.append(token)
        return done

    def verify(self, draft: list[int], target_choice) -> None:
        """One verification step: emit ``target_choice(i)`` (the target's own token at draft
        position i, given everything before it) while it equals ``draft[i]``; the choice at the
        first mismatch, or after a fully accepted draft, is emitted too. Records the step."""
        accepted = 0
        for i in range(len(draft) + 1):
            token = target_choice(i)
            done = self.emit(token)
            matched = i < len(draft) and token == draft[i]
            accepted += matched
            if done or not matched:
                break
        self.stats.drafted += len(draft)
        self.stats.accepted += accepted
        self.stats.accepted_lengths.append(accepted)

    def finish(self) -> GenerationResult:
        made = self.__dict__  # the cached properties built during the run
        lms = [made[name] for name in ("target_lm", "drafter_lm") if name in made]
        if "target_lm" in made:
            self.stats.target_calls = made["target_lm"].calls
        if "drafter_lm" in made or self.extra_drafter_calls:
            self.stats.drafter_calls = self.extra_drafter_calls + (
                made["drafter_lm"].calls if "drafter_lm" in made else 0
            )
        if lms:  # the time outside our own forward passes (``hf`` runs transformers' loop instead)
            forward_s = self.extra_forward_s + sum(lm.forward_s for lm in lms)
            record_overhead(self.stats, self.started, forward_s, made.get("d_context"))
        return self.stopper.result(self.stats, self.started)


def algorithm(decode):
    """The public ``generate(target, target_tok, drafter, drafter_tok, prompt_ids, config, *,
    num_draft_tokens, generator, **options) -> GenerationResult`` of an algorithm written as
    ``decode(run: DecodeSession, num_draft_tokens, **options)``: every algorithm's set-up is this
    one ``DecodeSession``."""

    @functools.wraps(decode)
    def generate(
        target,
        target_tok,
        drafter,
        drafter_tok,
        prompt_ids,
        config: SamplingConfig,
        *,
        num_draft_tokens: int = NUM_DRAFT_TOKENS,
        generator=None,
        **options,
    ) -> GenerationResult:
        run = DecodeSession(target, target_tok, drafter, drafter_tok, prompt_ids, config, generator)
        return decode(run, num_draft_tokens, **options)

    return generate
