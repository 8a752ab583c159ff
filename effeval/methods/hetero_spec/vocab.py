"""Vocabulary alignment between two tokenizers of different families.

Everything is compared as **bytes in context** (``common.token_bytes``): SentencePiece ``▁`` is a
space, ``<0xNN>`` byte-fallback pieces are that byte, byte-level ``Ġ``-style symbols are their
bytes. Per-chunk ``decode`` is never used to compare texts: SentencePiece drops the leading ``▁``
of a continuation decoded alone, and a token may be a partial UTF-8 sequence.

- ``Vocab``: one tokenizer's byte view: id -> bytes, bytes -> canonical id, normalised token
  strings, greedy longest-match, and re-tokenization of new text *in context*.
- ``Intersection``: the token pairs (drafter id, target id) that stand for the same bytes; the
  shared vocabulary TLI drafts from.
- ``TargetVocab`` / ``DrafterVocab``: the string-level views SLRS's proposal and DP need
  (canonical id per string, minimal extensions; tokens sorted so "all tokens starting with y" is
  a slice), built from raw byte lists (tests) or from a tokenizer's ``Vocab``.
- ``DrafterContext``: the drafter's ids for the text so far, kept up to date per step.
- ``split_utf8_tail``: split off an incomplete trailing UTF-8 sequence.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from effeval.methods.hetero_spec.common import BYTE_FALLBACK, token_bytes, tokenizer_family

_CONTEXT_TOKENS = 8  # target tokens of context re-tokenized together with a draft


def split_utf8_tail(data: bytes) -> tuple[bytes, bytes]:
    """``(complete, pending)``: ``pending`` is a trailing incomplete UTF-8 sequence (≤3 bytes)."""
    n = len(data)
    for back in range(1, min(4, n) + 1):
        b = data[n - back]
        if b & 0b1100_0000 == 0b1000_0000:  # continuation byte: look further back for the lead
            continue
        if b < 0x80:
            return data, b""
        need = 2 if b >> 5 == 0b110 else 3 if b >> 4 == 0b1110 else 4 if b >> 3 == 0b11110 else 1
        return (data, b"") if back >= need else (data[: n - back], data[n - back :])
    return data, b""


class Vocab:
    """Byte view of one tokenizer (cached on the tokenizer object)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.family = getattr(tokenizer, "_effeval_family", None) or tokenizer_family(tokenizer)
        self.bytes: list[bytes | None] = token_bytes(tokenizer)
        pieces = {idx: piece for piece, idx in tokenizer.get_vocab().items()}
        self.by_bytes: dict[bytes, int] = {}
        for idx, data in enumerate(self.bytes):
            if not data:
                continue
            old = self.by_bytes.get(data)
            # Two ids for one byte string (SentencePiece "A" and "<0x41>"): the ordinary piece is
            # the one the tokenizer itself produces, so it is the canonical id.
            if old is None or (
                BYTE_FALLBACK.match(pieces.get(old, "") or "")
                and not BYTE_FALLBACK.match(pieces.get(idx, "") or "")
            ):
                self.by_bytes[data] = idx
        self.max_token_len = max((len(b) for b in self.by_bytes), default=1)
        eos = getattr(tokenizer, "eos_token_id", None)
        self.eos_id: int | None = int(eos) if eos is not None else None

    @classmethod
    def of(cls, tokenizer) -> Vocab:
        cached = getattr(tokenizer, "_effeval_vocab", None)
        if cached is None:
            cached = cls(tokenizer)
            try:
                tokenizer._effeval_vocab = cached
            except AttributeError:
                pass
        return cached

    def __len__(self) -> int:
        return len(self.bytes)

    @property
    def adds_dummy_prefix(self) -> bool:
        """Whether encoding text prepends a space (SentencePiece's dummy prefix ``▁``)."""
        cached = getattr(self, "_dummy_prefix", None)
        if cached is None:
            ids = self.encode_text("a", add_special_tokens=False)
            cached = self._dummy_prefix = self.ids_bytes(ids) == b" a"
        return cached

    def token_string(self, idx: int) -> str | None:
        """Normalised token string (family-independent): its bytes as text, ``None`` for control tokens."""
        data = self.bytes[idx] if 0 <= idx < len(self.bytes) else None
        return None if data is None else data.decode("utf-8", errors="backslashreplace")

    def bytes_of(self, idx: int) -> bytes | None:
        return self.bytes[idx] if 0 <= idx < len(self.bytes) else None

    def ids_bytes(self, ids) -> bytes:
        return b"".join(self.bytes[i] or b"" for i in ids if 0 <= i < len(self.bytes))

    def text_bytes(self, ids) -> bytes:
        """Bytes of a full sequence as the tokenizer decodes it (SentencePiece drops its dummy prefix)."""
        text = self.tokenizer.decode(list(ids), skip_special_tokens=True)
        return text.encode("utf-8")

    def encode_text(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])

    def longest_match(self, data: bytes) -> list[int]:
        """Greedy longest-match tokenization of ``data`` (stops where no token matches)."""
        out, pos = [], 0
        while pos < len(data):
            for size in range(min(self.max_token_len, len(data) - pos), 0, -1):
                idx = self.by_bytes.get(data[pos : pos + size])
                if idx is not None:
                    out.append(idx)
                    pos += size
                    break
            else:
                break
        return out

    def continuation_ids(self, context_ids, new_bytes: bytes) -> list[int]:
        """Tokens for ``new_bytes`` following ``context_ids``, tokenized **in context**.

        The last few context tokens are re-tokenized together with the new text, so merges,
        leading spaces and SentencePiece's dummy prefix come out as the tokenizer makes them.
        If the re-tokenization merges across the context boundary, fall back to greedy
        longest-match on the new bytes (any tokenization is valid for verification; the
        canonical one is just the likeliest to be accepted)."""
        new_complete, _ = split_utf8_tail(new_bytes)
        if not new_complete:
            return self.longest_match(new_bytes)
        tail = (
            [i for i in list(context_ids)[-_CONTEXT_TOKENS:] if self.bytes[i] is not None]
            if len(self)
            else []
        )
        # Start the re-tokenized window at a UTF-8 character boundary.
        while tail and (self.bytes[tail[0]][:1] or b"\x00")[0] & 0b1100_0000 == 0b1000_0000:
            tail = tail[1:]
        context = self.ids_bytes(tail)
        full = context + new_complete
        try:
            text = full.decode("utf-8")
            enc = self.encode_text(text, add_special_tokens=False)
        except UnicodeDecodeError:
            return self.longest_match(new_bytes)
        if any(i >= len(self.bytes) or self.bytes[i] is None for i in enc):
            return self.longest_match(new_bytes)
        enc_bytes = self.ids_bytes(enc)
        lead = len(enc_bytes) - len(full)
        if lead < 0 or not enc_bytes.endswith(full) or enc_bytes[:lead].strip(b" "):
            return self.longest_match(new_bytes)
        pos, boundary = 0, None
        for k, idx in enumerate(enc):
            if pos == lead + len(context):
                boundary = k
                break
            pos += len(self.bytes[idx])
            if pos > lead + len(context):
                break
        if boundary is None:
            return self.longest_match(new_bytes)
        return enc[boundary:]


