"""Zoo entry ``smollm2-drafter-sp``: a small drafter for SmolLM2-135M with another tokenizer.

Real deployments pair a large target with a *shallow, narrow* drafter: at batch size 1 on a CPU a
deep drafter costs about as much per token as the target. This one is a 2-layer, 192-wide Llama
on Mistral's 32k SentencePiece (a different real tokenizer than SmolLM2's 49k byte-level BPE), so
the pair exercises every cross-vocabulary path (SLEM, TLI, SLRS, transformers' ``hf``).

What gives acceptance at greedy decoding is predicting SmolLM2's *greedy* continuation, so the
drafter is trained by sequence-level distillation: SmolLM2 continues prompts cut from real text
that no evaluation task uses, and the drafter learns those continuations (up-weighted) mixed
with the text itself (``effeval.zoo.corpus``):

- code: function headers + docstrings from the Python stdlib sources (HumanEval's shape: a
  ``def`` and its docstring, the body to be written);
- prose: ``summarize: <paragraph>\\none-sentence summary:`` around paragraphs of pydoc's topic
  help and the training part of Verne's "In the Year 2889" (reasoning-gym), XSum's prompt shape.

Its embedding rows start from SmolLM2's (a piece's text through SmolLM2's tokenizer, the rows
averaged and projected on their principal axes), so training starts from the teacher's lexicon.
Cost: the 32k output layer dominates a narrow model's training step, so most steps compute the
softmax over the token ids that occur in the training text only (the others never are a label;
a closing phase over the full vocabulary pushes them down). Tied embeddings, one thread.
Deterministic for a given machine (fixed prompts, seeds and step counts). Provenance goes to
``effeval-drafter.json``: teacher, data sizes, CPU and wall seconds per phase, the loss, and the
drafter's greedy next-token agreement with SmolLM2's greedy continuations of held-out text
(stdlib modules and Verne paragraphs the build never trains on), measured in drafter tokens.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

from effeval.zoo import register

logger = logging.getLogger(__name__)

TEACHER = "smollm2-135m"
SEED = 1234
HIDDEN = 192
LAYERS = 2
HEADS = 4
# Distillation data: teacher prompts (code, prose), their length cap and continuation length.
CODE_PROMPTS = 32
PROSE_PROMPTS = 16
HELDOUT_PROMPTS = 8  # half code, half prose, from text the build never trains on
PROMPT_TOKENS = 64
NEW_TOKENS = 48
TEACHER_BATCH = 16
DISTILLED_WEIGHT = 8  # each teacher continuation appears this many times in the training text
TRAIN_SEQLEN = 128
TRAIN_BATCH = 8
TRAIN_STEPS = 220
FULL_VOCAB_STEPS = 20  # closing steps with the softmax over all 32k ids
LR = 4e-3

_DEF = re.compile(r"^[ \t]*def [^\n]*:\n[ \t]*(\"\"\"|''')", re.M)


def _code_prompts(texts: list[str], n: int) -> list[str]:
    """``n`` HumanEval-shaped prompts: a ``def`` line and its docstring, cut from the sources."""
    found = []
    for text in texts:
        for m in _DEF.finditer(text):
            end = text.find(m.group(1), m.end())
            if end < 0 or end - m.start() > 1200:
                continue
            found.append(text[m.start() : end + 3] + "\n")
    step = max(1, len(found) // n)  # spread over all modules, deterministically
    return found[::step][:n]


def _paragraphs(texts: list[str]) -> list[str]:
    return [p.strip() for t in texts for p in t.split("\n\n") if 200 <= len(p.strip()) <= 900]


def _prose_prompts(texts: list[str], n: int) -> list[str]:
    paragraphs = _paragraphs(texts)
    step = max(1, len(paragraphs) // n)
    return [f"summarize: {p}\none-sentence summary:" for p in paragraphs[::step][:n]]


def _load_teacher(teacher_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(teacher_dir)
    tok.padding_side = "left"
    return tok, AutoModelForCausalLM.from_pretrained(teacher_dir).eval()


def teacher_continuations(tok, model, prompts: list[str], desc: str) -> list[str]:
    """SmolLM2's greedy continuation (NEW_TOKENS) of each prompt, each prompt cut to its last
    PROMPT_TOKENS teacher tokens; returns prompt + continuation texts."""
    import torch
    from tqdm.auto import tqdm

    out: list[str] = []
    batches = range(0, len(prompts), TEACHER_BATCH)
    for b in tqdm(batches, desc=desc, unit="batch"):
        cut = [
            tok.decode(tok(p, add_special_tokens=False)["input_ids"][-PROMPT_TOKENS:])
            for p in prompts[b : b + TEACHER_BATCH]
        ]
        enc = tok(cut, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            gen = model.generate(
                **enc, max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=tok.pad_token_id
            )
        for prompt, ids in zip(cut, gen[:, enc["input_ids"].shape[1] :].tolist()):
            out.append(prompt + tok.decode(ids, skip_special_tokens=True))
    return out


def teacher_embedding_init(tok, t_tok, teacher, dim: int):
    """Drafter embedding rows from the teacher's: each drafter piece's text is encoded with the
    teacher's tokenizer, the teacher's embedding rows of those ids are averaged and projected on
    their top ``dim`` principal axes (scaled to the usual 0.02 init spread). Pieces without text
    (control tokens, byte fallback) keep their random rows. Returns (rows, mask of set rows)."""
    import torch

    from effeval.methods.hetero_spec.common import BYTE_FALLBACK

    table = teacher.get_input_embeddings().weight.detach().float()
    centered = table - table.mean(0)
    _, vectors = torch.linalg.eigh(centered.T @ centered / len(centered))
    projected = centered @ vectors[:, -dim:]
    projected *= 0.02 / projected.std()
    pieces = tok.convert_ids_to_tokens(list(range(len(tok))))
    special = set(tok.all_special_ids)
    keep = [i for i, p in enumerate(pieces) if i not in special and not BYTE_FALLBACK.match(p)]
    texts = [pieces[i].replace("\u2581", " ") for i in keep]
    encoded = t_tok(texts, add_special_tokens=False)["input_ids"]
    rows = torch.zeros(len(tok), dim)
    mask = torch.zeros(len(tok), dtype=torch.bool)
    for i, ids in zip(keep, encoded):
        if ids:
            rows[i], mask[i] = projected[ids].mean(0), True
    return rows, mask


def _train(model, blocks, used_ids):
    """AdamW, warm-up + cosine; the first TRAIN_STEPS - FULL_VOCAB_STEPS steps score only the ids
    in ``used_ids`` (labels remapped into that subset), the rest the full vocabulary."""
    import torch
    from tqdm.auto import tqdm

    from effeval.lr_schedule import warmup_cosine

    gen = torch.Generator().manual_seed(SEED)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(TRAIN_STEPS))
    remap = torch.full((model.config.vocab_size,), -100, dtype=torch.long)
    remap[used_ids] = torch.arange(len(used_ids))
    emb = model.get_input_embeddings().weight
    losses: list[float] = []
    model.train()
    bar = tqdm(range(TRAIN_STEPS), desc="train smollm2-drafter-sp", mininterval=2.0)
    for step in bar:
        batch = blocks[torch.randint(0, blocks.shape[0], (TRAIN_BATCH,), generator=gen)]
        hidden = model.model(input_ids=batch).last_hidden_state[:, :-1]
        if step < TRAIN_STEPS - FULL_VOCAB_STEPS:
            logits, labels = hidden @ emb[used_ids].T, remap[batch[:, 1:]]
        else:
            logits, labels = hidden @ emb.T, batch[:, 1:]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss))
        if step % 25 == 0 or step == TRAIN_STEPS - 1:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            logger.info("smollm2-drafter-sp step %d/%d loss %.4f", step + 1, TRAIN_STEPS, losses[-1])
    model.eval()
    return losses


def greedy_agreement(model, tok, prompts: list[str], continuations: list[str]) -> dict:
    """Share of the teacher continuation's drafter tokens that the drafter predicts greedily from
    the true prefix (prompt + continuation so far), in the drafter's own tokenization."""
    import torch

    hits = total = 0
    for prompt, full in zip(prompts, continuations):
        ids = tok(full)["input_ids"]
        start = len(tok(prompt)["input_ids"])
        with torch.no_grad():
            pred = model(input_ids=torch.tensor([ids])).logits[0].argmax(-1).tolist()
        for pos in range(start, len(ids)):
            hits += pred[pos - 1] == ids[pos]
            total += 1
    return {"tokens": total, "agreement": hits / total if total else None}


