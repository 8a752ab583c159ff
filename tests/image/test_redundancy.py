"""Redundancy analysis: scores follow their definition; minimal subsets; drop-redundant; aggregate."""

import hashlib

import numpy as np
import pytest
import torch

from effeval.image.interventions import apply_intervention, parse_intervention, replace_positions
from effeval.image.redundancy import analyse_prompt, redundancy_rates


class CachingGenerator:
    """Wraps ImageGenerator: the same conditioning and seed are generated once."""

    def __init__(self, inner):
        self.inner, self.cache, self.calls = inner, {}, 0

    def images(self, cond, seeds):
        key = hashlib.sha256(cond.prompt_embeds.numpy().tobytes()).hexdigest()
        if key not in self.cache:
            self.calls += 1
            self.cache[key] = self.inner.images(cond, seeds)
        return self.cache[key]


def _features(images) -> np.ndarray:
    """The documented feature, written here independently: 16x16 RGB pixels in [0, 1], flattened,
    each image's mean subtracted."""
    x = np.stack(
        [np.asarray(im.convert("RGB").resize((16, 16)), dtype=np.float64).reshape(-1) / 255 for im in images]
    )
    return x - x.mean(axis=1, keepdims=True)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a[0] @ b[0] / (np.linalg.norm(a[0]) * np.linalg.norm(b[0])))


@pytest.fixture(scope="module")
def setup(zoo_path):
    from effeval.image.encoders import PromptEncoder, load_pipeline
    from effeval.image.generation import GenerationConfig, ImageGenerator

    pipe = load_pipeline(zoo_path("sd-tiny"))
    encoder = PromptEncoder(pipe)
    return encoder, CachingGenerator(ImageGenerator(pipe, GenerationConfig(steps=2)))


def test_scores_follow_the_definition(setup):
    encoder, gen = setup
    enc = encoder.encode("the Golden Gate Bridge at dawn")
    res = analyse_prompt(gen, encoder, enc, ["Golden Gate"], seeds=[0], threshold=0.9)
    (expr,) = res["expressions"]
    assert expr["tokens"] == ["golden</w>", "gate</w>"]
    assert len(expr["candidates"]) == 2  # every proper subset (of at most max_subset=2 tokens)
    # recompute one candidate's score by hand: how much closer keeping the candidate's tokens
    # brings the image to the one with the whole expression, relative to keeping none of them.
    # Shown able to fail: the plain cosine (no empty-subset normalisation) differs here.
    everything = list(range(1, enc.length))
    spec = parse_intervention("keep:x")

    def feats(kept):
        cond = replace_positions(encoder, enc, [p for p in everything if p not in kept], spec)
        return _features(gen.images(cond, [0]))

    ref, empty = feats(expr["positions"]), feats([])
    cand = expr["candidates"][1]
    base = _cosine(empty, ref)
    plain = _cosine(feats(cand["positions"]), ref)
    want = (plain - base) / (1 - base)
    assert cand["score"] == pytest.approx(want, abs=1e-6)
    assert abs(plain - want) > 1e-3
    # the minimal subset: the smallest passing one (else the whole expression)
    passing = [c for c in expr["candidates"] if c["score"] >= 0.9]
    if passing:
        assert len(expr["minimal_positions"]) == min(len(c["positions"]) for c in passing)
    else:
        assert expr["minimal_positions"] == expr["positions"]
    assert set(res["redundant_positions"]) == set(expr["positions"]) - set(expr["minimal_positions"])


def test_thresholds_and_drop_redundant(setup):
    encoder, gen = setup
    enc = encoder.encode("the Golden Gate Bridge at dawn")
    everyone = analyse_prompt(gen, encoder, enc, ["Golden Gate"], seeds=[0], threshold=-1.0)
    calls = gen.calls
    nobody = analyse_prompt(gen, encoder, enc, ["Golden Gate"], seeds=[0], threshold=2.0)
    (e1,), (e2,) = everyone["expressions"], nobody["expressions"]
    best_single = max((c for c in e1["candidates"] if len(c["positions"]) == 1), key=lambda c: c["score"])
    assert e1["minimal_positions"] == best_single["positions"] and e1["fully_represented_by_1_2"]
    assert len(everyone["redundant_positions"]) == 1
    assert nobody["redundant_positions"] == [] and not e2["fully_represented_by_1_2"]
    # drop-redundant drops exactly the redundant tokens (pad mode)
    cond = apply_intervention(
        encoder,
        enc,
        parse_intervention("drop-redundant"),
        redundant_positions=everyone["redundant_positions"],
    )
    changed = [p for p in range(enc.length) if not torch.equal(cond.prompt_embeds[:, p], enc.embeds[:, p])]
    assert changed == everyone["redundant_positions"]
    assert gen.calls == calls  # the threshold only changes the decision, not the images
    agg = redundancy_rates([everyone, nobody])
    assert agg["multi_token_expressions"] == 2
    assert agg["represented_by_1_2_rate"] == 0.5 and agg["represented_by_1_rate"] == 0.5