@dataclass
class Intersection:
    """Shared tokens: drafter id -> target id for every drafter token whose bytes are a target token."""

    drafter_ids: list[int]
    target_ids: list[int]
    target_size: int
    drafter_size: int

    @classmethod
    def build(cls, target: Vocab, drafter: Vocab) -> Intersection:
        d_ids, t_ids = [], []
        for d_idx, data in enumerate(drafter.bytes):
            if not data:
                continue
            t_idx = target.by_bytes.get(data)
            if t_idx is not None:
                d_ids.append(d_idx)
                t_ids.append(t_idx)
        return cls(d_ids, t_ids, len(target), len(drafter))

    def __len__(self) -> int:
        """Number of distinct shared target tokens."""
        if not hasattr(self, "_size"):
            self._size = len(set(self.target_ids))
        return self._size

    @classmethod
    def of(cls, target_tok, drafter_tok) -> Intersection:
        key = "_effeval_intersections"
        cache = getattr(drafter_tok, key, None)
        if cache is None:
            cache = {}
            try:
                setattr(drafter_tok, key, cache)
            except AttributeError:
                pass
        ident = id(target_tok)
        if ident not in cache:
            cache[ident] = cls.build(Vocab.of(target_tok), Vocab.of(drafter_tok))
        return cache[ident]

    def tensors(self, device):
        import torch

        cached = getattr(self, "_tensors", None)
        if cached is None or cached[0].device != torch.device(device):
            cached = (
                torch.tensor(self.drafter_ids, dtype=torch.long, device=device),
                torch.tensor(self.target_ids, dtype=torch.long, device=device),
            )
            self._tensors = cached
        return cached


