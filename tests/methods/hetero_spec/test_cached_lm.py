"""``decoding.CachedLM`` after a rejected draft: the KV cache is cropped to the common prefix and
only the new tokens are fed, and the logits equal a fresh forward pass over the whole sequence.

Able to fail: with the cache cropped the transformers-4 way (``crop(keep)``, a positive length),
transformers 5 raises, every rejection fell back to re-encoding the whole sequence, and the
fed-token count below is the full length (that was SLEM/TLI's 2.5x gap to transformers' own
assisted generation on the real pairs)."""

from __future__ import annotations

import torch

from effeval.methods.hetero_spec.decoding import CachedLM


def test_rejected_draft_crops_the_cache_and_feeds_only_new_tokens(zoo_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(zoo_path("llama-sp")).eval()
    fed: list[int] = []
    hook = model.register_forward_pre_hook(
        lambda _m, args, kwargs: fed.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    lm = CachedLM(model)
    prompt = list(range(5, 45))
    lm.next_logits(prompt + [7, 8, 9], 4)  # prompt + a 3-token draft
    got = lm.next_logits(prompt + [7, 11], 1)  # the draft was rejected after its first token
    hook.remove()
    assert fed == [len(prompt) + 3, 1]  # only the replacement token is fed the second time
    with torch.no_grad():
        want = model(input_ids=torch.tensor([prompt + [7, 11]])).logits[0, -1:]
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
