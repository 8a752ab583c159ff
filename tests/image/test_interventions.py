"""Interventions change exactly what they claim: pad-mode positions, mask-mode removal, patch."""

import numpy as np
import pytest
import torch

from effeval.errors import ConfigError
from effeval.image.interventions import apply_intervention, parse_intervention


@pytest.fixture(scope="module", params=["sd-tiny", "sdxl-tiny"])
def setup(request, zoo_path):
    from effeval.image.encoders import PromptEncoder, load_pipeline

    pipe = load_pipeline(zoo_path(request.param))
    return pipe, PromptEncoder(pipe)


PROMPT = "a zebra and a cup on San Francisco's table"


def _changed(a, b):
    return [p for p in range(a.shape[1]) if not torch.equal(a[:, p], b[:, p])]


def test_drop_pad_changes_exactly_the_positions_to_pad_embeddings(setup):
    _, encoder = setup
    enc = encoder.encode(PROMPT)
    pad = encoder.pad_prompt()
    cond = apply_intervention(encoder, enc, parse_intervention("drop:zebra|Francisco's"))
    target = encoder.positions(enc, "zebra") + encoder.positions(enc, "Francisco's")
    assert len(target) == 3
    assert _changed(cond.prompt_embeds, enc.embeds) == sorted(target)
    assert torch.equal(cond.prompt_embeds[:, target], pad.embeds[:, target])
    assert cond.prompt_embeds.shape == enc.embeds.shape == cond.negative_prompt_embeds.shape
    if enc.pooled is not None:  # SDXL: the full prompt's pooled stays unless @pooled=pad
        assert torch.equal(cond.pooled_prompt_embeds, enc.pooled)
        cond2 = apply_intervention(encoder, enc, parse_intervention("drop:zebra@pooled=pad"))
        assert torch.equal(cond2.pooled_prompt_embeds, pad.pooled)


def test_keep_pad_replaces_everything_else_including_eos_and_padding(setup):
    _, encoder = setup
    enc = encoder.encode(PROMPT)
    pad = encoder.pad_prompt()
    cond = apply_intervention(encoder, enc, parse_intervention("keep:cup"))
    kept = encoder.positions(enc, "cup")
    others = [p for p in range(1, enc.length) if p not in kept]
    assert torch.equal(cond.prompt_embeds[:, kept], enc.embeds[:, kept])
    assert torch.equal(cond.prompt_embeds[:, others], pad.embeds[:, others])
    assert torch.equal(cond.prompt_embeds[:, 0], enc.embeds[:, 0])  # BOS is prompt-independent
    # the positions that differ from the full prompt: all replaced ones except where pad == prompt (BOS only)
    assert set(_changed(cond.prompt_embeds, enc.embeds)) == set(others)


def test_mask_mode_equals_physical_removal(setup):
    pipe, encoder = setup
    enc = encoder.encode(PROMPT)
    drop = encoder.positions(enc, "zebra") + [enc.n_content + 1]  # a word and EOS
    cond = apply_intervention(encoder, enc, parse_intervention(f"drop:zebra|#{enc.n_content + 1}@mask"))
    keep_idx = [p for p in range(enc.length) if p not in drop]
    assert cond.prompt_embeds.shape[1] == enc.length - len(drop)
    assert torch.equal(cond.prompt_embeds, enc.embeds[:, keep_idx])
    assert cond.negative_prompt_embeds.shape == cond.prompt_embeds.shape
    if encoder.kind != "sd":
        return
    # A shorter sequence equals masking those keys in every cross-attention of the UNet.
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 8, 8, generator=gen)
    mask = torch.ones(1, enc.length)
    mask[:, drop] = 0
    with torch.no_grad():
        short = pipe.unet(latents, 500, encoder_hidden_states=cond.prompt_embeds).sample
        masked = pipe.unet(latents, 500, encoder_hidden_states=enc.embeds, encoder_attention_mask=mask).sample
        full = pipe.unet(latents, 500, encoder_hidden_states=enc.embeds).sample
    assert torch.allclose(short, masked, atol=1e-5)
    assert not torch.allclose(short, full, atol=1e-5)  # and removing them does matter
    # keep@mask: BOS + kept positions only
    kcond = apply_intervention(encoder, enc, parse_intervention("keep:cup@mask"))
    assert torch.equal(kcond.prompt_embeds, enc.embeds[:, [0] + encoder.positions(enc, "cup")])


def test_patch_changes_only_the_item_to_its_alone_encoding(setup):
    _, encoder = setup
    enc = encoder.encode(PROMPT)
    cond = apply_intervention(encoder, enc, parse_intervention("patch:San Francisco's"))
    alone = encoder.encode("San Francisco's")
    pos = encoder.positions(enc, "San Francisco's")
    assert len(pos) == alone.n_content == 3
    assert _changed(cond.prompt_embeds, enc.embeds) == pos
    assert torch.equal(cond.prompt_embeds[:, pos], alone.embeds[:, 1 : 1 + len(pos)])
    # record placeholders resolve (dotted fields too)
    rec = {"id": "r1", "leak": {"source": "zebra"}}
    cond2 = apply_intervention(encoder, enc, parse_intervention("patch:{leak.source}"), rec)
    assert _changed(cond2.prompt_embeds, enc.embeds) == encoder.positions(enc, "zebra")


