"""Tiny text-to-image pipelines for tests, the demo and benchmarks, built offline.

| name | pipeline | text encoders | image |
|---|---|---|---|
| sd-tiny | StableDiffusionPipeline (1.x layout) | CLIPTextModel, pad = ``<|endoftext|>`` | 32x32 |
| sd2-tiny | StableDiffusionPipeline (2.x layout) | CLIPTextModel, pad = ``!`` (id 0) | 32x32 |
| sdxl-tiny | StableDiffusionXLPipeline | CLIPTextModel + CLIPTextModelWithProjection (pooled) | 32x32 |
| flux-tiny, sd3-tiny | FluxPipeline, StableDiffusion3Pipeline | CLIP (+ CLIP) + T5 encoder | 32x32 |

Weights are random (seeded) -- these pipelines exist to exercise the real code paths (real CLIP
BPE tokenizer with 49,408 entries, real diffusers components) in seconds on a CPU, not to draw
anything recognisable. The CLIP BPE vocabulary is the one that ships inside ``open_clip``
(``bpe_simple_vocab_16e6.txt.gz``); :func:`write_clip_tokenizer` turns it into the
``vocab.json`` + ``merges.txt`` that Hugging Face's ``CLIPTokenizer`` loads, byte for byte the
layout of ``openai/clip-vit-large-patch14``'s tokenizer.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from effeval.byte_level import bytes_to_unicode
from effeval.zoo import register

SEED = 2024
# The pipelines' default size: the UNet's 8x8 latents x the VAE's 4x (three blocks, two halvings).
IMAGE_SIZE = 32
LATENT_SIZE = 8
# Real CLIP: 49152 - 256 - 2 merges, 256 byte tokens (+ "</w>" twins), 2 specials = 49408 ids.
N_MERGES = 49152 - 256 - 2
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def open_clip_bpe_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        from effeval.errors import ConfigError

        raise ConfigError(
            "open_clip is not installed. Fix: pip install 'effeval[image]' (open_clip_torch ships the CLIP BPE vocabulary)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"


def write_clip_tokenizer(out: Path, pad_token: str = EOS) -> None:
    """Write a Hugging Face CLIPTokenizer (vocab.json, merges.txt, configs) built from open_clip's BPE.

    ``pad_token``: ``<|endoftext|>`` as in SD 1.x, ``!`` as in SD 2.x / SDXL's second encoder.
    """
    from transformers import CLIPTokenizer

    lines = gzip.open(open_clip_bpe_path(), "rt", encoding="utf-8").read().split("\n")
    merges = [tuple(m.split()) for m in lines[1 : N_MERGES + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += [BOS, EOS]
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(
        json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False), encoding="utf-8"
    )
    (out / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8"
    )
    tok = CLIPTokenizer(
        vocab={t: i for i, t in enumerate(vocab)}, merges=merges, pad_token=pad_token, model_max_length=77
    )
    tok.save_pretrained(str(out))


def _text_encoder(tokenizer, hidden: int, with_projection: bool, seed: int):
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cfg = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=hidden,
        hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    return cls(cfg).eval()


def small_vae(
    block_out_channels: tuple[int, ...],
    norm_num_groups: int,
    sample_size: int,
    latent_channels: int = 4,
    seed: int | None = None,
    **extra,
):
    """A small ``AutoencoderKL`` (one ResNet per block): ``len(block_out_channels) - 1`` halvings,
    so (16, 32, 32) maps 32x32 images to 8x8 latents (the real VAE has four blocks: 8x). ``seed``: the
    torch seed set right before construction (random tiny pipelines rebuild bit-identically)."""
    import torch
    from diffusers import AutoencoderKL

    if seed is not None:
        torch.manual_seed(seed)
    n = len(block_out_channels)
    return AutoencoderKL(
        block_out_channels=tuple(block_out_channels),
        in_channels=3,
        out_channels=3,
        latent_channels=latent_channels,
        layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        norm_num_groups=norm_num_groups,
        sample_size=sample_size,
        **extra,
    ).eval()


def _vae(seed: int):
    return small_vae((16, 32, 32), 8, IMAGE_SIZE, seed=seed)


def _tokenizer(out: Path, sub: str, pad_token: str):
    from transformers import CLIPTokenizer

    write_clip_tokenizer(out / sub, pad_token=pad_token)
    return CLIPTokenizer.from_pretrained(str(out / sub))


def sd_unet(
    sample_size: int,
    cross_attention_dim: int,
    down_block_types: tuple[str, str],
    up_block_types: tuple[str, str],
    attention_head_dim: int = 4,
    block_out_channels: tuple[int, int] = (32, 64),
    seed: int | None = None,
):
    """A small two-level ``UNet2DConditionModel`` on 4-channel latents (seeded like :func:`small_vae`)."""
    import torch
    from diffusers import UNet2DConditionModel

    if seed is not None:
        torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=block_out_channels,
        down_block_types=down_block_types,
        up_block_types=up_block_types,
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=attention_head_dim,
        norm_num_groups=8,
    ).eval()


def ddim_scheduler():
    """Stable Diffusion's DDIM sampler settings (scaled-linear betas, no clipping)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def save_sd_pipeline(out: Path, vae, text_encoder, tokenizer, unet, info: dict) -> None:
    """A ``StableDiffusionPipeline`` (DDIM, no safety checker) saved to ``out`` with the zoo's
    ``effeval_zoo.json`` (``info``: image size, sampling steps, seed, ...)."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=ddim_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    save_zoo_pipeline(pipe, out, info)


def save_zoo_pipeline(pipe, out: Path, info: dict) -> None:
    pipe.save_pretrained(str(out), safe_serialization=True)
    (out / "effeval_zoo.json").write_text(json.dumps(info, indent=2) + "\n")


def build_sd(out: Path, pad_token: str = EOS, seed: int = SEED) -> None:
    tokenizer = _tokenizer(out, "tokenizer", pad_token)
    text_encoder = _text_encoder(tokenizer, 32, False, seed)
    unet = sd_unet(
        LATENT_SIZE,
        32,
        ("CrossAttnDownBlock2D", "DownBlock2D"),
        ("UpBlock2D", "CrossAttnUpBlock2D"),
        seed=seed + 1,
    )
    info = {"image_size": IMAGE_SIZE, "steps": 2, "seed": seed}
    save_sd_pipeline(out, _vae(seed + 2), text_encoder, tokenizer, unet, info)


def build_sdxl(out: Path, seed: int = SEED) -> None:
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    tokenizer = _tokenizer(out, "tokenizer", EOS)
    tokenizer_2 = _tokenizer(out, "tokenizer_2", "!")
    text_encoder = _text_encoder(tokenizer, 32, False, seed)
    text_encoder_2 = _text_encoder(tokenizer_2, 32, True, seed + 3)
    torch.manual_seed(seed + 1)
    time_dim = 8
    unet = UNet2DConditionModel(
        sample_size=LATENT_SIZE,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_dim,
        transformer_layers_per_block=(1, 1),
        # 6 micro-conditioning numbers (sizes, crop, target) x time_dim + the pooled text embedding.
        projection_class_embeddings_input_dim=6 * time_dim + 32,
        cross_attention_dim=64,
        norm_num_groups=8,
    ).eval()
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )
    pipe = StableDiffusionXLPipeline(
        vae=_vae(seed + 2),
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=scheduler,
        force_zeros_for_empty_prompt=True,
    )
    save_zoo_pipeline(pipe, out, {"image_size": IMAGE_SIZE, "steps": 2, "seed": seed})


@register("sd-tiny", "tiny Stable Diffusion 1.x-style pipeline (CLIP BPE tokenizer, 32x32)", default=False)
def _sd_tiny(out: Path, trained: bool) -> None:
    build_sd(out, pad_token=EOS)


@register("sd2-tiny", "tiny Stable Diffusion 2.x-style pipeline (pad token '!')", default=False)
def _sd2_tiny(out: Path, trained: bool) -> None:
    build_sd(out, pad_token="!")


@register("sdxl-tiny", "tiny SDXL pipeline (two CLIP text encoders + pooled embedding, 32x32)", default=False)
def _sdxl_tiny(out: Path, trained: bool) -> None:
    build_sdxl(out)


# --- T5-encoder pipelines (FLUX, SD3) -------------------------------------------------------

T5_VOCAB = 2000


def write_t5_tokenizer(out: Path, vocab_size: int = T5_VOCAB) -> None:
    """A T5 tokenizer folder from a SentencePiece unigram model trained here on pydoc's topic
    help (T5's own spiece.model is not shipped by any package; any unigram model has the same
    interface: ``</s>`` = 1 appended, ``<pad>`` = 0, ``▁`` word starts, character offsets)."""
    import io

    import sentencepiece as spm
    from transformers import T5TokenizerFast

    from effeval.zoo.corpus import pydoc_topics

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(t for text in pydoc_topics() for t in text.splitlines() if t.strip()),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        character_coverage=1.0,
        input_sentence_size=20000,
        shuffle_input_sentence=False,
        num_threads=1,
        minloglevel=2,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "spiece.model").write_bytes(model.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    # transformers 5 builds the fast unigram tokenizer from (piece, score) pairs
    tok = T5TokenizerFast(vocab=vocab, extra_ids=0, model_max_length=512)
    tok.save_pretrained(str(out))


def _t5_encoder(tokenizer, d_model: int, seed: int):
    import torch
    from transformers import T5Config, T5EncoderModel

    cfg = T5Config(
        vocab_size=len(tokenizer),
        d_model=d_model,
        d_kv=8,
        d_ff=2 * d_model,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        feed_forward_proj="gated-gelu",
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=0,
    )
    torch.manual_seed(seed)
    return T5EncoderModel(cfg).eval()


def _small_vae(latent_channels: int, seed: int, **extra):
    return small_vae((8, 16), 4, 32, latent_channels, seed, **extra)


def build_flux(out: Path, seed: int = SEED) -> None:
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import T5TokenizerFast

    tokenizer = _tokenizer(out, "tokenizer", EOS)
    write_t5_tokenizer(out / "tokenizer_2")
    tokenizer_2 = T5TokenizerFast.from_pretrained(str(out / "tokenizer_2"))
    text_encoder = _text_encoder(tokenizer, 32, False, seed)
    text_encoder_2 = _t5_encoder(tokenizer_2, 32, seed + 3)
    torch.manual_seed(seed + 1)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,  # 4 latent channels, packed 2x2
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=(2, 2, 4),
    ).eval()
    pipe = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=_small_vae(4, seed + 2, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )
    save_zoo_pipeline(pipe, out, {"image_size": 32, "steps": 2, "seed": seed})


def build_sd3(out: Path, seed: int = SEED) -> None:
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import T5TokenizerFast

    tokenizer = _tokenizer(out, "tokenizer", EOS)
    tokenizer_2 = _tokenizer(out, "tokenizer_2", "!")
    write_t5_tokenizer(out / "tokenizer_3")
    tokenizer_3 = T5TokenizerFast.from_pretrained(str(out / "tokenizer_3"))
    torch.manual_seed(seed + 1)
    transformer = SD3Transformer2DModel(
        sample_size=16,
        patch_size=1,
        in_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_projection_dim=32,
        joint_attention_dim=64,  # the T5 width; the two CLIPs' 32 + 32 features are padded to it
        pooled_projection_dim=64,  # the two CLIPs' pooled 32 + 32
        out_channels=4,
    ).eval()
    pipe = StableDiffusion3Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=_small_vae(4, seed + 2, shift_factor=0.0),
        text_encoder=_text_encoder(tokenizer, 32, True, seed),
        tokenizer=tokenizer,
        text_encoder_2=_text_encoder(tokenizer_2, 32, True, seed + 4),
        tokenizer_2=tokenizer_2,
        text_encoder_3=_t5_encoder(tokenizer_3, 64, seed + 3),
        tokenizer_3=tokenizer_3,
        transformer=transformer,
    )
    save_zoo_pipeline(pipe, out, {"image_size": 32, "steps": 2, "seed": seed})


@register(
    "flux-tiny", "tiny FLUX pipeline (CLIP pooled + T5 sequence; SentencePiece T5 tokenizer)", default=False
)
def _flux_tiny(out: Path, trained: bool) -> None:
    build_flux(out)


@register("sd3-tiny", "tiny SD3 pipeline (two CLIPs + T5 joint sequence)", default=False)
def _sd3_tiny(out: Path, trained: bool) -> None:
    build_sd3(out)
