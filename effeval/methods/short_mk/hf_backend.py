"""``StepBackend`` for a transformers causal LM with a KV cache.

The prompt runs once with batch size 1; its cache is then repeated to n rows
(``DynamicCache.batch_repeat_interleave``) instead of running the prompt n times. Rows that are
done are dropped from the cache (``batch_select_indices``), so a halted chain costs nothing more.
Models without a KV cache of that kind (e.g. recurrent states) fall back to repeating the prompt
in a batch of n for the prefill.
"""

from __future__ import annotations

from collections.abc import Sequence


class HFStepBackend:
    def __init__(self, model, device=None):
        self.model = model
        self.device = device if device is not None else next(model.parameters()).device
        self.cache = None
        self.forward_calls = 0  # every model() call, for tests

    def _forward(self, input_ids, **kwargs):
        self.forward_calls += 1
        return self.model(input_ids=input_ids, use_cache=True, **kwargs)

    def prefill(self, prompt_ids: Sequence[int], n: int):
        import torch

        ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=self.device)
        self.position = ids.shape[1]
        with torch.inference_mode():
            out = self._forward(ids)
            cache = out.past_key_values
            if n > 1:
                if hasattr(cache, "batch_repeat_interleave"):
                    cache.batch_repeat_interleave(n)
                else:  # no shareable cache: run the prompt as a batch of n
                    out = self._forward(ids.expand(n, -1))
                    cache = out.past_key_values
            self.cache = cache
            self.rows = n
            return out.logits[:, -1, :].expand(n, -1).float()

    def decode(self, tokens, keep: Sequence[int]):
        import torch

        with torch.inference_mode():
            if len(keep) != self.rows:
                if not hasattr(self.cache, "batch_select_indices"):
                    from effeval.errors import ConfigError

                    raise ConfigError(
                        f"pretrained: this model's cache ({type(self.cache).__name__}) cannot drop finished "
                        "rows, which short-m@k needs. Fix: use a transformers model with a DynamicCache"
                    )
                self.cache.batch_select_indices(
                    torch.tensor(list(keep), dtype=torch.long, device=self.device)
                )
                self.rows = len(keep)
            position = torch.full((len(keep), 1), self.position, dtype=torch.long, device=self.device)
            out = self._forward(
                tokens.view(-1, 1),
                past_key_values=self.cache,
                position_ids=position,
                cache_position=torch.tensor([self.position], device=self.device),
            )
            self.cache = out.past_key_values
            self.position += 1
            return out.logits[:, -1, :].float()
