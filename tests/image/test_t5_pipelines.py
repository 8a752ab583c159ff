"""Interventions through ``prompt_embeds`` on every supported pipeline family, T5 ones included."""

from __future__ import annotations

import numpy as np
import pytest

from effeval.errors import ConfigError
from effeval.image.encoders import PromptEncoder, load_pipeline
from effeval.image.generation import GenerationConfig, ImageGenerator
from effeval.image.interventions import apply_intervention, parse_intervention

PROMPT = "a red circle and a striped blue square"


@pytest.fixture(scope="module", params=["sd-tiny", "sdxl-tiny", "flux-tiny", "sd3-tiny"])
def pipe(request, zoo_path):
    return load_pipeline(zoo_path(request.param))


def test_none_through_prompt_embeds_equals_the_stock_call(pipe):
    """`none` re-encodes the prompt as the pipeline's own encode_prompt does: the image equals
    pipe(prompt=...) bit for bit. Able to fail: for SD3 taking the CLIPs' last instead of
    penultimate layer, or for FLUX a T5 max length other than the call's 512, changes the image."""
    gen = ImageGenerator(pipe, GenerationConfig(steps=2, guidance_scale=3.0))
    encoder = PromptEncoder(pipe)
    cond = apply_intervention(encoder, encoder.encode(PROMPT), parse_intervention("none"))
    stock = np.asarray(gen.stock_image(PROMPT, 0))
    assert np.array_equal(np.asarray(gen.image(cond, 0)), stock)
    dropped = apply_intervention(encoder, encoder.encode(PROMPT), parse_intervention("drop:circle"))
    assert not np.array_equal(np.asarray(gen.image(dropped, 0)), stock)  # the comparison can fail


def test_t5_positions_come_from_the_t5_tokenization(pipe):
    """A word's positions are the T5 tokens covering it (FLUX; SD3 also its CLIP positions);
    dropping it replaces exactly those rows by the pad prompt's rows."""
    encoder = PromptEncoder(pipe)
    if encoder.kind not in ("flux", "sd3"):
        pytest.skip("CLIP-only pipeline")
    enc = encoder.encode(PROMPT)
    positions = encoder.positions(enc, "striped")
    t5_tokens = [enc.tokens[p] for p in positions if encoder.kind == "flux" or p >= 77]
    assert "".join(t5_tokens).replace("\u2581", "") == "striped"
    ids = encoder.t5_tokenizer("striped", add_special_tokens=False)["input_ids"]
    assert [enc.input_ids[p] for p in positions][-len(ids) :] == ids
    cond = apply_intervention(encoder, enc, parse_intervention("drop:striped"))
    changed = [p for p in range(enc.length) if not bool((cond.prompt_embeds[0, p] == enc.embeds[0, p]).all())]
    pad = encoder.pad_prompt()
    assert set(changed) <= set(positions)
    assert all(bool((cond.prompt_embeds[0, p] == pad.embeds[0, p]).all()) for p in positions)
    masked = apply_intervention(encoder, enc, parse_intervention("drop:striped@mask"))
    assert masked.prompt_embeds.shape[1] == enc.length - len(positions)


def test_t5_intervention_on_absent_word_is_one_line_error(pipe):
    encoder = PromptEncoder(pipe)
    enc = encoder.encode(PROMPT)
    with pytest.raises(
        ConfigError, match=r"'giraffe' is not a word/expression of the prompt .*Fix: use one of its words"
    ) as exc:
        apply_intervention(encoder, enc, parse_intervention("drop:giraffe"))
    assert "\n" not in str(exc.value)