# ----------------------------------------------------------------------------- SLRS's string views


class TargetVocab:
    """Target tokens as byte strings: canonical id per distinct string, prefixes, extensions."""

    def __init__(
        self,
        tbytes: Sequence[bytes | None],
        eos_ids: Sequence[int] = (),
        size: int | None = None,
        canonical: dict[bytes, int] | None = None,
    ):
        size = max(size or 0, len(tbytes))
        self.token_bytes: list[bytes | None] = list(tbytes) + [None] * (size - len(tbytes))
        self.size = size
        # Several ids can spell the same bytes (SentencePiece "A" and "<0x41>"): the proposal maps
        # a string to ONE canonical id (q of the others is 0; the residual still reaches them).
        # From a tokenizer: ``Vocab.by_bytes`` (the ordinary piece over its byte fallback);
        # from a byte list: the first id.
        if canonical is None:
            canonical = {}
            for idx, b in enumerate(self.token_bytes):
                if b and b not in canonical:
                    canonical[b] = idx
        self.canonical: dict[bytes, int] = canonical
        self.sorted_strings = sorted(self.canonical)
        self.max_len = max((len(b) for b in self.canonical), default=0)
        self.proper_prefixes = {b[:k] for b in self.canonical for k in range(len(b))}
        self.eos_ids = tuple(int(e) for e in eos_ids)
        self.proposal_eos = self.eos_ids[0] if self.eos_ids else None
        self._ext: dict[bytes, list[bytes]] = {}

    @classmethod
    def of(cls, tokenizer, size: int, eos_ids: tuple[int, ...]) -> TargetVocab:
        """The view of a tokenizer whose model has ``size`` logits (cached on the tokenizer)."""
        vocab = Vocab.of(tokenizer)
        return _cached(
            tokenizer, (cls.__name__, size, eos_ids), lambda: cls(vocab.bytes, eos_ids, size, vocab.by_bytes)
        )

    def longest_prefix_token(self, s: bytes) -> int:
        for k in range(min(len(s), self.max_len), 0, -1):
            idx = self.canonical.get(s[:k])
            if idx is not None:
                return idx
        raise AssertionError(f"no target token is a prefix of {s!r}")  # excluded by check_supported

    def extensions(self, t: bytes) -> list[bytes]:
        """ext(t): target strings t' that strictly extend t with no target string strictly between."""
        cached = self._ext.get(t)
        if cached is not None:
            return cached
        out = []
        i = bisect.bisect_right(self.sorted_strings, t)
        while i < len(self.sorted_strings) and self.sorted_strings[i].startswith(t):
            s = self.sorted_strings[i]
            if not any(s[:k] in self.canonical for k in range(len(t) + 1, len(s))):
                out.append(s)
            i += 1
        self._ext[t] = out
        return out


