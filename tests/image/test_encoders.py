"""Prompt encoders: identical to the pipeline's own encode_prompt; word <-> token alignment; bad input."""

import pytest
import torch

from effeval.errors import ConfigError


@pytest.fixture(scope="module")
def sd(zoo_path):
    from effeval.image.encoders import PromptEncoder, load_pipeline

    pipe = load_pipeline(zoo_path("sd-tiny"))
    return pipe, PromptEncoder(pipe)


@pytest.fixture(scope="module")
def sdxl(zoo_path):
    from effeval.image.encoders import PromptEncoder, load_pipeline

    pipe = load_pipeline(zoo_path("sdxl-tiny"))
    return pipe, PromptEncoder(pipe)


PROMPT = "San Francisco's Golden Gate Bridge at dawn"


def test_sd_encoding_equals_diffusers(sd):
    pipe, encoder = sd
    enc = encoder.encode(PROMPT)
    pe, ne = pipe.encode_prompt(PROMPT, "cpu", 1, True)
    assert encoder.kind == "sd"
    assert torch.equal(enc.embeds, pe)
    assert torch.equal(encoder.negative(enc.length)[0], ne)
    # the pad prompt is "" -> BOS, EOS, padding
    pad = encoder.pad_prompt()
    assert pad.input_ids[:2] == [pipe.tokenizer.bos_token_id, pipe.tokenizer.eos_token_id]
    assert pad.n_content == 0


def test_sdxl_encoding_equals_diffusers(sdxl):
    pipe, encoder = sdxl
    enc = encoder.encode(PROMPT)
    pe, ne, pooled, neg_pooled = pipe.encode_prompt(PROMPT, device="cpu")
    assert encoder.kind == "sdxl"
    # two encoders concatenated along features, pooled from the second
    assert (
        enc.embeds.shape[-1] == pipe.text_encoder.config.hidden_size + pipe.text_encoder_2.config.hidden_size
    )
    assert torch.equal(enc.embeds, pe)
    assert torch.equal(enc.pooled, pooled)
    neg, npooled = encoder.negative(enc.length)
    assert torch.equal(neg, ne) and torch.equal(npooled, neg_pooled)


def test_alignment_multi_token_words_and_expressions(sd):
    _, encoder = sd
    enc = encoder.encode(PROMPT)
    words = {w["word"]: w["positions"] for w in encoder.words(enc)}
    assert len(words["Francisco's"]) == 2  # francisco + 's
    assert [enc.tokens[p] for p in words["Francisco's"]] == ["francisco</w>", "'s</w>"]
    gg = encoder.positions(enc, "golden  GATE bridge")  # case and whitespace do not matter
    assert [enc.tokens[p] for p in gg] == ["golden</w>", "gate</w>", "bridge</w>"]
    assert gg == [words["Golden"][0], words["Gate"][0], words["Bridge"][0]]
    # a word inside a longer word is not a match; '#N' is an absolute position
    enc2 = encoder.encode("a bored cat on a red mat")
    assert [enc2.tokens[p] for p in encoder.positions(enc2, "red")] == ["red</w>"]
    assert encoder.positions(enc2, "#2") == [2]
    # every occurrence
    enc3 = encoder.encode("a red cube and a red ball")
    assert len(encoder.positions(enc3, "red")) == 2


def test_alignment_bad_targets(sd):
    _, encoder = sd
    enc = encoder.encode("a red cube")
    with pytest.raises(ConfigError, match="'blue' is not a word/expression.*'red'"):
        encoder.positions(enc, "blue", argument="--intervention drop:blue")
    with pytest.raises(ConfigError, match="outside"):
        encoder.positions(enc, "#0")
    with pytest.raises(ConfigError, match="outside"):
        encoder.positions(enc, "#500")


def test_causal_flow_reaches_later_positions(sd):
    """The trap the docs describe: a word changes every later position, padding included."""
    _, encoder = sd
    a, b = encoder.encode("a red ball"), encoder.encode("a blue ball")
    diff = (a.embeds - b.embeds).abs().amax(dim=-1)[0]
    assert torch.all(diff[:2] == 0)  # BOS and "a" see only earlier tokens
    assert torch.all(diff[2:] > 0)  # "red"/"blue", "ball", EOS and every padding position differ


def test_not_a_pipeline_is_one_line(tmp_path):
    from effeval.image.encoders import load_pipeline

    (tmp_path / "weights.bin").write_bytes(b"0")
    with pytest.raises(ConfigError, match="--pipeline.*not a diffusers pipeline"):
        load_pipeline(tmp_path)
    with pytest.raises(ConfigError, match="--pipeline.*not a directory"):
        load_pipeline(tmp_path / "missing")


def test_sd2_pad_prompt_uses_its_own_padding_token(zoo_path):
    """SD 2.x pads with '!' (id 0), not EOS: the pad prompt -- and so pad-mode -- follows the tokenizer."""
    from effeval.image.encoders import PromptEncoder, load_pipeline

    encoder = PromptEncoder(load_pipeline(zoo_path("sd2-tiny")))
    pad = encoder.pad_prompt()
    tok = encoder.pipe.tokenizer
    assert tok.pad_token == "!" and tok.pad_token_id == 0
    assert pad.input_ids[:4] == [tok.bos_token_id, tok.eos_token_id, 0, 0]
