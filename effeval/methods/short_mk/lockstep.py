"""Several questions' chains in ONE batch: ``sample_short_mk`` for a group of prompts in lockstep.

On a CPU a decode step of 32 rows costs about twice one of 8 rows (Qwen2.5-Coder-0.5B, one
thread: 0.37 s for 8, 0.72 s for 32), so generating the chains of four questions together makes a
pool of k chains per question about twice as cheap. Each question still runs the unchanged
``sample_short_mk`` (its own chain generators, stop rules and vote) in a thread of its own; the
threads meet at every decode step and the one that arrives last runs the forward pass for all of
them (``LockstepGroup``). A question whose chains are all done leaves, and its rows with it.

Prompts of different lengths are left-padded to a common length with an attention mask, and every
row gets its real position, so a row computes what it would alone up to float differences of the
padded matmuls (tested: greedy chains equal the one-question run's).

Timing: a question's ``step_wall_s`` in a group counts the whole group's steps, not a run of that
question alone; the bench reports that clock as such.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


class LockstepGroup:
    """The shared batch of a group of prompts, k rows each, stepped in lockstep."""

    def __init__(self, model, prompts: Sequence[Sequence[int]], k: int, pad_id: int = 0):
        import torch

        self.model = model
        self.device = next(model.parameters()).device
        self.k = k
        self.prompts = [list(p) for p in prompts]
        width = max(len(p) for p in self.prompts)
        ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for q, p in enumerate(self.prompts):
            ids[q, width - len(p) :] = torch.tensor(p)
            mask[q, width - len(p) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            out = model(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                use_cache=True,
            )
        self.first_logits = out.logits[:, -1, :].float()
        self.cache = out.past_key_values
        self.cache.batch_repeat_interleave(k)
        self.mask = mask.repeat_interleave(k, dim=0).to(self.device)
        self.position = torch.tensor([len(p) for p in self.prompts]).repeat_interleave(k).to(self.device)
        self.members = list(range(len(prompts)))  # questions with rows in the batch, in batch order
        self.rows = {q: k for q in self.members}
        self.pending: dict[int, tuple[Any, Sequence[int]]] = {}
        self.results: dict[int, Any] = {}
        self.error: BaseException | None = None
        self.cond = threading.Condition()

    def backend(self, q: int) -> _MemberBackend:
        return _MemberBackend(self, q)

    # ------------------------------------------------------------------ called from member threads
    def decode(self, q: int, tokens, keep: Sequence[int]):
        with self.cond:
            if self.error is not None:
                raise RuntimeError("another question of the lockstep group failed") from self.error
            self.pending[q] = (tokens, list(keep))
            self._step_if_all_arrived()
            while q not in self.results and self.error is None:
                self.cond.wait()
            if self.error is not None:
                raise RuntimeError("another question of the lockstep group failed") from self.error
            return self.results.pop(q)

    def leave(self, q: int) -> None:
        """Question ``q`` will not decode again (its chains are done, or it failed)."""
        with self.cond:
            if q in self.members:
                self.members.remove(q)
            self._step_if_all_arrived()

    def fail(self, exc: BaseException) -> None:
        with self.cond:
            self.error = exc
            self.cond.notify_all()

    # ------------------------------------------------------------------ the shared step
    def _step_if_all_arrived(self) -> None:
        """Run one forward for every member once each has sent its tokens (caller holds the lock)."""
        import torch

        if not self.pending or any(q not in self.pending for q in self.members):
            return
        offsets, start = {}, 0
        for q in sorted(self.rows):  # rows stay grouped by question, in prompt order
            offsets[q] = start
            start += self.rows[q]
        order = sorted(self.pending)
        select, tokens = [], []
        for q in order:
            toks, keep = self.pending[q]
            select.extend(offsets[q] + pos for pos in keep)
            tokens.append(toks.view(-1))
        try:
            index = torch.tensor(select, dtype=torch.long, device=self.device)
            if len(select) != sum(self.rows.values()):
                self.cache.batch_select_indices(index)
                self.mask = self.mask[index]
                self.position = self.position[index]
            self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
            with torch.inference_mode():
                out = self.model(
                    input_ids=torch.cat(tokens).view(-1, 1),
                    attention_mask=self.mask,
                    position_ids=self.position.view(-1, 1),
                    past_key_values=self.cache,
                    use_cache=True,
                )
            self.cache = out.past_key_values
            self.position = self.position + 1
            logits = out.logits[:, -1, :].float()
        except BaseException as exc:  # every waiting member must learn of it
            self.error = exc
            self.cond.notify_all()
            raise
        self.rows, at = {}, 0
        for q in order:
            n = len(self.pending[q][1])
            self.results[q] = logits[at : at + n]
            self.rows[q] = n
            at += n
        self.pending.clear()
        self.cond.notify_all()


class _MemberBackend:
    """One question's view of the group: the ``StepBackend`` that ``sample_short_mk`` drives."""

    def __init__(self, group: LockstepGroup, q: int):
        self.group, self.q = group, q

    def prefill(self, prompt_ids: Sequence[int], n: int):
        if list(prompt_ids) != self.group.prompts[self.q] or n != self.group.k:
            raise ValueError("a lockstep member must prefill its own prompt with the group's k rows")
        return self.group.first_logits[self.q : self.q + 1].expand(n, -1)

    def decode(self, tokens, keep: Sequence[int]):
        return self.group.decode(self.q, tokens, keep)


def sample_group(
    model,
    prompts: Sequence[Sequence[int]],
    run_one: Callable[[Any, Sequence[int]], Any],
    k: int,
    pad_id: int = 0,
) -> list[Any]:
    """``run_one(backend, prompt)`` (e.g. ``sample_short_mk`` with its settings bound) for every
    prompt, all in one lockstep batch; results in prompt order. The first failure is raised."""
    group = LockstepGroup(model, prompts, k, pad_id=pad_id)
    results: list[Any] = [None] * len(prompts)
    errors: list[BaseException] = []

    def work(q: int) -> None:
        try:
            results[q] = run_one(group.backend(q), prompts[q])
        except BaseException as exc:
            errors.append(exc)
            group.fail(exc)
        finally:
            group.leave(q)

    threads = [threading.Thread(target=work, args=(q,), daemon=True) for q in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