class DrafterVocab:
    """Drafter tokens as byte strings, sorted so that 'all tokens starting with y' is a slice."""

    def __init__(self, dbytes: Sequence[bytes | None], eos_ids: Sequence[int] = (), size: int | None = None):
        import torch

        size = max(size or 0, len(dbytes))
        self.token_bytes: list[bytes | None] = list(dbytes) + [None] * (size - len(dbytes))
        self.size = size
        self.eos_ids = tuple(int(e) for e in eos_ids if 0 <= int(e) < size)
        self.ids_by_bytes: dict[bytes, list[int]] = {}
        for idx, b in enumerate(self.token_bytes):
            if b:
                self.ids_by_bytes.setdefault(b, []).append(idx)
        byte_ids = sorted((i for i, b in enumerate(self.token_bytes) if b), key=lambda i: self.token_bytes[i])
        self.sorted_ids = torch.tensor(byte_ids, dtype=torch.long)
        self.sorted_bytes = [self.token_bytes[i] for i in byte_ids]
        self.pos_of_id = torch.full((size,), -1, dtype=torch.long)  # id -> index in sorted_bytes
        self.pos_of_id[self.sorted_ids] = torch.arange(len(byte_ids))
        self.max_len = max((len(b) for b in self.sorted_bytes), default=0)
        self.alphabet = {c for b in self.sorted_bytes for c in b}
        self._ranges: dict[bytes, tuple[int, int]] = {}
        self._mergeable: dict[int, list[int]] = {}
        self._masks: dict[bool, object] = {}

    @classmethod
    def of(cls, tokenizer, size: int, eos_ids: tuple[int, ...]) -> DrafterVocab:
        """The view of a tokenizer whose model has ``size`` logits (cached on the tokenizer)."""
        return _cached(
            tokenizer, (cls.__name__, size, eos_ids), lambda: cls(Vocab.of(tokenizer).bytes, eos_ids, size)
        )

    def allowed_mask(self, with_eos: bool):
        """Tokens the proposal may use: those with bytes (empty/control tokens would never
        advance the stream), plus EOS when the target has one to map it to."""
        import torch

        cached = self._masks.get(with_eos)
        if cached is None:
            cached = torch.zeros(self.size, dtype=torch.bool)
            cached[self.sorted_ids] = True
            if with_eos and self.eos_ids:
                cached[list(self.eos_ids)] = True
            self._masks[with_eos] = cached
        return cached

    def mergeable_after(self, prev: int) -> list[int]:
        """Tokens d such that bytes(prev)+bytes(d) is itself a drafter token."""
        got = self._mergeable.get(prev)
        if got is None:
            a = self.token_bytes[prev] if 0 <= prev < self.size else None
            got = []
            if a:
                lo, hi = self.prefix_range(a)
                for s in self.sorted_bytes[lo:hi]:
                    if len(s) > len(a):
                        got.extend(self.ids_by_bytes.get(s[len(a) :], ()))
                got = sorted(set(got))
            self._mergeable[prev] = got
        return got

    def prefix_range(self, y: bytes) -> tuple[int, int]:
        """Slice of ``sorted_bytes`` holding exactly the tokens that start with ``y``."""
        r = self._ranges.get(y)
        if r is None:
            lo = bisect.bisect_left(self.sorted_bytes, y)
            hi = bisect.bisect_right(self.sorted_bytes, y + b"\xff" * (self.max_len + 1), lo)
            r = self._ranges[y] = (lo, hi)
        return r


def _cached(tokenizer, key, make):
    cache = getattr(tokenizer, "_effeval_string_views", None)
    if cache is None:
        cache = {}
        try:
            tokenizer._effeval_string_views = cache
        except AttributeError:
            pass
    if key not in cache:
        cache[key] = make()
    return cache[key]


# ----------------------------------------------------------------------------- the drafter's context


def drafter_context(prompt_text: str, generated: bytes, drafter: Vocab) -> tuple[list[int], bytes]:
    """Drafter token ids for ``prompt_text + generated`` by encoding all of it, and the pending
    incomplete UTF-8 bytes (which a draft must start with to be usable). O(context): the
    reference ``DrafterContext`` is checked against, and its fallback."""
    complete, pending = split_utf8_tail(generated)
    text = prompt_text + complete.decode("utf-8", errors="replace")
    ids = drafter.encode_text(text, add_special_tokens=True)
    if not ids:
        bos = getattr(drafter.tokenizer, "bos_token_id", None)
        ids = [bos if bos is not None else (drafter.eos_id or 0)]
    return ids, pending


LOOK_BEHIND = 8  # drafter tokens re-tokenized together with the new text
ANCHOR = 2  # leading tokens of that window that must come out unchanged


