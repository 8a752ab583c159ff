"""A scoped work-around for transformers 5.25's different-tokenizer assisted generation.

transformers 5.25 changed how the assistant's KV cache is rolled back between rounds
(``AssistedCandidateGenerator._update_past_and_masks``): it now removes
``_last_ids_length - len(assistant_input_ids)`` tokens, and the two different-tokenizer generators
(``AssistedCandidateGeneratorDifferentTokenizers``, the SLEM-like path, and
``UniversalSpeculativeDecodingGenerator``, the TLI-like path) set ``_last_ids_length`` to a length in
the *target's* tokens. The two tokenizers cut the same text into different numbers of tokens, so
the count is wrong: where the target's tokens are fewer, nothing is removed, the cache keeps
rejected drafts, and the assistant is eventually called on zero new tokens ("cannot reshape tensor
of 0 elements into shape [1, 0, -1, head_dim]"); elsewhere the drafts are conditioned on a wrong
cache. transformers 5.24 measured the cache itself (``cache.get_seq_length()``), which is right for
any pair of tokenizers.

``cache_rollback_by_length()`` restores that rule, for the duration of one ``generate`` call and
only on the different-tokenizer generators, when the installed transformers has the 5.25 form;
on other versions it does nothing. The rule is 5.24's, so outputs are the ones that version gives.
"""

from __future__ import annotations

import contextlib
import inspect


def has_target_length_rollback() -> bool:
    """Does the installed transformers roll the assistant cache back by a target-token count?"""
    from transformers.generation import candidate_generator as cg

    params = inspect.signature(cg.AssistedCandidateGenerator._update_past_and_masks).parameters
    return "num_extra_tokens_to_remove" in params and "num_added_tokens" not in params


@contextlib.contextmanager
def cache_rollback_by_length():
    if not has_target_length_rollback():
        yield False
        return
    from transformers.generation import candidate_generator as cg

    base = cg.AssistedCandidateGenerator
    original_update = base._update_past_and_masks
    # what each generator's _prepare_assistant_input_ids returns besides the ids: tokens to drop
    # from the cache (SLEM-like path) or tokens it appended (TLI-like path)
    roles = {
        cg.AssistedCandidateGeneratorDifferentTokenizers: "removed",
        cg.UniversalSpeculativeDecodingGenerator: "added",
    }
    originals = {cls: cls.__dict__["_prepare_assistant_input_ids"] for cls in roles}

    def recording(prepare):
        def prepare_assistant_input_ids(self, input_ids):
            ids, count = prepare(self, input_ids)
            # the most derived class's role wins (USD subclasses the SLEM-like generator)
            self._effeval_rollback = (count, 1) if roles[type(self)] == "removed" else (0, count)
            return ids, count

        return prepare_assistant_input_ids

    def update_past_and_masks(self, input_ids, *args, **kwargs):
        rollback = getattr(self, "_effeval_rollback", None)
        cache = self.assistant_kwargs.get("cache", None)
        if rollback is None or cache is None or type(self) not in roles:
            return original_update(self, input_ids, *args, **kwargs)
        removed, added = rollback
        keep = input_ids.shape[-1] - 1 - removed - added
        surplus = cache.get_seq_length() - keep
        if surplus > 0:
            cache.crop(-surplus)
        # the masks, positions and token types as transformers prepares them, with nothing to crop
        self._last_ids_length = input_ids.shape[-1]
        return original_update(self, input_ids)

    try:
        base._update_past_and_masks = update_past_and_masks
        for cls, prepare in originals.items():
            cls._prepare_assistant_input_ids = recording(prepare)
        yield True
    finally:
        base._update_past_and_masks = original_update
        for cls, prepare in originals.items():
            cls._prepare_assistant_input_ids = prepare
