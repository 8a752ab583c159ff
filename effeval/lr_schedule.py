"""The learning-rate schedule of the small training loops here (the zoo's trainers, SpeLLM distillation)."""

from __future__ import annotations

import math
from collections.abc import Callable


def warmup_cosine(steps: int) -> Callable[[int], float]:
    """LR multiplier per step (for ``LambdaLR``): linear warm-up over the first 5% of ``steps``,
    then cosine decay from 1 to 0.1 at the last step."""
    warmup = max(1, steps // 20)

    def at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    return at
