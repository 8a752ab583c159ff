"""Zoo entry ``smollm2-drafter-sp``: a small drafter for SmolLM2-135M with another tokenizer.

Real deployments pair a large target with a *shallow, narrow* drafter: at batch size 1 on a CPU a
deep drafter costs about as much per token as the target. This one is a 2-layer, 128-wide Llama on
Mistral's 32k SentencePiece (a different real tokenizer than SmolLM2's 49k byte-level BPE), so the
pair exercises every cross-vocabulary path (SLEM, TLI, SLRS, transformers' ``hf``).

Sequence-level distillation from SmolLM2's own outputs on real text that no evaluation task
uses (Python's stdlib sources and pydoc's topic help, ``effeval.zoo.corpus``): SmolLM2 continues
fixed prompts cut from that text (greedy, and sampled at temperature 1 for the sampling laws),
and the drafter is trained on those continuations (up-weighted) mixed with the text itself.
Deterministic for a given machine (fixed prompts, seeds and step counts). ``effeval-real.json``-
style provenance goes to ``effeval-drafter.json`` (teacher, data, sizes, build seconds).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from effeval.zoo import register

logger = logging.getLogger(__name__)

TEACHER = "smollm2-135m"
SEED = 1234
HIDDEN = 128
LAYERS = 2
# Distillation data: prompts per batch, batches per decoding mode, new tokens per prompt.
PROMPT_TOKENS = 48
PROMPTS_PER_BATCH = 32
NEW_TOKENS = 64
GREEDY_BATCHES = 1
SAMPLED_BATCHES = 0
DISTILLED_WEIGHT = 4  # each teacher continuation appears this many times in the training text
TRAIN_STEPS = 200
TRAIN_SEQLEN = 96
TRAIN_BATCH = 8


def _prompts(teacher_tok, n: int, offset: int) -> list[str]:
    """``n`` prompt texts of PROMPT_TOKENS teacher tokens, cut at evenly spaced places of the corpus
    (code and prose alternate, so both styles get continued)."""
    from effeval.zoo.corpus import corpus_texts

    texts = corpus_texts("mixed")
    out = []
    for i in range(n):
        text = texts[(offset + i) % len(texts)]
        ids = teacher_tok(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= PROMPT_TOKENS:
            continue
        # A deterministic start inside the text: spread over it by the prompt's index.
        start = ((offset + i) * 7919) % (len(ids) - PROMPT_TOKENS)
        out.append(teacher_tok.decode(ids[start : start + PROMPT_TOKENS]))
    return out


def teacher_continuations(teacher_dir: Path) -> list[str]:
    """Prompt + SmolLM2 continuation texts (greedy batches, then sampled batches)."""
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(teacher_dir)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(teacher_dir).eval()
    plan = [False] * GREEDY_BATCHES + [True] * SAMPLED_BATCHES
    out: list[str] = []
    for b, sample in enumerate(tqdm(plan, desc="teacher continuations", unit="batch")):
        prompts = _prompts(tok, PROMPTS_PER_BATCH, b * PROMPTS_PER_BATCH)
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(SEED + b)
        with torch.no_grad():
            gen = model.generate(
                **enc,
                max_new_tokens=NEW_TOKENS,
                do_sample=sample,
                temperature=1.0 if sample else None,
                top_k=0 if sample else None,
                top_p=1.0 if sample else None,
                pad_token_id=tok.pad_token_id,
            )
        new = gen[:, enc["input_ids"].shape[1] :]
        for prompt, ids in zip(prompts, new.tolist()):
            out.append(prompt + tok.decode(ids, skip_special_tokens=True))
    return out


@register(
    "smollm2-drafter-sp",
    "2-layer 128-wide Llama drafter on Mistral 32k SentencePiece, distilled from SmolLM2-135M",
    default=False,
    depends=(TEACHER,),
)
def build_smollm2_drafter(out: Path, trained: bool) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from effeval import zoo
    from effeval.token_blocks import pack_token_blocks
    from effeval.zoo.corpus import corpus_texts
    from effeval.zoo.lm import make_config
    from effeval.zoo.tokenizers import load_tokenizer, write_tokenizer
    from effeval.zoo.trainer import train_causal_lm

    started = time.perf_counter()
    teacher_dir = zoo.get(TEACHER)
    distilled = teacher_continuations(teacher_dir)
    teacher_seconds = time.perf_counter() - started

    write_tokenizer("mistral-sp", out)
    tok = load_tokenizer(out)
    config = make_config("llama", tok)
    config.hidden_size, config.intermediate_size = HIDDEN, 3 * HIDDEN
    config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads = LAYERS, 4, 2
    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(config)
    # Distilled text first and repeated, interleaved with the corpus it was prompted from.
    texts = distilled * DISTILLED_WEIGHT + corpus_texts("mixed")
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(SEED)).tolist()
    blocks = pack_token_blocks(tok, [texts[i] for i in order], TRAIN_SEQLEN, max_blocks=6000)
    losses = train_causal_lm(
        model, blocks, steps=TRAIN_STEPS, batch_size=TRAIN_BATCH, seed=SEED, desc="train smollm2-drafter-sp"
    )
    model.eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    (out / "train_log.txt").write_text("\n".join(f"{i}\t{v:.5f}" for i, v in enumerate(losses)) + "\n")
    info = {
        "teacher": TEACHER,
        "tokenizer": "mistral-sp",
        "hidden_size": HIDDEN,
        "layers": LAYERS,
        "parameters": sum(p.numel() for p in model.parameters()),
        "distilled_texts": len(distilled),
        "teacher_new_tokens": len(distilled) * NEW_TOKENS,
        "train_blocks": int(blocks.shape[0]),
        "train_steps": TRAIN_STEPS,
        "final_loss": losses[-1] if losses else None,
        "teacher_seconds": round(teacher_seconds, 1),
        "build_seconds": round(time.perf_counter() - started, 1),
        "torch_threads": torch.get_num_threads(),
    }
    (out / "effeval-drafter.json").write_text(json.dumps(info, indent=2) + "\n")
    logger.info("zoo: smollm2-drafter-sp built in %.0fs", info["build_seconds"])
