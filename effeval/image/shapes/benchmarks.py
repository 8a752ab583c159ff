"""Shapes benchmarks in effeval's record format, generated from a seed (``shapes-leakage``,
``shapes-omission``, ``shapes-binding``; ``NAME@SEED`` picks another seed).

Every record carries its ``scene`` spec (the world's ground truth for a faithful image) and each
question a ``spec`` the judge answers exactly (``{"type": "colour", "shape": "square",
"value": "red"}``); ``expected`` is the answer for a faithful image.

- leakage: two objects of different shapes that differ in colour (category ``colour``) or in
  pattern (``pattern``); the leak question asks whether the *target* shows the *source's*
  property (expected "no"), e.g. "a red circle and a blue square" -> "Is the square red?".
- omission: 2-3 objects of distinct shapes; one presence question each (expected "yes").
- binding: two objects of different shapes, colours and patterns; each object's own colour and
  pattern (expected "yes") and the other object's (expected "no").
Prompts come from the ``train`` split's (colour, shape) combinations unless ``split`` says
otherwise; ``heldout`` uses at least one combination no training scene had.
"""

from __future__ import annotations

import random

from effeval.image.shapes import world as W

SHAPES_BENCHMARKS = ("shapes-leakage", "shapes-omission", "shapes-binding")
DEFAULT_N = 240
DEFAULT_SEED = 0


def _q(qid: str, spec: dict, expected: bool, kind: str, item: str) -> dict:
    return {
        "id": qid,
        "text": W.question_text(spec),
        "kind": kind,
        "expected": "yes" if expected else "no",
        "item": item,
        "spec": spec,
    }


def _record(name: str, k: int, scene: W.Scene, questions: list[dict], category: str, **extra) -> dict:
    prompt = W.caption(scene)
    items = list(dict.fromkeys(o.shape for o in scene.objects))
    for q in questions:  # the questions are about a faithful image of the caption: check them
        assert W.answer(scene, q["spec"]) == (q["expected"] == "yes"), (prompt, q)
    return {
        "id": f"{name}-{k:04d}",
        "prompt": prompt,
        "benchmark": name,
        "category": category,
        "items": items,
        "questions": questions,
        "expressions": [],
        "scene": scene.to_json(),
        "split": W.split_of(scene),
        **extra,
    }


def _two_objects(rng: random.Random, split: str, differ: str, seen: set[str]) -> W.Scene:
    """Two objects of distinct shapes in distinct cells; ``differ``: colour, pattern or both; a
    caption not in ``seen`` (one record per distinct prompt)."""
    while True:
        a_shape, b_shape = rng.sample(W.SHAPES, 2)
        cells = rng.sample(range(W.GRID * W.GRID), 2)
        a = W.random_obj(rng, cells[0], "any", shape=a_shape)
        b = W.random_obj(rng, cells[1], "any", shape=b_shape)
        if differ in ("colour", "both") and a.colour == b.colour:
            continue
        if differ in ("pattern", "both") and a.pattern == b.pattern:
            continue
        scene = W.Scene((a, b))
        if (split == "any" or W.split_of(scene) == split) and W.caption(scene) not in seen:
            seen.add(W.caption(scene))
            return scene


def leakage(n: int = DEFAULT_N, seed: int = DEFAULT_SEED, split: str = "train") -> list[dict]:
    rng = random.Random(f"shapes-leakage/{seed}/{split}")
    out, seen = [], set()
    for k in range(n):
        prop = "colour" if k % 2 == 0 else "pattern"
        scene = _two_objects(rng, split, prop, seen)
        source, target = scene.objects if rng.random() < 0.5 else scene.objects[::-1]
        value = getattr(source, prop)
        qs = [
            _q("leak", {"type": prop, "shape": target.shape, "value": value}, False, "leak", target.shape),
            _q(
                "own",
                {"type": prop, "shape": target.shape, "value": getattr(target, prop)},
                True,
                "binding",
                target.shape,
            ),
            _q("source.present", {"type": "presence", "shape": source.shape}, True, "presence", source.shape),
            _q("target.present", {"type": "presence", "shape": target.shape}, True, "presence", target.shape),
        ]
        leak = {"source": source.shape, "target": target.shape, "property": value, "attribute": prop}
        out.append(_record("shapes-leakage", k, scene, qs, prop, leak=leak))
    return out


def omission(n: int = DEFAULT_N, seed: int = DEFAULT_SEED, split: str = "train") -> list[dict]:
    rng = random.Random(f"shapes-omission/{seed}/{split}")
    out, seen = [], set()
    for k in range(n):
        n_obj = 2 + k % 2
        while True:
            shapes = rng.sample(W.SHAPES, n_obj)
            cells = rng.sample(range(W.GRID * W.GRID), n_obj)
            scene = W.Scene(tuple(W.random_obj(rng, c, "any", shape=s) for s, c in zip(shapes, cells)))
            if (split == "any" or W.split_of(scene) == split) and W.caption(scene) not in seen:
                seen.add(W.caption(scene))
                break
        qs = [
            _q(f"{o.shape}.present", {"type": "presence", "shape": o.shape}, True, "presence", o.shape)
            for o in scene.objects
        ]
        out.append(_record("shapes-omission", k, scene, qs, f"{n_obj}-objects"))
    return out


def binding(n: int = DEFAULT_N, seed: int = DEFAULT_SEED, split: str = "train") -> list[dict]:
    rng = random.Random(f"shapes-binding/{seed}/{split}")
    out, seen = [], set()
    for k in range(n):
        scene = _two_objects(rng, split, "both", seen)
        a, b = scene.objects
        qs = []
        for x, y in ((a, b), (b, a)):
            for prop in ("colour", "pattern"):
                qs.append(
                    _q(
                        f"{x.shape}.{prop}",
                        {"type": prop, "shape": x.shape, "value": getattr(x, prop)},
                        True,
                        "binding",
                        x.shape,
                    )
                )
                qs.append(
                    _q(
                        f"{x.shape}.{prop}.swapped",
                        {"type": prop, "shape": x.shape, "value": getattr(y, prop)},
                        False,
                        "binding",
                        x.shape,
                    )
                )
        out.append(_record("shapes-binding", k, scene, qs, "two-objects"))
    return out


GENERATORS = {"shapes-leakage": leakage, "shapes-omission": omission, "shapes-binding": binding}


def load_shapes_benchmark(spec: str) -> list[dict]:
    """``shapes-leakage`` or ``shapes-leakage@SEED``."""
    from effeval.errors import ConfigError

    name, _, seed = spec.partition("@")
    if name not in GENERATORS:
        raise ConfigError(
            f"--benchmark: {name!r} is not a shapes benchmark. Fix: use one of {', '.join(GENERATORS)}"
        )
    try:
        seed_value = int(seed) if seed else DEFAULT_SEED
    except ValueError:
        raise ConfigError(
            f"--benchmark: seed {seed!r} in {spec!r} is not an integer. Fix: write e.g. {name}@1"
        ) from None
    return GENERATORS[name](seed=seed_value)
