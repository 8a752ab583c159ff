"""The output alphabet and the tokenizer <-> symbol-string mapping.

Alphabet ``C`` (258 symbols): the 256 byte values, ``END`` (256) and ``EOS`` (257).

- A token's string is its exact bytes (``token_bytes`` from the speculative core: SentencePiece
  ``▁`` -> space, ``<0xNN>`` -> that byte, byte-level BPE symbols -> their bytes). Bytes, not
  Unicode characters, because tokens can be partial UTF-8 sequences (byte fallback, byte-level
  BPE) and 256 symbols cover every token of every tokenizer in the zoo with no learned set.
- A string of ``L <= k`` bytes is written as its bytes followed by ``k - L`` END symbols (the
  "padded row"). The EOS token is ``[EOS, END, ..., END]``. Other special tokens (BOS, pad,
  control tokens) have no byte string; should one be scored it is written as its literal text
  (e.g. ``<s>``), which the heads can express but distillation never trains towards.
- A string longer than ``k`` bytes cannot come out of one step. It is emitted as consecutive
  chunks of ``k`` bytes (last chunk shorter): each chunk is one step, and the input tokens
  appended after a step are the tokenization of that chunk (``string_to_tokens``). Scoring a
  continuation that contains such a token follows exactly this path (``token_steps``), so the
  score is the probability of the way SpeLLM itself would have produced that text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from effeval.errors import ConfigError

logger = logging.getLogger(__name__)

NUM_BYTES = 256
END = 256
EOS = 257
NUM_SYMBOLS = 258


# Heads beyond a vocabulary's longest token only ever predict END, and the code table and the
# distillation targets grow with k x vocabulary (k=10000 on a 49k vocabulary filled a machine's
# memory): 128 bytes is longer than the tokens of the vocabularies in use.
MAX_K = 128


def check_k(k) -> int:
    """``k`` must be an integer in [1, MAX_K] (the number of heads = longest string emitted per step)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ConfigError(
            f"k: {k!r} is not a valid number of character heads. Fix: pass an integer k in [1, {MAX_K}] "
            "(k=16 covers 99.9% of the Mistral SentencePiece and 99.1% of tekken tokens)"
        )
    return k


def tokenizer_token_bytes(tokenizer, argument: str = "tokenizer") -> list[bytes | None]:
    """Bytes of every token id, or one ConfigError when the tokenizer has no string form."""
    from effeval.methods.hetero_spec.common import token_bytes

    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    try:
        out = token_bytes(tokenizer)
    except ConfigError as exc:
        raise ConfigError(
            f"{argument}: tokenizer {name!r} gives no byte string for its tokens, so SpeLLM's character "
            f"heads cannot spell them ({exc}). Fix: use a model whose tokenizer is SentencePiece with byte "
            "fallback or byte-level BPE"
        ) from None
    if not any(b for b in out if b):
        raise ConfigError(
            f"{argument}: tokenizer {name!r} maps no token to a byte string. Fix: use a SentencePiece or "
            "byte-level BPE tokenizer"
        )
    return out


@dataclass
class Step:
    """One SpeLLM step: the padded symbol row the heads must produce, and the input tokens appended."""

    row: tuple[int, ...]
    tokens: list[int]


