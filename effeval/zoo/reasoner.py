"""``reasoner-sp``: a tiny "reasoning" LM for short-m@k, on Mistral's 32k SentencePiece.

Trained briefly on synthetic multi-step arithmetic written as thinking chains::

    Q: 7 + 5 - 3 + 4 = ?
    A: <think> 7 + 5 = 12. 12 - 3 = 9. 9 + 4 = 13. </think> \\boxed{13}</s>

Chains vary in length across questions (2-5 operations) and within one: each step may be followed
by a "wait" re-check. By construction a re-check sometimes talks the chain out of a right
intermediate result (off by one), so longer chains are less often right, as the paper observes
for real reasoning models. Answers are checkable (``\\boxed{}``), so short-m@k vs majority voting
measures something. ``make_problems`` also writes the offline task data.

Training uses a restricted output layer: the loss is a softmax over the tokens the synthetic data
uses plus ONE shared "other token" vector whose logit carries ``+ log(#other tokens)``. At the
end every unused vocabulary row is set to that vector, so the saved full-vocabulary model has
exactly the distribution that was trained (the 32k-way output layer would otherwise dominate CPU
time). Deterministic by seed (``random.Random`` for data, ``torch.Generator`` for batches).
"""

from __future__ import annotations

import logging
import math
import random
from pathlib import Path

from effeval.zoo import register
from effeval.zoo.tokenizers import load_tokenizer, write_tokenizer

logger = logging.getLogger(__name__)

SEED = 4321
HIDDEN = 128
LAYERS = 3
TRAIN_STEPS = 600
BATCH = 24
SEQLEN = 160
RECHECK_P = 0.3  # chance of a "wait" re-check after a step
BAD_RECHECK_P = 0.5  # chance that a re-check changes a right result into a wrong one


def question_text(start: int, ops: list[tuple[str, int]]) -> str:
    return f"Q: {start} " + " ".join(f"{op} {x}" for op, x in ops) + " = ?\nA: <think>"


def make_problem(rng: random.Random, n_ops: int | None = None) -> tuple[int, list[tuple[str, int]], int]:
    """A start value and operations whose running total stays in 0..29; returns (start, ops, answer)."""
    n_ops = n_ops or rng.randint(2, 5)
    total = start = rng.randint(1, 15)
    ops = []
    for _ in range(n_ops):
        if total > 20 or (total >= 3 and rng.random() < 0.45):
            x = rng.randint(1, min(9, total))
            ops.append(("-", x))
            total -= x
        else:
            x = rng.randint(1, 9)
            ops.append(("+", x))
            total += x
    return start, ops, total


def make_chain(rng: random.Random, start: int, ops: list[tuple[str, int]]) -> tuple[str, int]:
    """A thinking chain (after ``<think>``) and the answer it reaches (wrong after a bad re-check)."""
    parts = []
    total = start
    for op, x in ops:
        result = total + x if op == "+" else total - x
        parts.append(f"{total} {op} {x} = {result}.")
        while rng.random() < RECHECK_P:
            if rng.random() < BAD_RECHECK_P:
                result = result + rng.choice((-1, 1))
                parts.append(f"wait, {total} {op} {x} = {result}.")
            else:
                parts.append(f"wait, check {total} {op} {x} = {result}. yes.")
        total = result
    return " " + " ".join(parts) + " </think> \\boxed{" + str(total) + "}", total


def make_problems(n: int, seed: int) -> list[dict]:
    """Task rows ``{question, answer}`` (``question`` is the full prompt up to ``<think>``)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        start, ops, answer = make_problem(rng)
        rows.append({"question": question_text(start, ops), "answer": str(answer)})
    return rows


def training_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        start, ops, _ = make_problem(rng)
        chain, _ = make_chain(rng, start, ops)
        texts.append(question_text(start, ops) + chain)
    return texts


def _config(tok):
    import transformers as tf

    return tf.LlamaConfig(
        vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=LAYERS,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )


def train_reasoner(model, tok, steps: int = TRAIN_STEPS, seed: int = SEED, lr: float = 3e-3) -> list[float]:
    """Restricted-vocabulary training (see module docstring); returns the loss curve."""
    import torch
    from tqdm.auto import tqdm

    texts = training_texts(6000, seed)
    seqs = [tok.encode(t, add_special_tokens=True) + [tok.eos_token_id] for t in texts]
    seqs = [s for s in seqs if len(s) <= SEQLEN]  # drop the rare very long chains rather than cut answers off
    used = sorted({t for s in seqs for t in s} | {tok.eos_token_id, tok.bos_token_id, tok.pad_token_id})
    vocab = model.config.vocab_size
    n_other = vocab - len(used)
    to_local = torch.full((vocab,), -1, dtype=torch.long)
    to_local[torch.tensor(used)] = torch.arange(len(used))
    pad_local = -100
    batch_ids = torch.full((len(seqs), SEQLEN), tok.pad_token_id, dtype=torch.long)
    labels = torch.full((len(seqs), SEQLEN), pad_local, dtype=torch.long)
    mask = torch.zeros((len(seqs), SEQLEN), dtype=torch.long)
    for i, s in enumerate(seqs):
        batch_ids[i, : len(s)] = torch.tensor(s)
        labels[i, : len(s) - 1] = to_local[torch.tensor(s[1:])]
        mask[i, : len(s)] = 1
    emb = model.get_input_embeddings().weight
    other = torch.nn.Parameter(emb.detach()[0].clone() * 0)
    used_t = torch.tensor(used)
    params = list(model.parameters()) + [other]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup)))
    )
    gen = torch.Generator().manual_seed(seed)
    log_other = math.log(n_other)
    losses = []
    model.train()
    for step in tqdm(range(steps), desc="train reasoner-sp", leave=False, mininterval=1.0):
        idx = torch.randint(0, len(seqs), (BATCH,), generator=gen)
        width = int(mask[idx].sum(1).max())
        hidden = model.model(input_ids=batch_ids[idx, :width], attention_mask=mask[idx, :width]).last_hidden_state
        out_rows = torch.cat([emb[used_t], other[None]], dim=0)
        logits = hidden @ out_rows.T
        logits[..., -1] += log_other
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[idx, :width].reshape(-1),
                                                 ignore_index=pad_local)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss))
        if step % 100 == 0:
            logger.info("reasoner-sp step %d loss %.4f", step, losses[-1])
    model.eval()
    with torch.no_grad():
        unused = torch.ones(vocab, dtype=torch.bool)
        unused[used_t] = False
        emb[unused] = other.detach()
    return losses


@register("reasoner-sp", "tiny <think>-chain arithmetic reasoner (Llama, Mistral 32k SentencePiece) for short-m@k",
          default=False)
def _reasoner_sp(out: Path, trained: bool) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    write_tokenizer("mistral-sp", out)
    tok = load_tokenizer(out)
    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(_config(tok))
    if trained:
        losses = train_reasoner(model, tok)
        (out / "train_log.txt").write_text("\n".join(f"{i}\t{v:.5f}" for i, v in enumerate(losses)) + "\n")
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
