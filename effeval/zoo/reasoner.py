"""``reasoner-sp``: a tiny "reasoning" LM for short-m@k, on Mistral's 32k SentencePiece.

Trained briefly on synthetic multi-step arithmetic written as thinking chains::

    Q: 7 + 5 - 3 + 4 = ?
    A: <think> 7 + 5 = 12. 12 - 3 = 9. 9 + 4 = 13. </think> \\boxed{13}</s>

Chains vary in length across questions (1-3 operations) and within one: each step may be followed
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
from effeval.zoo.lm import make_config, save_causal_lm
from effeval.zoo.tokenizers import load_tokenizer, write_tokenizer

logger = logging.getLogger(__name__)

SEED = 4321
HIDDEN = 96
LAYERS = 3
TRAIN_STEPS = 600
BATCH = 24
SEQLEN = 160
RECHECK_P = 0.35  # chance of a "wait" re-check after a step
BAD_RECHECK_P = 0.7  # chance that a re-check changes a right result into a wrong one


def question_text(start: int, ops: list[tuple[str, int]]) -> str:
    return f"Q: {start} " + " ".join(f"{op} {x}" for op, x in ops) + " = ?\nA: <think>"


def make_problem(rng: random.Random, n_ops: int | None = None) -> tuple[int, list[tuple[str, int]], int]:
    """A start value and 1-3 operations whose running total stays in 0..29; returns (start, ops, answer)."""
    n_ops = n_ops or rng.choice((1, 2, 2, 3))
    total = start = rng.randint(1, 9)
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


def train_reasoner(model, tok, steps: int = TRAIN_STEPS, seed: int = SEED, lr: float = 3e-3) -> list[float]:
    """Restricted-vocabulary training (see module docstring); returns the loss curve.

    A compact copy of the model whose vocabulary is the used tokens plus one "other" row is
    trained, then copied into ``model`` (full vocabulary): used rows where they belong, the
    "other" row into every unused row. The compact output layer adds ``log(#unused)`` to the
    "other" logit, which is exactly the mass those identical rows get in the full softmax.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM

    texts = training_texts(3000, seed)
    seqs = [tok.encode(t, add_special_tokens=True) + [tok.eos_token_id] for t in texts]
    seqs = [s for s in seqs if len(s) <= SEQLEN]  # drop the rare very long chains rather than cut answers off
    vocab = model.config.vocab_size
    used = sorted({t for s in seqs for t in s} | {tok.eos_token_id, tok.bos_token_id, tok.pad_token_id})
    n_used, n_other = len(used), vocab - len(used)
    to_local = torch.full((vocab,), -1, dtype=torch.long)
    to_local[torch.tensor(used)] = torch.arange(n_used)
    ids = torch.full((len(seqs), SEQLEN), int(to_local[tok.pad_token_id]), dtype=torch.long)
    labels = torch.full((len(seqs), SEQLEN), -100, dtype=torch.long)
    lengths = torch.tensor([len(s) for s in seqs])
    for i, s in enumerate(seqs):
        local = to_local[torch.tensor(s)]
        ids[i, : len(s)] = local
        labels[i, : len(s) - 1] = local[1:]
    cfg = model.config.__class__(**{**model.config.to_dict(), "vocab_size": n_used + 1})
    torch.manual_seed(seed)
    compact = AutoModelForCausalLM.from_config(cfg)
    emb = compact.get_input_embeddings().weight
    opt = torch.optim.AdamW(compact.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    # effeval.lr_schedule.warmup_cosine's schedule, grouped as this model was built with: regrouping
    # pi * (s - warmup) / n changes the LR's last bit, and with it the trained reasoner-sp
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            (s + 1) / warmup
            if s < warmup
            else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup)))
        ),
    )
    gen = torch.Generator().manual_seed(seed)
    offset = torch.zeros(n_used + 1)
    offset[-1] = math.log(n_other)
    losses = []
    compact.train()
    threads = torch.get_num_threads()
    # One thread: these matrices are tiny, and on a busy 2-core machine OpenMP's spinning threads
    # made each step ~14x slower than a single thread (measured).
    torch.set_num_threads(1)
    for step in tqdm(range(steps), desc="train reasoner-sp", leave=False, mininterval=1.0):
        idx = torch.randint(0, len(seqs), (BATCH,), generator=gen)
        width = int(lengths[idx].max())
        mask = (torch.arange(width)[None, :] < lengths[idx][:, None]).long()
        hidden = compact.model(input_ids=ids[idx, :width], attention_mask=mask).last_hidden_state
        logits = hidden @ emb.T + offset
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, n_used + 1), labels[idx, :width].reshape(-1)
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(compact.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 100 == 0:
            logger.info("reasoner-sp step %d loss %.4f", step, losses[-1])
    torch.set_num_threads(threads)
    compact.eval()
    expand_compact(compact, model, used)
    return losses


def expand_compact(compact, model, used: list[int]) -> None:
    """Copy a compact model (vocabulary = ``used`` + one "other" row) into the full-vocabulary
    ``model``: transformer weights as they are, used rows in place, "other" into every unused row."""
    import torch

    with torch.no_grad():
        state = {
            k: v for k, v in compact.state_dict().items() if "embed_tokens" not in k and "lm_head" not in k
        }
        model.load_state_dict(state, strict=False)
        emb = compact.get_input_embeddings().weight
        full = model.get_input_embeddings().weight
        full[:] = emb[-1]
        full[torch.tensor(used)] = emb[: len(used)]
    model.eval()


@register(
    "reasoner-sp",
    "tiny <think>-chain arithmetic reasoner (Llama, Mistral 32k SentencePiece) for short-m@k",
    default=False,
)
def _reasoner_sp(out: Path, trained: bool) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    write_tokenizer("mistral-sp", out)
    tok = load_tokenizer(out)
    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(make_config("llama", tok, hidden=HIDDEN, layers=LAYERS))
    save_causal_lm(out, model, tok, train_reasoner(model, tok) if trained else None)