class DrafterContext:
    """The drafter's token ids for ``prompt_text + generated``, kept up to date per step in
    O(new text) instead of re-encoding the whole context (``drafter_context``).

    Each update re-tokenizes only a look-behind window: the last ``LOOK_BEHIND`` drafter tokens'
    text plus the new text, and splices the result in place of the window. The splice is used
    only when it is verifiably consistent: the window's first ``ANCHOR`` tokens come out unchanged
    (so no merge reached back across the window's start) and the new ids spell exactly the
    window's bytes plus the new text. Tokenizers that prepend a dummy ``▁`` (SentencePiece) get a
    window that starts at a token beginning with a space, written without it, so the dummy prefix
    recreates it. Anything else (normalising tokenizers, a failed check, a short context) falls back
    to encoding everything, so the ids are those of ``drafter_context`` whenever the tokenizer's
    merges are local; ``tests/methods/hetero_spec/test_drafter_context.py`` checks equality step
    by step on real tokenizers. Any deterministic drafter context keeps every algorithm lossless;
    equality only keeps the drafter in distribution."""

    def __init__(self, drafter: Vocab, prompt_text: str):
        self.vocab = drafter
        self.parts = [prompt_text]
        self.consumed = 0  # bytes of the generated text already in ``ids``
        self.full_encodes = 0
        self.window_encodes = 0
        self.ids: list[int] = []
        self._encode_all()
        self.fixed = 0  # leading control tokens (BOS) the window never reaches
        while self.fixed < len(self.ids) and not drafter.bytes_of(self.ids[self.fixed]):
            self.fixed += 1
        self.dummy_prefix = drafter.adds_dummy_prefix
        # Incremental updates need the tokens to spell the text back (no normalisation).
        body = drafter.ids_bytes(self.ids[self.fixed :])
        text = prompt_text.encode("utf-8")
        self.incremental = body == text or (self.dummy_prefix and body == b" " + text)

    def _encode_all(self) -> None:
        ids, _ = drafter_context("".join(self.parts), b"", self.vocab)
        self.ids = ids
        self.full_encodes += 1

    def update(self, generated: bytes) -> tuple[list[int], bytes]:
        """(drafter ids of prompt + the complete part of ``generated``, pending bytes).
        ``generated`` (bytes or bytearray) only ever grows between calls: the emitted text."""
        # Only the bytes after the last complete character seen so far are looked at.
        complete, pending = split_utf8_tail(bytes(generated[self.consumed :]))
        if complete:
            new = complete.decode("utf-8", errors="replace")
            self.consumed += len(complete)
            self.parts.append(new)
            if not (self.incremental and self._splice(new)):
                self._encode_all()
        return self.ids, pending

    def _window_start(self) -> int | None:
        start = len(self.ids) - LOOK_BEHIND
        if not self.dummy_prefix:
            return start if start >= self.fixed + ANCHOR else None
        data = self.vocab.bytes
        for s in range(start, max(self.fixed, start - 4 * LOOK_BEHIND) - 1, -1):
            if s < self.fixed:
                break
            # A space then a non-space: the dummy prefix writes back exactly that token's
            # start (a run of spaces would merge differently once shortened by one).
            piece = data[self.ids[s]] or b""
            if piece[:1] == b" " and piece[1:2] not in (b"", b" "):
                return s
        return None

    def _splice(self, new: str) -> bool:
        start = self._window_start()
        if start is None:
            return False
        vocab = self.vocab
        window = self.ids[start:]
        window_bytes = vocab.ids_bytes(window)
        try:
            window_text = window_bytes.decode("utf-8")
        except UnicodeDecodeError:  # the window starts inside a character
            return False
        if self.dummy_prefix:
            window_text = window_text[1:]  # the tokenizer's dummy prefix writes this space back
        enc = vocab.encode_text(window_text + new, add_special_tokens=False)
        anchor = min(ANCHOR, len(window))
        if enc[:anchor] != window[:anchor]:
            return False
        if vocab.ids_bytes(enc) != window_bytes + new.encode("utf-8"):
            return False
        if any(i >= len(vocab.bytes) or vocab.bytes[i] is None for i in enc):
            return False
        self.ids = self.ids[:start] + enc
        self.window_encodes += 1
        return True
