"""Pack tokenized texts into fixed-length training blocks (used by the zoo trainer and SpeLLM distillation)."""

from __future__ import annotations

from collections.abc import Sequence


def pack_token_blocks(tokenizer, texts: Sequence[str], seqlen: int, max_blocks: int | None = None):
    """Tokenize ``texts`` (each with EOS appended), concatenate, cut into ``seqlen`` blocks."""
    import torch

    ids: list[int] = []
    eos = tokenizer.eos_token_id
    for text in texts:
        ids.extend(tokenizer.encode(text, add_special_tokens=False))
        if eos is not None:
            ids.append(eos)
        if max_blocks is not None and len(ids) >= seqlen * max_blocks:
            break
    n = len(ids) // seqlen
    if max_blocks is not None:
        n = min(n, max_blocks)
    if n == 0:
        raise ValueError(f"corpus too small: {len(ids)} tokens for seqlen={seqlen}")
    return torch.tensor(ids[: n * seqlen], dtype=torch.long).view(n, seqlen)
