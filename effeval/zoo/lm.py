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


def _special_ids(tok) -> dict:
    return {
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }


def make_config(arch: str, tok):
    import transformers as tf

    vocab = len(tok)
    ids = _special_ids(tok)
    if arch in ("llama", "qwen2"):
        # the same tiny decoder shape for both; only the architecture class differs
        config_class = tf.LlamaConfig if arch == "llama" else tf.Qwen2Config
        return config_class(
            vocab_size=vocab,
            hidden_size=HIDDEN,
            intermediate_size=2 * HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            tie_word_embeddings=True,
            **ids,
        )
    if arch == "mamba":
        return tf.MambaConfig(
            vocab_size=vocab,
            hidden_size=HIDDEN,
            state_size=16,
            num_hidden_layers=2,
            expand=2,
            conv_kernel=4,
            time_step_rank=8,
            tie_word_embeddings=True,
            **ids,
        )
    if arch == "mamba2":
        # num_heads * head_dim must equal expand * hidden_size.
        return tf.Mamba2Config(
            vocab_size=vocab,
            hidden_size=HIDDEN,
            state_size=16,
            num_hidden_layers=2,
            expand=2,
            num_heads=8,
            head_dim=16,
            n_groups=1,
            conv_kernel=4,
            chunk_size=64,
            time_step_rank=8,
            tie_word_embeddings=False,
            **ids,
        )
    raise ValueError(f"unknown architecture {arch!r}")


def build_causal_lm(out: Path, arch: str, tokenizer: str, trained: bool, name: str, seed: int = SEED) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    write_tokenizer(tokenizer, out)
    tok = load_tokenizer(out)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(make_config(arch, tok))
    if trained:
        from effeval.token_blocks import pack_token_blocks
        from effeval.zoo.corpus import corpus_texts
        from effeval.zoo.trainer import train_causal_lm

        steps, seqlen = TRAIN_PLAN[name]
        blocks = pack_token_blocks(tok, corpus_texts("mixed"), seqlen, max_blocks=4000)
        losses = train_causal_lm(
            model, blocks, steps=steps, batch_size=TRAIN_BATCH, seed=seed, desc=f"train {name}"
        )
        (out / "train_log.txt").write_text("\n".join(f"{i}\t{v:.5f}" for i, v in enumerate(losses)) + "\n")
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))


@register("llama-sp", "Llama-style causal LM on Mistral's 32k SentencePiece")
def _llama_sp(out: Path, trained: bool) -> None:
    build_causal_lm(out, "llama", "mistral-sp", trained, "llama-sp")


@register("qwen-tekken", "Qwen2-style causal LM on tekken (131k byte-level BPE)")
def _qwen_tekken(out: Path, trained: bool) -> None:
    build_causal_lm(out, "qwen2", "tekken", trained, "qwen-tekken")


@register("llama-sp-v3", "Llama-style causal LM on Mistral's v3 32,768 SentencePiece", default=False)
def _llama_sp_v3(out: Path, trained: bool) -> None:
    build_causal_lm(out, "llama", "mistral-sp-v3", trained, "llama-sp-v3")


@register("mamba-sp", "Mamba (v1) causal LM on Mistral's 32k SentencePiece")
def _mamba_sp(out: Path, trained: bool) -> None:
    build_causal_lm(out, "mamba", "mistral-sp", trained, "mamba-sp")


@register("mamba2-sp", "Mamba2 causal LM on Mistral's 32k SentencePiece")
def _mamba2_sp(out: Path, trained: bool) -> None:
    build_causal_lm(out, "mamba2", "mistral-sp", trained, "mamba2-sp")
