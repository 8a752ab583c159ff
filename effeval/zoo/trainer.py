"""One small, deterministic causal-LM trainer (used by the zoo and by benchmarks)."""

from __future__ import annotations

import logging

from effeval.lr_schedule import warmup_cosine

logger = logging.getLogger(__name__)


def train_causal_lm(
    model,
    blocks,
    *,
    steps: int,
    batch_size: int = 8,
    lr: float = 3e-3,
    seed: int = 0,
    desc: str = "train",
    log_every: int = 50,
) -> list[float]:
    """AdamW with linear warm-up and cosine decay on random batches of ``blocks``.

    Deterministic for a given seed (its own ``torch.Generator``); returns the loss curve.
    """
    import torch
    from tqdm.auto import tqdm

    gen = torch.Generator().manual_seed(seed)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(steps))
    losses: list[float] = []
    bar = tqdm(range(steps), desc=desc, leave=False, mininterval=1.0)
    for step in bar:
        idx = torch.randint(0, blocks.shape[0], (batch_size,), generator=gen)
        batch = blocks[idx]
        out = model(input_ids=batch, labels=batch)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(out.loss))
        if step % log_every == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            logger.info("%s step %d/%d loss %.4f", desc, step + 1, steps, losses[-1])
    model.eval()
    return losses
