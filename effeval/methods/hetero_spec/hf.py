"""``algorithm=hf``: transformers' own different-tokenizer assisted generation, for comparison
in the same run (``model.generate(..., assistant_model=, tokenizer=, assistant_tokenizer=)``).

transformers picks its SLEM-like path (``AssistedCandidateGeneratorDifferentTokenizers``) or,
when sampling with overlapping vocabularies, its TLI path (universal speculative decoding),
which **rewrites the drafter in place** (its lm_head and input embeddings): callers must pass a
drafter object used by nothing else. Batch size 1 only. Stopping is re-applied with our
``Stopper`` so the output is cut exactly like every other algorithm's. transformers reports no
acceptance counts, so they are derived from forward-call counts (each target pass emits the
accepted tokens plus one of its own): ``accepted = new tokens − target passes``.
"""

from __future__ import annotations

from effeval.methods.hetero_spec.common import GenerationResult
from effeval.methods.hetero_spec.config import default
from effeval.methods.hetero_spec.decoding import DecodeSession, algorithm
from effeval.methods.hetero_spec.hf_compat import cache_rollback_by_length


def _count_calls(model):
    counter = {"n": 0}

    def hook(*_):
        counter["n"] += 1

    return counter, model.register_forward_pre_hook(hook)


def _vocab_size(model) -> int | None:
    config = model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text, "vocab_size", None)


@algorithm
def generate(
    run: DecodeSession,
    num_draft_tokens: int,
    *,
    draft_confidence: float = default("draft_confidence"),
    draft_schedule: str = default("draft_schedule"),
) -> GenerationResult:
    """``draft_schedule`` / ``draft_confidence`` map to transformers' own
    ``num_assistant_tokens_schedule`` / ``assistant_confidence_threshold``."""
    import torch

    config, target, target_tok, drafter = run.config, run.target, run.target_tok, run.drafter
    # transformers samples from torch's global RNG: seed it from ours so runs are reproducible.
    gen = getattr(run.coins, "generator", None)
    if isinstance(gen, torch.Generator):
        torch.manual_seed(int(torch.randint(0, 2**62, (), generator=gen).item()))
    kwargs = dict(
        max_new_tokens=max(config.max_new_tokens, 1),
        do_sample=config.do_sample,
        assistant_model=drafter,
        tokenizer=target_tok,
        assistant_tokenizer=run.drafter_tok,
        num_assistant_tokens=num_draft_tokens,
        num_assistant_tokens_schedule=draft_schedule,
        assistant_confidence_threshold=draft_confidence,
        pad_token_id=target_tok.pad_token_id
        if target_tok.pad_token_id is not None
        else target_tok.eos_token_id,
    )
    if _vocab_size(target) == _vocab_size(drafter):
        # transformers takes equal vocabulary sizes for one tokenizer (its plain assisted
        # generation) and refuses the tokenizers then; the target still verifies every token
        del kwargs["tokenizer"], kwargs["assistant_tokenizer"]
    if config.eos_token_ids:
        kwargs["eos_token_id"] = list(config.eos_token_ids)
    if config.do_sample:
        kwargs.update(temperature=config.temperature, top_k=config.top_k or None, top_p=config.top_p)
    # No stop_strings: transformers 5.24 hands them to the assistant's generate without a tokenizer
    # and fails; our Stopper cuts the output at the first stop string instead (same tokens).
    device = getattr(target, "device", "cpu")
    input_ids = torch.tensor([run.prompt_ids], dtype=torch.long, device=device)
    t_count, t_hook = _count_calls(target)
    d_count, d_hook = _count_calls(drafter)
    try:
        # transformers 5.25 rolls the assistant's cache back by a target-token count (hf_compat)
        with torch.no_grad(), cache_rollback_by_length():
            out = target.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)
    finally:
        t_hook.remove()
        d_hook.remove()
    for token in out[0, input_ids.shape[1] :].tolist():
        if run.stopper.done:
            break
        run.emit(token)
    run.stats.target_calls, run.stats.drafter_calls = t_count["n"], d_count["n"]
    run.stats.accepted = max(0, len(run.stopper.tokens) - run.stats.target_calls)
    run.stats.extra["accepted_is_derived"] = 1.0
    return run.finish()
