"""Redundancy analysis: which token subsets of an expression alone reproduce it.

For each expression of a prompt (a record's ``expressions`` / ``expression`` field, else every
word split into several tokens), following Kaplan et al.:

- reference: the image generated from the expression's tokens only (``keep`` in pad mode:
  every other position, EOS and padding included, takes the pad prompt's embedding);
- empty: the image from the pad prompt alone (nothing kept);
- candidate: the image from a proper subset of the expression's tokens only, for every subset
  of 1..``max_subset`` tokens.

score(subset) = (cos(f(candidate), f(reference)) - cos(f(empty), f(reference))) /
(1 - cos(f(empty), f(reference))), averaged over seeds: 1 = reproduces the expression's image,
0 = no closer than generating from nothing. ``f`` is an image feature map: CLIP image features
when a scorer provides ``image_features`` (the runner passes it), else flattened 16x16 RGB pixels
(no model needed; cruder). An expression is *fully represented* by a subset whose score reaches
``threshold``; its minimal such subset tells which of its tokens are redundant, which is what
``drop-redundant`` drops from the full prompt.

Aggregate: among expressions of two or more tokens, the rate that some subset of one or two
tokens fully represents them (the paper's "fully represented by 1-2 tokens").
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from effeval.image.encoders import EncodedPrompt, PromptEncoder
from effeval.image.interventions import InterventionSpec, replace_positions

MAX_CANDIDATES = 64  # long expressions: only this many subsets (smallest first) are generated


def pixel_features(images: list):
    """Flattened, mean-centred 16x16 RGB pixels: a model-free image feature."""
    import numpy as np
    import torch

    arrs = [
        np.asarray(im.convert("RGB").resize((16, 16)), dtype=np.float32).reshape(-1) / 255.0 for im in images
    ]
    x = torch.tensor(np.stack(arrs))
    return x - x.mean(dim=1, keepdim=True)


def _cos(a, b) -> list[float]:
    import torch

    return torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1).tolist()


def expressions_for(record: dict, encoder: PromptEncoder, enc: EncodedPrompt) -> list[str]:
    value = record.get("expressions") or record.get("expression")
    if value:
        values = [value] if isinstance(value, (str, dict)) else list(value)
        # benchmark records give {"text": ..., "words": [start, end]} or plain strings
        return [v["text"] if isinstance(v, dict) else str(v) for v in values]
    return [w["word"] for w in encoder.words(enc) if len(w["positions"]) > 1]


def analyse_prompt(
    generator,
    encoder: PromptEncoder,
    enc: EncodedPrompt,
    expressions: list[str],
    seeds: list[int],
    features: Callable | None = None,
    max_subset: int = 2,
    threshold: float = 0.9,
) -> dict:
    """Per-expression subset scores and the prompt's redundant positions (see module doc)."""
    features = features or pixel_features
    spec = InterventionSpec("keep", ("<analysis>",))
    everything = [p for p in range(enc.length) if p not in enc.fixed]

    def keep_only(positions):
        cond = replace_positions(encoder, enc, [p for p in everything if p not in set(positions)], spec)
        return features(generator.images(cond, seeds))

    empty = keep_only([])
    out, redundant = [], set()
    for expr in expressions:
        positions = encoder.positions(enc, expr, argument=f"expression {expr!r}")
        ref = keep_only(positions)
        base = _cos(empty, ref)
        subsets = [
            c
            for k in range(1, min(max_subset, len(positions) - 1) + 1)
            for c in itertools.combinations(positions, k)
        ]
        candidates = []
        for subset in subsets[:MAX_CANDIDATES]:
            sims = _cos(keep_only(list(subset)), ref)
            scores = [(s - b) / (1.0 - b) if b < 1.0 - 1e-9 else 1.0 for s, b in zip(sims, base)]
            candidates.append(
                {
                    "positions": list(subset),
                    "tokens": [enc.tokens[p] for p in subset],
                    "score": round(sum(scores) / len(scores), 6),
                }
            )
        passing = [c for c in candidates if c["score"] >= threshold]
        minimal = (
            min(passing, key=lambda c: (len(c["positions"]), -c["score"]))["positions"]
            if passing
            else positions
        )
        redundant.update(p for p in positions if p not in minimal)
        out.append(
            {
                "expression": expr,
                "positions": positions,
                "tokens": [enc.tokens[p] for p in positions],
                "candidates": candidates,
                "minimal_positions": list(minimal),
                "minimal_tokens": [enc.tokens[p] for p in minimal],
                "fully_represented_by_1_2": bool(len(positions) >= 2 and passing and len(minimal) <= 2),
            }
        )
    return {
        "threshold": threshold,
        "max_subset": max_subset,
        "expressions": out,
        "redundant_positions": sorted(redundant),
    }


def redundancy_rates(per_prompt: list[dict]) -> dict:
    """Rates over all analysed expressions (``per_prompt``: ``analyse_prompt`` outputs)."""
    exprs = [e for p in per_prompt for e in p.get("expressions", [])]
    multi = [e for e in exprs if len(e["positions"]) >= 2]
    by1 = [e for e in multi if len(e["minimal_positions"]) == 1 and e["fully_represented_by_1_2"]]
    by12 = [e for e in multi if e["fully_represented_by_1_2"]]
    return {
        "expressions": len(exprs),
        "multi_token_expressions": len(multi),
        "represented_by_1_rate": len(by1) / len(multi) if multi else None,
        "represented_by_1_2_rate": len(by12) / len(multi) if multi else None,
        "mean_redundant_tokens": (
            sum(len(e["positions"]) - len(e["minimal_positions"]) for e in multi) / len(multi)
            if multi
            else None
        ),
    }