class CharCodec:
    """Maps a tokenizer's tokens to padded symbol rows and strings back to input tokens."""

    def __init__(self, tokenizer, k: int, argument: str = "tokenizer"):
        self.tokenizer = tokenizer
        self.k = check_k(k)
        self.token_bytes = tokenizer_token_bytes(tokenizer, argument)
        self.vocab_size = len(self.token_bytes)
        self.eos_token_id = tokenizer.eos_token_id
        self._fallback = set()
        vocab = tokenizer.get_vocab()
        for piece, idx in vocab.items():
            if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
                self._fallback.add(idx)
        # bytes -> the one token spelling them. Several ids can share bytes (a byte-fallback
        # <0x20> and "▁"); prefer the ordinary token, then the lowest id, so that a one-token
        # string maps back to the token the tokenizer itself would use.
        self.bytes_to_id: dict[bytes, int] = {}
        for idx, b in enumerate(self.token_bytes):
            if not b:
                continue
            have = self.bytes_to_id.get(b)
            if have is None or (have in self._fallback and idx not in self._fallback):
                self.bytes_to_id[b] = idx
        self.max_token_bytes = max(len(b) for b in self.bytes_to_id)
        self._rows = None
        self._check_spells_every_byte(argument)

    def _check_spells_every_byte(self, argument: str) -> None:
        """The heads can write any of the 256 bytes; each emitted string must go back into the model
        as input tokens, which needs every single byte to be a token (byte fallback or byte-level
        BPE). Checked here, before any model work, not mid-generation."""
        missing = [v for v in range(NUM_BYTES) if bytes([v]) not in self.bytes_to_id]
        if missing:
            name = getattr(self.tokenizer, "name_or_path", "") or type(self.tokenizer).__name__
            shown = ", ".join(f"{v:#04x}" for v in missing[:4])
            raise ConfigError(
                f"{argument}: SpeLLM's byte alphabet cannot be spelled in the vocabulary of {name!r}: "
                f"{len(missing)} of {NUM_BYTES} single bytes have no token (e.g. {shown}), so strings the "
                "heads write could not be fed back as input tokens. Fix: use a model whose tokenizer has "
                "byte fallback (SentencePiece) or is byte-level BPE"
            )

    # ------------------------------------------------------------------ rows

    def string_bytes(self, token_id: int) -> bytes | None:
        """The token's byte string; None for EOS; literal text for other specials."""
        b = self.token_bytes[token_id] if 0 <= token_id < self.vocab_size else None
        if b is not None:
            return b
        if token_id == self.eos_token_id:
            return None
        text = self.tokenizer.convert_ids_to_tokens(int(token_id)) or ""
        return text.encode("utf-8")

    def row_of_bytes(self, b: bytes) -> tuple[int, ...]:
        """Padded row of a string of at most k bytes (longer strings: their first k bytes)."""
        head = list(b[: self.k])
        return tuple(head + [END] * (self.k - len(head)))

    def eos_row(self) -> tuple[int, ...]:
        return tuple([EOS] + [END] * (self.k - 1))

    def token_row(self, token_id: int) -> tuple[int, ...]:
        b = self.string_bytes(token_id)
        return self.eos_row() if b is None else self.row_of_bytes(b)

    def rows(self):
        """LongTensor [V, k]: every token's padded row (tokens longer than k: their first chunk).

        This is what distillation targets use: the first chunk is exactly what SpeLLM emits in
        the step where the base model would have emitted the whole long token."""
        if self._rows is None:
            import torch

            self._rows = torch.tensor([self.token_row(i) for i in range(self.vocab_size)], dtype=torch.long)
        return self._rows

    # ------------------------------------------------------------------ strings -> tokens

    @staticmethod
    def row_to_string(row) -> bytes | None:
        """Symbols -> bytes before the first END; None when the row is EOS."""
        row = [int(s) for s in row]
        if row and row[0] == EOS:
            return None
        out = bytearray()
        for s in row:
            if s >= NUM_BYTES:
                break
            out.append(s)
        return bytes(out)

    def string_to_tokens(self, b: bytes) -> list[int]:
        """Input tokens for an emitted string whose bytes concatenate to exactly ``b``.

        The token itself when ``b`` is one token; else the tokenizer's own tokenization when it
        reproduces ``b`` byte for byte; else (SentencePiece adds a dummy prefix space, partial UTF-8
        cannot be encoded as text) the greedy longest-match split over the token strings, which
        always exists because every single byte is a token in both tokenizer families."""
        if not b:
            return []
        one = self.bytes_to_id.get(b)
        if one is not None:
            return [one]
        try:
            text = b.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            ids = self.tokenizer.encode(text, add_special_tokens=False)
            if (
                all(self.token_bytes[i] is not None for i in ids if i < self.vocab_size)
                and all(i < self.vocab_size for i in ids)
                and b"".join(self.token_bytes[i] for i in ids) == b
            ):
                return list(ids)
        out, pos = [], 0
        while pos < len(b):
            for length in range(min(self.max_token_bytes, len(b) - pos), 0, -1):
                idx = self.bytes_to_id.get(b[pos : pos + length])
                if idx is not None:
                    out.append(idx)
                    pos += length
                    break
            else:  # pragma: no cover - every byte is a token in supported tokenizers
                raise ConfigError(
                    f"tokenizer: byte {b[pos]:#04x} has no token. Fix: use a tokenizer with byte fallback"
                )
        return out

    def token_steps(self, token_id: int) -> list[Step]:
        """The SpeLLM steps that produce ``token_id``: one step, or one per k-byte chunk."""
        b = self.string_bytes(token_id)
        if b is None:
            return [Step(self.eos_row(), [int(token_id)])]
        if len(b) <= self.k:
            return [Step(self.row_of_bytes(b), [int(token_id)])]
        return [
            Step(self.row_of_bytes(b[i : i + self.k]), self.string_to_tokens(b[i : i + self.k]))
            for i in range(0, len(b), self.k)
        ]

    # ------------------------------------------------------------------ reports

    def coverage(self) -> dict:
        """Share of the (non-special) input vocabulary whose string fits in k symbols."""
        lengths = [len(b) for b in self.token_bytes if b is not None]
        fits = sum(1 for n in lengths if n <= self.k)
        return {
            "k": self.k,
            "tokens_with_string": len(lengths),
            "tokens_fitting_k": fits,
            "coverage": fits / len(lengths),
            "longest_token_bytes": max(lengths),
        }

    def characters_vs_bytes(self) -> dict:
        """What a character alphabet (the paper's) would need instead of bytes, at this k."""
        partial, chars, fit_bytes, fit_chars, non_ascii, non_ascii_bytes, non_ascii_chars = (
            0,
            set(),
            0,
            0,
            0,
            0,
            0,
        )
        for b in self.token_bytes:
            if b is None:
                continue
            fit_bytes += len(b) <= self.k  # bytes spell every token, partial UTF-8 included
            try:
                text = b.decode("utf-8")
            except UnicodeDecodeError:
                partial += 1  # a partial UTF-8 sequence: no character string exists
                continue
            chars.update(text)
            fit_chars += len(text) <= self.k
            if any(ord(c) > 127 for c in text):
                non_ascii += 1
                non_ascii_bytes += len(b) <= self.k
                non_ascii_chars += len(text) <= self.k
        return {
            "k": self.k,
            "tokens_not_valid_utf8": partial,
            "distinct_characters": len(chars),
            "char_head_outputs": self.k * (len(chars) + 2),
            "byte_head_outputs": self.k * NUM_SYMBOLS,
            "fit_k_as_bytes": fit_bytes,
            "fit_k_as_characters": fit_chars,
            "non_ascii_tokens": non_ascii,
            "non_ascii_fit_k_as_bytes": non_ascii_bytes,
            "non_ascii_fit_k_as_characters": non_ascii_chars,
        }

    def round_trip(self) -> dict:
        """chars -> string -> input tokens for every token that fits in k: how many come back."""
        same_id = same_bytes = tried = 0
        for idx, b in enumerate(self.token_bytes):
            if b is None or len(b) > self.k:
                continue
            tried += 1
            string = self.row_to_string(self.row_of_bytes(b))
            ids = self.string_to_tokens(string)
            if ids == [idx]:
                same_id += 1
            if b"".join(self.token_bytes[i] for i in ids) == b:
                same_bytes += 1
        return {
            "tokens_tried": tried,
            "same_token": same_id,
            "same_bytes": same_bytes,
            "same_token_fraction": same_id / max(tried, 1),
            "same_bytes_fraction": same_bytes / max(tried, 1),
        }