@register(
    "smollm2-drafter-sp",
    "2-layer 192-wide Llama drafter on Mistral 32k SentencePiece, distilled from SmolLM2-135M's greedy outputs",
    default=False,
    depends=(TEACHER,),
    version=2,
)
def build_smollm2_drafter(out: Path, trained: bool) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from effeval import zoo
    from effeval.token_blocks import pack_token_blocks
    from effeval.zoo.corpus import heldout_texts, real_prose_split, stdlib_sources
    from effeval.zoo.lm import make_config
    from effeval.zoo.tokenizers import load_tokenizer, write_tokenizer

    wall0, cpu0 = time.perf_counter(), time.process_time()
    code = stdlib_sources()
    prose_train, prose_heldout = real_prose_split()
    t_tok, teacher = _load_teacher(zoo.get(TEACHER))
    train_prompts = _code_prompts(code, CODE_PROMPTS) + _prose_prompts(prose_train, PROSE_PROMPTS)
    half = HELDOUT_PROMPTS // 2
    heldout_prompts = _code_prompts(heldout_texts(8), half) + _prose_prompts(prose_heldout, half)
    distilled = teacher_continuations(t_tok, teacher, train_prompts, "SmolLM2 greedy (train)")
    heldout = teacher_continuations(t_tok, teacher, heldout_prompts, "SmolLM2 greedy (held-out)")
    teacher_wall, teacher_cpu = time.perf_counter() - wall0, time.process_time() - cpu0

    write_tokenizer("mistral-sp", out)
    tok = load_tokenizer(out)
    config = make_config(
        "llama",
        tok,
        hidden=HIDDEN,
        layers=LAYERS,
        intermediate_size=3 * HIDDEN,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
    )
    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(config)
    rows, from_teacher = teacher_embedding_init(tok, t_tok, teacher, HIDDEN)
    del teacher
    with torch.no_grad():
        model.get_input_embeddings().weight[from_teacher] = rows[from_teacher]
    texts = distilled * DISTILLED_WEIGHT + code + prose_train
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(SEED)).tolist()
    blocks = pack_token_blocks(tok, [texts[i] for i in order], TRAIN_SEQLEN)
    used_ids = torch.unique(blocks)
    train_wall0, train_cpu0 = time.perf_counter(), time.process_time()
    losses = _train(model, blocks, used_ids)
    train_wall, train_cpu = time.perf_counter() - train_wall0, time.process_time() - train_cpu0

    # held-out prompts as the teacher saw them (cut to PROMPT_TOKENS), to split prompt from continuation
    cut = [
        t_tok.decode(t_tok(p, add_special_tokens=False)["input_ids"][-PROMPT_TOKENS:])
        for p in heldout_prompts
    ]
    agreement = greedy_agreement(model, tok, cut, heldout)
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
        "teacher_prompts": {"code": CODE_PROMPTS, "prose": PROSE_PROMPTS, "prompt_tokens": PROMPT_TOKENS},
        "distilled_texts": len(distilled),
        "teacher_new_tokens": len(distilled) * NEW_TOKENS,
        "distilled_weight": DISTILLED_WEIGHT,
        "train_blocks": int(blocks.shape[0]),
        "train_tokens_seen": TRAIN_STEPS * TRAIN_BATCH * TRAIN_SEQLEN,
        "softmax_ids": int(len(used_ids)),
        "embeddings_from_teacher": int(from_teacher.sum()),
        "train_steps": TRAIN_STEPS,
        "full_vocab_steps": FULL_VOCAB_STEPS,
        "final_loss": losses[-1] if losses else None,
        "heldout_greedy_agreement": agreement,
        "teacher_wall_s": round(teacher_wall, 1),
        "teacher_cpu_s": round(teacher_cpu, 1),
        "train_wall_s": round(train_wall, 1),
        "train_cpu_s": round(train_cpu, 1),
        "build_wall_s": round(time.perf_counter() - wall0, 1),
        "build_cpu_s": round(time.process_time() - cpu0, 1),
        "torch_threads": torch.get_num_threads(),
    }
    (out / "effeval-drafter.json").write_text(json.dumps(info, indent=2) + "\n")
    logger.info("zoo: smollm2-drafter-sp: %s", json.dumps(info))
