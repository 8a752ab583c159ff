"""Prompt encoding for stock diffusers pipelines, and word <-> token-position alignment.

:class:`PromptEncoder` reproduces what the pipeline's own ``encode_prompt`` computes, but keeps
the pieces an intervention needs: the per-position contextual embeddings (what the UNet's
cross-attention reads), the pooled embedding (SDXL), the token ids and each token's character
offsets in the prompt. The result goes back into the *stock* pipeline as ``prompt_embeds`` /
``negative_prompt_embeds`` / ``pooled_prompt_embeds`` -- no fork of diffusers.

Supported: ``StableDiffusionPipeline`` (SD 1.x, 2.x; CLIPTextModel, last hidden state after the
final layer norm, as diffusers does with ``clip_skip=None``) and ``StableDiffusionXLPipeline``
(two CLIP encoders, penultimate hidden states concatenated along features, pooled
``text_embeds`` of the second encoder). FLUX (CLIP pooled + T5 sequence) is refused with a
clear error: its T5 sequence has SentencePiece positions unrelated to CLIP's, so "the same
token position in both encoders" -- which every intervention here relies on -- does not exist.

Causality: CLIP's text encoder is causal. Position *i*'s embedding depends on tokens 0..i only,
so a word's information also reaches every *later* position, including EOS and the padding
positions. Dropping a word's own positions therefore does not remove the word from the
conditioning; ``keep`` (everything else replaced) does. Position 0 (BOS) sees only itself and
is identical for every prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effeval.errors import ConfigError, config_error

# Absolute token position written as "#N" (0 = BOS).
POSITION_RE = re.compile(r"^#(\d+)$")


@dataclass
class EncodedPrompt:
    """One prompt through the pipeline's text encoder(s).

    ``embeds``: [1, L, D] what the UNet reads (SDXL: both encoders concatenated).
    ``pooled``: [1, P] SDXL's pooled embedding, else None.
    ``input_ids``: token ids of the first tokenizer (length L, padded).
    ``offsets``: (start, end) character span of each position in ``prompt``; (0, 0) for
    BOS/EOS/padding.
    ``n_content``: number of prompt tokens (positions 1..n_content); EOS sits at n_content + 1.
    """

    prompt: str
    embeds: Any
    pooled: Any = None
    input_ids: list[int] = field(default_factory=list)
    offsets: list[tuple[int, int]] = field(default_factory=list)
    n_content: int = 0
    tokens: list[str] = field(default_factory=list)
    truncated: bool = False

    @property
    def length(self) -> int:
        return int(self.embeds.shape[1])

    @property
    def content_positions(self) -> list[int]:
        return list(range(1, self.n_content + 1))


def pipeline_kind(pipe) -> str:
    """``sd`` or ``sdxl``; anything else is a ConfigError saying what is supported."""
    name = type(pipe).__name__
    if "Flux" in name:
        raise config_error(
            "--pipeline",
            f"{name} (FLUX: CLIP pooled + T5 sequence) is not supported: its T5 positions do not line up "
            "with CLIP token positions, which the keep/drop/patch interventions rely on",
            "use a Stable Diffusion 1.x/2.x or SDXL pipeline",
        )
    has2 = (
        getattr(pipe, "text_encoder_2", None) is not None and getattr(pipe, "tokenizer_2", None) is not None
    )
    if has2 and "XL" in name:
        return "sdxl"
    if (
        getattr(pipe, "text_encoder", None) is not None
        and getattr(pipe, "tokenizer", None) is not None
        and not has2
    ):
        return "sd"
    raise config_error(
        "--pipeline",
        f"{name} is not a supported text-to-image pipeline",
        "use a diffusers StableDiffusionPipeline (1.x/2.x) or StableDiffusionXLPipeline",
    )


def load_pipeline(path: str | Path, device: str = "cpu", dtype: str = "float32"):
    """Load a diffusers pipeline directory; a clear ConfigError when it is not one."""
    import torch

    path = Path(path)
    if not path.is_dir():
        raise config_error(
            "--pipeline",
            f"{str(path)!r} is not a directory",
            "pass a folder written by DiffusionPipeline.save_pretrained (e.g. `effeval zoo build sd-tiny`)",
        )
    if not (path / "model_index.json").is_file():
        raise config_error(
            "--pipeline",
            f"{str(path)!r} is not a diffusers pipeline (no model_index.json)",
            "pass a folder written by DiffusionPipeline.save_pretrained",
        )
    from diffusers import DiffusionPipeline

    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise config_error("--dtype", f"{dtype!r} is not a torch dtype", "use float32, float16 or bfloat16")
    try:
        pipe = DiffusionPipeline.from_pretrained(str(path), dtype=torch_dtype, local_files_only=True)
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise config_error(
            "--pipeline",
            f"{str(path)!r} could not be loaded as a diffusers pipeline ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0][:200]})",
            "pass a complete folder written by DiffusionPipeline.save_pretrained",
        ) from None
    pipeline_kind(pipe)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


class PromptEncoder:
    """Encodes prompts exactly as the pipeline's ``encode_prompt`` does, keeping alignment data."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.kind = pipeline_kind(pipe)
        self._pad: EncodedPrompt | None = None
        self.tokenizers = [pipe.tokenizer] + ([pipe.tokenizer_2] if self.kind == "sdxl" else [])
        self.encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if self.kind == "sdxl" else [])
        self.max_length = int(pipe.tokenizer.model_max_length)

    @property
    def device(self):
        return self.encoders[0].device

    def _tokenize(self, tokenizer, text: str) -> dict:
        return tokenizer(
            text,
            padding="max_length",
            max_length=self.max_length,
            truncation=True,
            return_offsets_mapping=True,
            return_tensors=None,
        )

    def encode(self, prompt: str) -> EncodedPrompt:
        import torch

        if not isinstance(prompt, str):
            raise config_error(
                "prompt",
                f"expected a string, got {type(prompt).__name__}",
                "give each record a text 'prompt'",
            )
        first = self._tokenize(self.tokenizers[0], prompt)
        ids0 = list(first["input_ids"])
        n_content = _content_count(ids0, self.tokenizers[0])
        full_len = len(self.tokenizers[0](prompt, truncation=False)["input_ids"])
        hidden, pooled = [], None
        with torch.no_grad():
            for tok, enc in zip(self.tokenizers, self.encoders):
                ids = list(self._tokenize(tok, prompt)["input_ids"])
                if _content_count(ids, tok) != n_content or ids[: n_content + 2] != ids0[: n_content + 2]:
                    raise ConfigError(
                        f"prompt {prompt!r}: the two SDXL tokenizers split it differently, so token positions "
                        "do not line up. Fix: use a pipeline whose tokenizers share one vocabulary"
                    )
                input_ids = torch.tensor([ids], device=enc.device)
                mask = None
                if getattr(enc.config, "use_attention_mask", False):
                    mask = torch.tensor([self._tokenize(tok, prompt)["attention_mask"]], device=enc.device)
                if self.kind == "sd":
                    out = enc(input_ids, attention_mask=mask)
                    hidden.append(out[0])
                else:
                    out = enc(input_ids, output_hidden_states=True)
                    hidden.append(out.hidden_states[-2])
                    if out[0].ndim == 2:  # CLIPTextModelWithProjection: text_embeds
                        pooled = out[0]
        embeds = torch.cat(hidden, dim=-1)
        dtype = self.encoders[-1].dtype
        return EncodedPrompt(
            prompt=prompt,
            embeds=embeds.to(dtype),
            pooled=None if pooled is None else pooled.to(dtype),
            input_ids=ids0,
            offsets=[tuple(o) for o in first["offset_mapping"]],
            n_content=n_content,
            tokens=self.tokenizers[0].convert_ids_to_tokens(ids0),
            truncated=full_len > self.max_length,
        )

    def pad_prompt(self) -> EncodedPrompt:
        """The prompt made only of padding: "" -> BOS, EOS, padding (what the paper substitutes)."""
        if self._pad is None:
            self._pad = self.encode("")
        return self._pad

    def negative(self, length: int):
        """(negative_prompt_embeds, negative_pooled) that the stock pipeline would use, at ``length`` positions.

        SD: "" encoded (= the pad prompt); for a shortened sequence, its first ``length`` positions,
        which is what diffusers computes itself ("" padded to the prompt_embeds length). SDXL with
        ``force_zeros_for_empty_prompt``: zeros, as diffusers does.
        """
        import torch

        pad = self.pad_prompt()
        if self.kind == "sdxl" and getattr(self.pipe.config, "force_zeros_for_empty_prompt", False):
            return (torch.zeros_like(pad.embeds[:, :length]), torch.zeros_like(pad.pooled))
        return pad.embeds[:, :length].clone(), None if pad.pooled is None else pad.pooled.clone()

    # ---- alignment -------------------------------------------------------------------------
    def words(self, enc: EncodedPrompt) -> list[dict]:
        """Words of the prompt (runs of letters/digits/apostrophes/hyphens) with their token positions."""
        out = []
        for m in re.finditer(r"[\w'’-]+", enc.prompt):
            pos = positions_for_span(enc, m.start(), m.end())
            if pos:
                out.append({"word": m.group(0), "start": m.start(), "end": m.end(), "positions": pos})
        return out

    def positions(self, enc: EncodedPrompt, target: str, argument: str = "target") -> list[int]:
        """Token positions of ``target`` in the encoded prompt: a word or expression (every
        occurrence, case-insensitive, on word boundaries) or ``#N`` (absolute position)."""
        target = str(target).strip()
        m = POSITION_RE.match(target)
        if m:
            pos = int(m.group(1))
            if not 0 < pos < enc.length:
                raise config_error(
                    argument,
                    f"token position #{pos} is outside 1..{enc.length - 1} for prompt {enc.prompt!r}",
                    "use #N with N between 1 and the sequence length minus 1 (0 is BOS)",
                )
            return [pos]
        if not target:
            raise config_error(
                argument,
                "empty word/expression",
                "name a word or expression of the prompt, or #N for a position",
            )
        spans = find_expression(enc.prompt, target)
        positions: list[int] = []
        for start, end in spans:
            positions += [p for p in positions_for_span(enc, start, end) if p not in positions]
        if not positions:
            words = ", ".join(repr(w["word"]) for w in self.words(enc)) or "(none)"
            raise config_error(
                argument,
                f"{target!r} is not a word/expression of the prompt {enc.prompt!r}"
                + (" (it lies beyond the 77-token limit)" if spans else ""),
                f"use one of its words {words} or #N for a token position",
            )
        return sorted(positions)


def _content_count(ids: list[int], tokenizer) -> int:
    """Tokens between BOS and EOS (the first EOS after position 0)."""
    eos = tokenizer.eos_token_id
    try:
        return ids.index(eos, 1) - 1
    except ValueError:  # truncated without EOS cannot happen with CLIPTokenizer; be safe
        return len(ids) - 1


def find_expression(prompt: str, expression: str) -> list[tuple[int, int]]:
    """Character spans of ``expression`` in ``prompt``: case-insensitive, whitespace-flexible,
    not inside a longer word ("red" does not match "bored")."""
    parts = [re.escape(p) for p in expression.split()]
    if not parts:
        return []
    pattern = r"(?<![\w])" + r"\s+".join(parts) + r"(?![\w])"
    return [(m.start(), m.end()) for m in re.finditer(pattern, prompt, flags=re.IGNORECASE)]


def positions_for_span(enc: EncodedPrompt, start: int, end: int) -> list[int]:
    """Content positions whose character offsets overlap [start, end)."""
    out = []
    for pos in enc.content_positions:
        s, e = enc.offsets[pos]
        if e > s and s < end and e > start:
            out.append(pos)
    return out