def test_bad_interventions(setup):
    _, encoder = setup
    enc = encoder.encode(PROMPT)
    with pytest.raises(ConfigError, match="item 'giraffe' is not in the prompt"):
        apply_intervention(encoder, enc, parse_intervention("patch:giraffe"))
    with pytest.raises(ConfigError, match="'giraffe' is not a word/expression"):
        apply_intervention(encoder, enc, parse_intervention("drop:giraffe"))
    with pytest.raises(ConfigError, match="record 'r1' has no field 'leak.source'"):
        apply_intervention(encoder, enc, parse_intervention("patch:{leak.source}"), {"id": "r1"})
    with pytest.raises(ConfigError, match="drop-redundant.*redundancy analysis"):
        apply_intervention(encoder, enc, parse_intervention("drop-redundant"))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("erase:cup", "unknown intervention 'erase'"),
        ("drop", "drop needs targets"),
        ("none:cup", "none takes no targets"),
        ("drop:cup@blur", "unknown option @blur"),
        ("patch:cup@mask", "patch has no mask mode"),
    ],
)
def test_parse_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_intervention(spec)


def test_parse_roundtrip():
    spec = parse_intervention(" drop: golden gate | #3 @mask")
    assert spec.targets == ("golden gate", "#3") and spec.mode == "mask"
    assert parse_intervention(spec.label) == spec
    assert parse_intervention("keep:a").slug != parse_intervention("keep:A").slug  # distinct image file names


def test_none_through_embeddings_equals_the_stock_pipeline(setup):
    from effeval.image.generation import GenerationConfig, ImageGenerator

    pipe, encoder = setup
    gen = ImageGenerator(pipe, GenerationConfig(steps=2))
    enc = encoder.encode("a red cube")
    stock = np.asarray(gen.stock_image("a red cube", 7))
    ours = np.asarray(gen.image(apply_intervention(encoder, enc, parse_intervention("none")), 7))
    assert np.array_equal(stock, ours)
    dropped = np.asarray(gen.image(apply_intervention(encoder, enc, parse_intervention("keep:cube")), 7))
    assert not np.array_equal(stock, dropped)


def test_drop_source_phrase_removes_every_word_of_the_source_expression(setup):
    """``drop:{leak.source_phrase}`` on shapes-leakage prompts changes exactly the tokens whose
    characters lie inside the source's expression (pattern, colour and noun words: one token
    each in the CLIP BPE), all to the pad prompt's, and nothing of the target. Able to fail: the
    old ``drop:{leak.source}`` (the noun only) changes one position where 2-3 are expected."""
    from effeval.image.benchmarks import load_benchmark

    _, encoder = setup
    pad = encoder.pad_prompt()
    records = load_benchmark("shapes-leakage", limit=24) + load_benchmark("shapes-leakage-control", limit=8)
    for rec in records:
        enc = encoder.encode(rec["prompt"])
        phrase = rec["leak"]["source_phrase"]
        words = phrase.split()
        # the source's expression in the caption: its words follow the count word "a"
        start = f" {rec['prompt']} ".index(f" a {phrase} ") + 2  # +1 for the added space, +1 for "a "
        end = start + len(phrase)
        inside = [
            p for p, (s, e) in enumerate(enc.offsets[: enc.length]) if e > s and s >= start and e <= end
        ]
        assert len(inside) == len(words) >= 2, (rec["prompt"], phrase, inside)
        cond = apply_intervention(encoder, enc, parse_intervention("drop:{leak.source_phrase}"), rec)
        assert _changed(cond.prompt_embeds, enc.embeds) == inside, rec["prompt"]
        assert torch.equal(cond.prompt_embeds[:, inside], pad.embeds[:, inside])
        noun_only = apply_intervention(encoder, enc, parse_intervention("drop:{leak.source}"), rec)
        assert len(_changed(noun_only.prompt_embeds, enc.embeds)) == 1


def test_isolate_leaves_each_item_encoded_alone_and_pads_everything_else(setup):
    """``isolate:A|B``: A's and B's positions hold their alone-encodings, every other position
    but BOS (function words, EOS, padding) the pad prompt's. Able to fail: leaving EOS or "and"
    contextual, or patching only one item."""
    _, encoder = setup
    prompt = "a striped red circle and a blue square"
    enc = encoder.encode(prompt)
    pad = encoder.pad_prompt()
    cond = apply_intervention(encoder, enc, parse_intervention("isolate:striped red circle|blue square"))
    items = []
    for item in ("striped red circle", "blue square"):
        pos = encoder.positions(enc, item)
        alone = encoder.encode(item)
        assert torch.equal(cond.prompt_embeds[:, pos], alone.embeds[:, 1 : 1 + len(pos)])
        items += pos
    others = [p for p in range(1, enc.length) if p not in items]
    assert encoder.positions(enc, "and")[0] in others and enc.n_content + 1 in others  # "and", EOS
    assert torch.equal(cond.prompt_embeds[:, others], pad.embeds[:, others])
    assert torch.equal(cond.prompt_embeds[:, 0], enc.embeds[:, 0])


def test_empty_record_list_changes_nothing(setup):
    """A record field that is an empty list (a caption without pattern words) drops nothing;
    a missing field stays an error."""
    _, encoder = setup
    enc = encoder.encode("a red circle and a blue square")
    rec = {"id": "r1", "words": {"pattern": []}}
    cond = apply_intervention(encoder, enc, parse_intervention("drop:{words.pattern}"), rec)
    assert _changed(cond.prompt_embeds, enc.embeds) == [] and cond.info["changed_positions"] == []
    with pytest.raises(ConfigError, match="record 'r1' has no field 'words.colour'"):
        apply_intervention(encoder, enc, parse_intervention("drop:{words.colour}"), rec)
