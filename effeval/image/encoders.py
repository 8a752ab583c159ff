"""Prompt encoding for stock diffusers pipelines, and word <-> token-position alignment.

:class:`PromptEncoder` reproduces what the pipeline's own ``encode_prompt`` computes, but keeps
the pieces an intervention needs: the per-position contextual embeddings (what the UNet's
cross-attention reads), the pooled embedding (SDXL), the token ids and each token's character
offsets in the prompt. The result goes back into the *stock* pipeline as ``prompt_embeds`` /
``negative_prompt_embeds`` / ``pooled_prompt_embeds`` -- no fork of diffusers.

Supported: ``StableDiffusionPipeline`` (SD 1.x, 2.x; CLIPTextModel, last hidden state after the
final layer norm, as diffusers does with ``clip_skip=None``), ``StableDiffusionXLPipeline``
(two CLIP encoders, penultimate hidden states concatenated along features, pooled
``text_embeds`` of the second encoder), ``FluxPipeline`` (the T5 sequence is what the
transformer reads; positions are T5 tokens found through the T5 tokenizer's character offsets;
CLIP only gives the pooled vector) and ``StableDiffusion3Pipeline`` (77 CLIP positions then the
T5 positions in one sequence; a word's positions are found in both parts).

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
    # T5 pipelines: the prompt's token positions, when not 1..n_content (T5 has no BOS; SD3's
    # sequence is 77 CLIP positions then the T5 positions)
    content: list[int] | None = None
    fixed: tuple[int, ...] = (0,)  # never removed or replaced by keep (CLIP's BOS)

    @property
    def length(self) -> int:
        return int(self.embeds.shape[1])

    @property
    def content_positions(self) -> list[int]:
        if self.content is not None:
            return list(self.content)
        return list(range(1, self.n_content + 1))


def pipeline_kind(pipe) -> str:
    """``sd`` or ``sdxl``; anything else is a ConfigError saying what is supported."""
    name = type(pipe).__name__
    if name.startswith("Flux") and name in ("FluxPipeline",):
        return "flux"
    if name == "StableDiffusion3Pipeline":
        return "sd3"
    if "Flux" in name or "StableDiffusion3" in name:
        raise config_error(
            "--pipeline",
            f"{name} is not supported (only the text-to-image FluxPipeline and StableDiffusion3Pipeline)",
            "use FluxPipeline, StableDiffusion3Pipeline, or a Stable Diffusion 1.x/2.x or SDXL pipeline",
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
        "use a diffusers StableDiffusionPipeline (1.x/2.x), StableDiffusionXLPipeline, FluxPipeline or "
        "StableDiffusion3Pipeline",
    )


def check_pipeline_folder(path: str | Path) -> Path:
    """A ConfigError naming --pipeline unless ``path`` is a diffusers pipeline folder whose config
    files and weights are whole (header reads only: cheap, before anything loads)."""
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
    from effeval.model_files import folder_problem

    problem = folder_problem(path)
    if problem is not None:
        raise config_error(
            "--pipeline",
            f"the pipeline in {str(path)!r} is damaged: {problem}",
            "save it again with DiffusionPipeline.save_pretrained (a zoo one: `effeval zoo build NAME --force`)",
        )
    return path


def load_pipeline(path: str | Path, device: str = "cpu", dtype: str = "float32"):
    """Load a diffusers pipeline directory; a clear ConfigError when it is not one."""
    import torch

    path = check_pipeline_folder(path)
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
        if self.kind in ("flux", "sd3"):
            self.t5_tokenizer = pipe.tokenizer_2 if self.kind == "flux" else pipe.tokenizer_3
            self.t5_encoder = pipe.text_encoder_2 if self.kind == "flux" else pipe.text_encoder_3
            if self.t5_encoder is None or not getattr(self.t5_tokenizer, "is_fast", False):
                raise config_error(
                    "--pipeline",
                    f"{type(pipe).__name__} without a T5 encoder and a fast T5 tokenizer (character offsets)",
                    "use a pipeline folder with text_encoder/tokenizer for T5 (T5TokenizerFast)",
                )
            # the stock call's default max_sequence_length: FLUX 512, SD3 256
            self.t5_max_length = 512 if self.kind == "flux" else 256

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
        if self.kind in ("flux", "sd3"):
            return self._encode_t5_pipeline(prompt)
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

    def _encode_t5_pipeline(self, prompt: str) -> EncodedPrompt:
        """FLUX: the T5 sequence is ``prompt_embeds`` (positions = T5 tokens, no BOS, ``</s>`` after
        the prompt) and CLIP's pooled output is ``pooled_prompt_embeds``. SD3: 77 positions of the
        two CLIPs' penultimate states (features concatenated, zero-padded to T5's width) then the
        T5 positions; pooled = both CLIPs' projected outputs. Exactly the stock ``encode_prompt``.
        A word's positions are its CLIP positions (SD3) and its T5 positions."""
        import torch

        pipe = self.pipe
        t5 = self.t5_tokenizer(
            prompt,
            padding="max_length",
            max_length=self.t5_max_length,
            truncation=True,
            return_offsets_mapping=True,
        )
        t5_ids = list(t5["input_ids"])
        eos = self.t5_tokenizer.eos_token_id
        n_t5 = t5_ids.index(eos) if eos in t5_ids else len(t5_ids)
        full_t5 = len(self.t5_tokenizer(prompt, truncation=False)["input_ids"])
        with torch.no_grad():
            t5_embeds = self.t5_encoder(torch.tensor([t5_ids], device=self.t5_encoder.device))[0]
            clip_ids, clip_offsets, clip_hidden, pooled = [], [], [], []
            for tok, enc in [(pipe.tokenizer, pipe.text_encoder)] + (
                [(pipe.tokenizer_2, pipe.text_encoder_2)] if self.kind == "sd3" else []
            ):
                t = self._tokenize(tok, prompt)
                ids = torch.tensor([list(t["input_ids"])], device=enc.device)
                if self.kind == "flux":
                    pooled.append(enc(ids, output_hidden_states=False).pooler_output)
                else:
                    out = enc(ids, output_hidden_states=True)
                    pooled.append(out[0])
                    clip_hidden.append(out.hidden_states[-2])
                if not clip_ids:
                    clip_ids, clip_offsets = list(t["input_ids"]), [tuple(o) for o in t["offset_mapping"]]
        dtype = self.t5_encoder.dtype
        t5_offsets = [tuple(o) for o in t5["offset_mapping"]]
        if self.kind == "flux":
            return EncodedPrompt(
                prompt=prompt,
                embeds=t5_embeds.to(dtype),
                pooled=pooled[0].to(pipe.text_encoder.dtype),
                input_ids=t5_ids,
                offsets=t5_offsets,
                n_content=n_t5,
                tokens=self.t5_tokenizer.convert_ids_to_tokens(t5_ids),
                truncated=full_t5 > self.t5_max_length,
                content=list(range(n_t5)),
                fixed=(),
            )
        clip = torch.cat(clip_hidden, dim=-1)
        clip = torch.nn.functional.pad(clip, (0, t5_embeds.shape[-1] - clip.shape[-1]))
        n_clip = _content_count(clip_ids, pipe.tokenizer)
        n = len(clip_ids)
        full_clip = len(pipe.tokenizer(prompt, truncation=False)["input_ids"])
        return EncodedPrompt(
            prompt=prompt,
            embeds=torch.cat([clip, t5_embeds], dim=-2).to(dtype),
            pooled=torch.cat(pooled, dim=-1).to(dtype),
            input_ids=clip_ids + t5_ids,
            offsets=clip_offsets + t5_offsets,
            n_content=n_clip,
            tokens=pipe.tokenizer.convert_ids_to_tokens(clip_ids)
            + self.t5_tokenizer.convert_ids_to_tokens(t5_ids),
            truncated=full_clip > self.max_length or full_t5 > self.t5_max_length,
            content=list(range(1, n_clip + 1)) + [n + k for k in range(n_t5)],
            fixed=(0,),
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

        if self.kind == "flux":
            return None, None  # FLUX's stock call takes no negative (guidance is distilled)
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
            first = 1 if 0 in enc.fixed else 0
            if not first <= pos < enc.length:
                raise config_error(
                    argument,
                    f"token position #{pos} is outside {first}..{enc.length - 1} for prompt {enc.prompt!r}",
                    f"use #N with N between {first} and the sequence length minus 1"
                    + (" (0 is BOS)" if first else ""),
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
