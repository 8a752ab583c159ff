"""Tiny causal LMs on real tokenizers: the zoo's language models.

| name | architecture | tokenizer |
|---|---|---|
| llama-sp | LlamaForCausalLM | Mistral 32k SentencePiece |
| qwen-tekken | Qwen2ForCausalLM | tekken 131k byte-level BPE |
| llama-sp-v3 | LlamaForCausalLM | Mistral v3 32,768 SentencePiece |
| mamba-sp | MambaForCausalLM | Mistral 32k SentencePiece |
| mamba2-sp | Mamba2ForCausalLM | Mistral 32k SentencePiece |

All share one seed and, with ``trained=True``, the same corpus (Python's own text), so pairs
with different tokenizers still agree often enough for speculative decoding to accept drafts.
"""

from __future__ import annotations

import logging
from pathlib import Path

from effeval.zoo import register
from effeval.zoo.tokenizers import load_tokenizer, write_tokenizer

logger = logging.getLogger(__name__)

SEED = 1234
HIDDEN = 64
TRAIN_BATCH = 8
# (steps, seqlen) per model: the 131k-vocab output layer makes tekken ~4x slower per token, and
# the CPU Mamba scans are sequential; together these stay within a few minutes on 2 cores.
TRAIN_PLAN = {
    "llama-sp": (300, 128),
    "qwen-tekken": (200, 64),
    "llama-sp-v3": (300, 128),
    "mamba-sp": (150, 64),
    "mamba2-sp": (150, 64),
}


def make_config(arch: str, tok, hidden: int = HIDDEN, layers: int = 2, **overrides):
    """A tiny ``arch`` config ("llama", "qwen2", "mamba", "mamba2") on ``tok``'s vocabulary and
    special tokens: the zoo's one shape per architecture; ``overrides`` change single fields."""
    import transformers as tf

    decoder = dict(  # the same tiny decoder shape for Llama and Qwen2; only the class differs
        intermediate_size=2 * hidden,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
    )
    ssm = dict(state_size=16, expand=2, conv_kernel=4, time_step_rank=8)
    shapes = {
        "llama": (tf.LlamaConfig, decoder),
        "qwen2": (tf.Qwen2Config, decoder),
        "mamba": (tf.MambaConfig, {**ssm, "tie_word_embeddings": True}),
        # num_heads * head_dim must equal expand * hidden_size (Mamba2Config checks it)
        "mamba2": (
            tf.Mamba2Config,
            {
                **ssm,
                "num_heads": 8,
                "head_dim": 16,
                "n_groups": 1,
                "chunk_size": 64,
                "tie_word_embeddings": False,
            },
        ),
    }
    if arch not in shapes:
        raise ValueError(f"unknown architecture {arch!r}")
    config_class, fields = shapes[arch]
    return config_class(
        vocab_size=len(tok),
        hidden_size=hidden,
        num_hidden_layers=layers,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        **{**fields, **overrides},
    )


def save_causal_lm(out: Path, model, tok, losses: list[float] | None = None) -> None:
    """Write a zoo LM folder: weights, tokenizer, ``pad_token_id`` for generation and, when it was
    trained, the loss curve (``train_log.txt``: step, loss)."""
    if losses is not None:
        (out / "train_log.txt").write_text("\n".join(f"{i}\t{v:.5f}" for i, v in enumerate(losses)) + "\n")
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))


def build_causal_lm(out: Path, arch: str, tokenizer: str, trained: bool, name: str, seed: int = SEED) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    write_tokenizer(tokenizer, out)
    tok = load_tokenizer(out)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(make_config(arch, tok))
    losses = None
    if trained:
        from effeval.token_blocks import pack_token_blocks
        from effeval.zoo.corpus import corpus_texts
        from effeval.zoo.trainer import train_causal_lm

        steps, seqlen = TRAIN_PLAN[name]
        blocks = pack_token_blocks(tok, corpus_texts("mixed"), seqlen, max_blocks=4000)
        losses = train_causal_lm(
            model, blocks, steps=steps, batch_size=TRAIN_BATCH, seed=seed, desc=f"train {name}"
        )
    save_causal_lm(out, model, tok, losses)


# name -> (architecture, tokenizer, description, part of the default `effeval zoo build`)
LANGUAGE_MODELS = {
    "llama-sp": ("llama", "mistral-sp", "Llama-style causal LM on Mistral's 32k SentencePiece", True),
    "qwen-tekken": ("qwen2", "tekken", "Qwen2-style causal LM on tekken (131k byte-level BPE)", True),
    "llama-sp-v3": (
        "llama",
        "mistral-sp-v3",
        "Llama-style causal LM on Mistral's v3 32,768 SentencePiece",
        False,
    ),
    "mamba-sp": ("mamba", "mistral-sp", "Mamba (v1) causal LM on Mistral's 32k SentencePiece", True),
    "mamba2-sp": ("mamba2", "mistral-sp", "Mamba2 causal LM on Mistral's 32k SentencePiece", True),
}


def _register(name: str, arch: str, tokenizer: str, description: str, default: bool) -> None:
    @register(name, description, default=default)
    def _build(out: Path, trained: bool) -> None:
        build_causal_lm(out, arch, tokenizer, trained, name)


for _name, (_arch, _tokenizer, _description, _default) in LANGUAGE_MODELS.items():
    _register(_name, _arch, _tokenizer, _description, _default)
