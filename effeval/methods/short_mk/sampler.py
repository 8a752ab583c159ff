"""Batched sampling of k chains for one prompt that really stops early (short-m@k).

One batch of k rows shares the prompt: the prompt is run once (one forward pass) and its KV cache
is expanded to k rows (``StepBackend.prefill``). Every decode step then advances all live rows by
one token in ONE forward pass; no padding is needed because all rows started from the same prompt
and move in lockstep. A row leaves the batch (its cache rows are dropped) when it is done:

- thinking ends when the chain emits the end-of-thinking marker (``</think>``; detected on the
  chain's decoded tail, since a SentencePiece tokenizer spells it with several tokens; by id when
  the tokenizer has it as one token) or EOS (the chain is over) or hits ``max_think_tokens``;
- ``answer_phase="continue"``: a chain that finished thinking keeps going after the marker for at
  most ``answer_tokens`` tokens (or until EOS / a stop string); ``"in_chain"``: no continuation,
  the answer is extracted from the chain as it stands.

short-m@k: the moment m chains have finished thinking, every chain still thinking is aborted and
leaves the batch; only the m finished chains (and only while they write their answer) cost further
forward passes. When more chains finish on the same step than are needed, the m are picked by a
seeded choice and the others stop too. ``majority`` / ``longest`` run all k chains to the end;
``random`` generates one chain (a uniform pick among k i.i.d. chains has the same distribution).

Each chain samples with its own ``torch.Generator`` (seeded from ``seed``, the prompt and the chain
index), so chain i is the same token sequence whatever the strategy and whichever rows are still
in the batch: a short-m@k run is a prefix of the majority run on the same seed (up to float
differences of batched matmuls).

``measure_savings=True`` keeps aborted chains running as "shadow" rows to learn how many tokens
generating all k to the end would have cost; shadow rows never influence the result and the
forward passes they need are counted separately.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from effeval.config_fields import setting
from effeval.errors import ConfigError
from effeval.methods.short_mk.answers import Extractor, make_extractor, make_normalizer
from effeval.methods.short_mk.voting import (
    ANSWER_PHASES,
    STRATEGIES,
    Chain,
    Vote,
    check_strategy,
    decide,
    make_generator,
    pick_n,
    vote,
)

logger = logging.getLogger(__name__)


class StepBackend(Protocol):
    """A model that can run one prompt then step a shrinking batch of rows.

    ``prefill(prompt_ids, n)`` -> next-token logits ``[n, vocab]`` (one forward pass).
    ``decode(tokens, keep)`` -> logits ``[len(keep), vocab]``: first keep only the batch rows
    ``keep`` (indices into the previous batch), then feed them ``tokens`` (one per kept row).
    """

    def prefill(self, prompt_ids: Sequence[int], n: int): ...

    def decode(self, tokens, keep: Sequence[int]): ...


@dataclass
class ShortMKConfig:
    """Every short-m@k setting, with its help (the lm-eval model_args are derived from it)."""

    k: int = setting(8, help="number of chains sampled per question")
    m: int = setting(1, help="short-m@k: vote among the first m chains to finish thinking")
    strategy: str = setting("short", choices=STRATEGIES, help="which finished chains vote")
    think_end: str = setting("</think>", help="end-of-thinking marker (a string; several tokens is fine)")
    answer: str = setting("boxed", help="answer extractor: boxed | number | mc | regex:<pattern>")
    normalize: str = setting(
        "math", choices=("exact", "math", "numeric"), help="answer normaliser of the vote"
    )
    answer_phase: str = setting(
        "continue",
        choices=ANSWER_PHASES,
        help="continue: write the answer after the marker; in_chain: the answer is already in the chain",
    )
    answer_tokens: int = setting(
        64,
        help="answer budget after the marker",
        check=lambda x: None if x >= 0 else f"must be >= 0, got {x}. Fix: pass e.g. answer_tokens=64",
    )
    max_think_tokens: int = setting(32768, help="thinking budget per chain")
    temperature: float = setting(0.7, help="sampling temperature")
    top_p: float = setting(0.95, help="nucleus sampling mass")
    top_k: int = setting(0, help="top-k sampling (0: off)")
    do_sample: bool = setting(True, help="sample (false: greedy)")
    stop: tuple[str, ...] = setting((), help="stop strings, applied to the answer part only")
    seed: int = setting(1234, help="seed of the chains' sampling and the tie-breaks")
    measure_savings: bool = setting(
        False, help="keep aborted chains running (booked apart) to measure tokens saved"
    )

    def validate(self) -> None:
        check_strategy(self.strategy, self.k, self.m)
        if self.answer_phase not in ANSWER_PHASES:
            raise ConfigError(
                f"answer_phase: unknown value {self.answer_phase!r}. Fix: use continue (generate the answer "
                "after the marker) or in_chain (the answer is already in the chain)"
            )
        if self.answer_tokens < 0:
            raise ConfigError(
                f"answer_tokens: must be >= 0, got {self.answer_tokens}. Fix: pass e.g. answer_tokens=64"
            )
        if self.max_think_tokens < 1:
            raise ConfigError(
                f"max_think_tokens: must be >= 1, got {self.max_think_tokens}. Fix: pass e.g. max_think_tokens=32768"
            )
        if self.do_sample and self.temperature <= 0:
            raise ConfigError(
                f"temperature: must be > 0 when sampling, got {self.temperature}. Fix: pass temperature>0 or do_sample=false"
            )
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p: must be in (0, 1], got {self.top_p}. Fix: pass e.g. top_p=0.95")
        make_extractor(self.answer)
        make_normalizer(self.normalize)


@dataclass
class ShortMKResult:
    text: str  # full text of the chosen chain (thinking + marker + answer)
    chains: list[Chain]
    vote: Vote
    forward_passes: int  # passes the method needed (prefill + decode steps)
    shadow_forward_passes: int = 0  # extra passes spent only on measure_savings
    wall_time_s: float = 0.0
    prompt_tokens: int = 0
    stop_step: int | None = None  # decode step at which the early stop fired (None: no early stop)
    # step_wall_s[s - 1]: seconds from the start (prefill included) until the tokens of decode step s
    # were sampled and checked. A run that stops after step T costs step_wall_s[T - 1] (up to the final
    # text decoding): the pool analysis attributes wall time to short-m@k by indexing a majority run.
    step_wall_s: list[float] = field(default_factory=list)

    @property
    def total_tokens(self) -> int:
        return sum(c.total_tokens for c in self.chains)

    def efficiency(self) -> dict[str, Any]:
        """Per-request cost numbers (summed over requests by the wrapper)."""
        finished = [c for c in self.chains if c.finished]
        aborted = [c for c in self.chains if c.status == "aborted"]
        chosen = self.chains[self.vote.chosen]
        out = {
            "chains": len(self.chains),
            "chains_finished": len(finished),
            "chains_aborted": len(aborted),
            "chains_truncated": sum(c.status == "truncated" for c in self.chains),
            "thinking_tokens_finished": sum(c.think_tokens for c in finished),
            "thinking_tokens_aborted": sum(c.think_tokens for c in aborted),
            "thinking_tokens_all": sum(c.think_tokens for c in self.chains),
            "thinking_tokens_chosen": chosen.think_tokens,
            "answer_tokens": sum(c.answer_tokens for c in self.chains),
            "total_generated_tokens": self.total_tokens,
            "forward_passes": self.forward_passes,
            "vote_margin": self.vote.margin,
        }
        if all(c.full_total_tokens is not None for c in self.chains):
            out["counterfactual_total_tokens"] = sum(c.full_total_tokens for c in self.chains)
            out["counterfactual_thinking_tokens"] = sum(c.full_think_tokens for c in self.chains)
        return out

    def log(self, with_text: bool = False) -> dict[str, Any]:
        return {
            "chosen": self.vote.chosen,
            "vote": self.vote.log(),
            "stop_step": self.stop_step,
            "forward_passes": self.forward_passes,
            "chains": [c.log(with_text) for c in self.chains],
            **{k: v for k, v in self.efficiency().items() if k.startswith("counterfactual")},
        }


REGEX_PREFIX = "regex:"
REGEX_WINDOW_TOKENS = 48

# A final answer written out, for models with no thinking tags (the whole response is the chain):
# a closed \boxed{...} (one level of nested braces), or "the (final) answer is <number>" (or a
# fraction a/b) followed by something that ends it (so "42" is not cut to "4", "3/4" not to "3",
# and "2^3" is not a final number at all).
FINAL_ANSWER_PATTERN = (
    r"\\boxed\{(?:[^{}]|\{[^{}]*\})*\}"
    r"|[Tt]he (?:final )?answer is:?\s*\$?-?\d[\d,]*(?:\.\d+)?(?:/\d+)?(?:[^\d.,/^]|[.,]\D)"
)


class ThinkEndDetector:
    """Detects the end-of-thinking marker at the END of a chain's token list.

    One-token markers are matched by id; others on the decoded tail of ``window`` tokens, which is
    enough because a marker of b UTF-8 bytes spans at most b tokens (byte fallback) and it must end
    at the newest token (otherwise it was detected one step earlier).

    ``regex:PATTERN`` (for models without thinking tags, where the chain is the whole response and
    it finishes with a final-answer pattern such as ``FINAL_ANSWER_PATTERN``): a match anywhere in
    the decoded last ``REGEX_WINDOW_TOKENS`` tokens. A match that was complete one step earlier
    would have stopped the chain then, so the first hit is where the pattern completes."""

    def __init__(self, marker: str, encode: Callable[[str], list[int]], decode: Callable[[list[int]], str]):
        self.regex = None
        if marker and marker.startswith(REGEX_PREFIX):
            import re

            try:
                self.regex = re.compile(marker[len(REGEX_PREFIX) :])
            except re.error as exc:
                raise ConfigError(
                    f"think_end: {marker!r} is not a valid regular expression ({exc}). Fix: pass regex:PATTERN "
                    "with a Python regular expression, or a literal marker such as </think>"
                ) from None
            self.marker, self.decode, self.token_id, self.window = marker, decode, None, REGEX_WINDOW_TOKENS
            return
        if not marker or not marker.strip():
            raise ConfigError(
                "think_end: empty marker. Fix: pass the model's end-of-thinking string, e.g. think_end=</think>"
            )
        self.marker = marker
        self.decode = decode
        ids = list(encode(marker))
        if not ids or marker not in decode(ids):
            raise ConfigError(
                f"think_end: the tokenizer cannot represent {marker!r} (it encodes to {ids[:8]} which decodes to "
                f"{decode(ids)!r}). Fix: pass a marker this model's tokenizer can write, e.g. think_end=</think>"
            )
        self.token_id = ids[0] if len(ids) == 1 and decode(ids) == marker else None
        self.window = len(marker.encode("utf-8")) + 2

    def hit(self, tokens: list[int]) -> bool:
        if not tokens:
            return False
        if self.regex is not None:
            return self.regex.search(self.decode(tokens[-self.window :])) is not None
        if self.token_id is not None and tokens[-1] == self.token_id:
            return True
        return self.marker in self.decode(tokens[-self.window :])


def request_seed(seed: int, prompt_ids: Sequence[int]) -> int:
    """Seed of one request: the user's seed and the prompt, independent of request order."""
    digest = hashlib.sha256(f"{seed}|{','.join(map(str, prompt_ids))}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _filter_logits(logits, cfg: ShortMKConfig):
    import torch

    logits = logits.float() / cfg.temperature
    if cfg.top_k and cfg.top_k > 0:
        kth = torch.topk(logits, min(cfg.top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if cfg.top_p < 1.0:
        # Sorting a 32k-130k vocabulary every step dominates CPU time; the nucleus nearly always
        # lies in the top few hundred tokens, and when their mass reaches top_p the result is exact.
        probs = torch.softmax(logits, dim=-1)
        top = torch.topk(probs, min(256, logits.shape[-1]), dim=-1)
        if bool((top.values.sum(dim=-1) >= cfg.top_p).all()):
            cum = top.values.cumsum(dim=-1)
            keep = (cum - top.values) < cfg.top_p
            kept_logits = logits.gather(-1, top.indices).masked_fill(~keep, float("-inf"))
            return torch.full_like(logits, float("-inf")).scatter(-1, top.indices, kept_logits)
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        remove = cum - torch.softmax(sorted_logits, dim=-1) >= cfg.top_p  # keep the token that crosses top_p
        sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


def sample_tokens(
    logits, chain_ids: Sequence[int], generators: dict[int, Any], cfg: ShortMKConfig
) -> list[int]:
    """One token per row; row r uses the generator of chain ``chain_ids[r]``."""
    import torch

    if not cfg.do_sample:
        return logits.argmax(dim=-1).tolist()
    probs = torch.softmax(_filter_logits(logits, cfg), dim=-1)
    return [int(torch.multinomial(probs[r], 1, generator=generators[c])) for r, c in enumerate(chain_ids)]


@dataclass
class _Row:
    chain: Chain
    tokens: list[int] = field(default_factory=list)
    think_len: int = 0  # tokens of the thinking part (for cutting the answer text)
    phase: str = "think"  # think | answer | done
    shadow: bool = False
    stopped: tuple | None = None  # chain state when halted (restored after a shadow run)


def sample_short_mk(
    backend: StepBackend,
    prompt_ids: Sequence[int],
    cfg: ShortMKConfig,
    *,
    decode: Callable[[list[int]], str],
    encode: Callable[[str], list[int]],
    eos_ids: Sequence[int] = (),
    extractor: Extractor | None = None,
    detector: ThinkEndDetector | None = None,
) -> ShortMKResult:
    """Generate chains for one prompt with ``cfg.strategy`` and return the decision + per-chain log."""
    import torch

    start = time.perf_counter()
    cfg.validate()
    extractor = extractor or make_extractor(cfg.answer)
    normalize = make_normalizer(cfg.normalize)
    detector = detector or ThinkEndDetector(cfg.think_end, encode, decode)
    eos = set(int(e) for e in eos_ids if e is not None)
    base_seed = request_seed(cfg.seed, prompt_ids)
    n = 1 if cfg.strategy == "random" else cfg.k
    early = cfg.strategy in ("short", "shortest")
    need = 1 if cfg.strategy == "shortest" else cfg.m
    device_gen = {}
    rows = [_Row(Chain(index=i)) for i in range(n)]
    decision_gen = make_generator(base_seed ^ 0x5EED)

    logits = backend.prefill(list(prompt_ids), n)
    device = logits.device
    for i in range(n):
        g = torch.Generator(device=device) if device.type != "cpu" else torch.Generator()
        device_gen[i] = g.manual_seed((base_seed + 7919 * (i + 1)) % (2**63))
    passes, shadow_passes = 1, 0
    live = list(range(n))  # row ids in batch order
    finished_order: list[int] = []
    stop_step = None
    step = 0
    step_wall_s: list[float] = []
    while live:
        step += 1
        new_tokens = sample_tokens(logits, live, device_gen, cfg)
        just_finished = []
        for rid, tok in zip(live, new_tokens):
            row = rows[rid]
            c = row.chain
            row.tokens.append(tok)
            if row.phase == "think":
                c.think_tokens += 1
                if tok in eos:
                    c.status, c.finish_step, row.phase = "eos", step, "done"
                    row.think_len = len(row.tokens) - 1
                    just_finished.append(rid)
                elif detector.hit(row.tokens):
                    c.status, c.finish_step = "finished", step
                    row.think_len = len(row.tokens)
                    row.phase = (
                        "answer" if cfg.answer_phase == "continue" and cfg.answer_tokens > 0 else "done"
                    )
                    just_finished.append(rid)
                elif c.think_tokens >= cfg.max_think_tokens:
                    c.status, row.phase = "truncated", "done"
                    row.think_len = len(row.tokens)
            elif row.phase == "answer":
                c.answer_tokens += 1
                if tok in eos or c.answer_tokens >= cfg.answer_tokens:
                    row.phase = "done"
                elif cfg.stop and any(s in decode(row.tokens[row.think_len :]) for s in cfg.stop):
                    row.phase = "done"
        just_finished = [rid for rid in just_finished if not rows[rid].shadow]
        if early and stop_step is None:
            missing = need - len(finished_order)
            if len(just_finished) > missing:
                # More chains finished on this step than needed: seeded pick; the rest stop too.
                picked = pick_n(sorted(just_finished), missing, decision_gen)
                for rid in just_finished:
                    if rid not in picked:
                        rows[rid].chain.extra["unused_same_step"] = True
                        _stop_row(rows[rid], cfg.measure_savings)
                just_finished = picked
            finished_order.extend(just_finished)
            if len(finished_order) >= need:
                stop_step = step
                for rid in live:
                    row = rows[rid]
                    if row.phase == "think":
                        row.chain.status = "aborted"
                        _stop_row(row, cfg.measure_savings)
        step_wall_s.append(time.perf_counter() - start)
        keep_pos = [pos for pos, rid in enumerate(live) if rows[rid].phase != "done"]
        if not keep_pos:
            break
        kept = [live[pos] for pos in keep_pos]
        if all(rows[rid].shadow for rid in kept):
            shadow_passes += 1
        else:
            passes += 1
        tokens = torch.tensor([rows[rid].tokens[-1] for rid in kept], dtype=torch.long, device=device)
        logits = backend.decode(tokens, keep_pos)
        live = kept

    chains = []
    for row in rows:
        c = row.chain
        if row.shadow:
            # The shadow ran on to learn the full cost; the real chain stopped where it was halted.
            c.full_think_tokens, c.full_total_tokens = c.think_tokens, c.total_tokens
            (c.status, c.finish_step, c.think_tokens, c.answer_tokens, n_tokens, row.think_len) = row.stopped
            row.tokens = row.tokens[:n_tokens]
        elif cfg.measure_savings:
            c.full_think_tokens, c.full_total_tokens = c.think_tokens, c.total_tokens
        gen_tokens = [t for t in row.tokens if t not in eos]
        c.text = _cut_at_stop(
            decode(gen_tokens), decode([t for t in row.tokens[: row.think_len] if t not in eos]), cfg.stop
        )
        c.answer = extractor(c.text)
        c.vote_key = normalize(c.answer)
        chains.append(c)
    if early and stop_step is not None:
        # Exactly the first m finished chains vote.
        voters = [rows[rid].chain for rid in finished_order[:need]]
        decision = vote(voters, decision_gen)
    else:
        voters, decision = decide(cfg.strategy, chains, cfg.m, decision_gen)
    for c in voters:
        c.selected = True
    return ShortMKResult(
        text=chains[decision.chosen].text,
        chains=chains,
        vote=decision,
        forward_passes=passes,
        shadow_forward_passes=shadow_passes,
        wall_time_s=time.perf_counter() - start,
        prompt_tokens=len(prompt_ids),
        stop_step=stop_step,
        step_wall_s=step_wall_s,
    )


def _stop_row(row: _Row, measure_savings: bool) -> None:
    """Halt a row; with measure_savings it keeps running as a shadow whose cost is booked apart."""
    c = row.chain
    if measure_savings and row.phase != "done":
        row.shadow = True
        think_len = len(row.tokens) if row.phase == "think" else row.think_len
        row.stopped = (c.status, c.finish_step, c.think_tokens, c.answer_tokens, len(row.tokens), think_len)
        if c.status == "aborted":
            c.status = "thinking"  # the shadow may still finish; the real status is restored at the end
        return
    if row.phase == "think":
        row.think_len = len(row.tokens)
    row.phase = "done"


def _cut_at_stop(text: str, thinking: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the first stop string that appears after the thinking part."""
    if not stop or not text.startswith(thinking):
        return text
    answer = text[len(thinking) :]
    cut = min((answer.find(s) for s in stop if s and s in answer), default=-1)
    return text if cut < 0 else thinking + answer[:cut]
