"""Shapes benchmarks in effeval's record format, generated from a seed (``shapes-leakage``,
``shapes-omission``, ``shapes-binding``; ``NAME@SEED`` picks another seed).

Every record carries its ``scene`` spec (the world's ground truth for a faithful image) and each
question a ``spec`` the judge answers exactly (``{"type": "colour", "shape": "square",
"value": "red"}``); ``expected`` is the answer for a faithful image.

- leakage: two objects of different shapes that differ in colour (category ``colour``) or in
  pattern (``pattern``); the leak question asks whether the *target* shows the *source's*
  property (expected "no"), e.g. "a red circle and a blue square" -> "Is the square red?".
  Records alternate the order (``leak.order``: ``source-first``, where a causal text encoder can
  carry the source into the target's tokens, and ``target-first``, where it cannot) and the
  attribute (colour, pattern). ``leak.source_phrase`` / ``leak.target_phrase`` are each item's
  whole expression (pattern, colour and noun words, e.g. "striped red circle"), for
  ``drop:{leak.source_phrase}`` and ``patch:{leak.target_phrase}``. A caption occurs at most
  once per order (it may occur once in each, with source and target swapped).
- leakage-control (``shapes-leakage-control``): record k is record k of ``shapes-leakage`` with the
  source's attribute changed to a third value (neither the source's nor the target's), so the
  leak question asks about a property nobody in the prompt has: how often the target takes that
  property anyway. ``leak.control_of`` names the matched record.
- omission: 2-3 objects of distinct shapes; one presence question each (expected "yes").
- binding: two objects of different shapes, colours and patterns; each object's own colour and
  pattern (expected "yes") and the other object's (expected "no").
Prompts come from the ``train`` split's (colour, shape) combinations unless ``split`` says
otherwise; ``heldout`` uses at least one combination no training scene had.

Every record carries ``words``: the prompt's words by role (``count``, ``pattern``, ``colour``,
``noun``, ``function`` and ``modifiers`` = all but the nouns), possibly empty lists, for the
redundancy experiment's ``drop:{words.colour}`` and the like.
"""

from __future__ import annotations

import dataclasses
import random

from effeval.image.shapes import world as W

SHAPES_BENCHMARKS = ("shapes-leakage", "shapes-leakage-control", "shapes-omission", "shapes-binding")
DEFAULT_N = 240
LEAKAGE_N = 800  # 400 per order: the experiment's source-first prompts need at least 400
DEFAULT_SEED = 0
ORDERS = ("source-first", "target-first")


def _q(qid: str, spec: dict, expected: bool, kind: str, item: str) -> dict:
    return {
        "id": qid,
        "text": W.question_text(spec),
        "kind": kind,
        "expected": "yes" if expected else "no",
        "item": item,
        "spec": spec,
    }


def phrase_words(obj: W.Obj) -> str:
    """An object's expression without its count word: "striped red circle", "red circle"."""
    return " ".join(([obj.pattern] if obj.pattern != "plain" else []) + [obj.colour, obj.shape])


def words_by_role(prompt: str) -> dict[str, list[str]]:
    """The caption's distinct words by role; ``modifiers``: every word but the nouns."""
    roles: dict[str, list[str]] = {r: [] for r in ("count", "pattern", "colour", "noun", "function")}
    for w in prompt.replace(",", " ").split():
        role = (
            "count"
            if w in W.NUMBER_WORDS
            else "pattern"
            if w in W.PATTERNS
            else "colour"
            if w in W.COLOURS
            else "function"
            if w == "and"
            else "noun"
        )
        if w not in roles[role]:
            roles[role].append(w)
    roles["modifiers"] = [w for r in ("count", "pattern", "colour", "function") for w in roles[r]]
    return roles


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
        "words": words_by_role(prompt),
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


KINDS = [(s, c, p) for s in W.SHAPES for c in W.COLOURS for p in W.PATTERNS]


def _leak_pools(rng: random.Random, split: str) -> dict[str, list[tuple]]:
    """The two-object captions (ordered kind pairs of distinct shapes) of ``split``, split into a
    colour pool and a pattern pool of (nearly) equal size: a pair differing in one attribute
    goes to that attribute's pool, a pair differing in both is dealt to whichever pool is short."""
    pairs = [
        (a, b)
        for a in KINDS
        for b in KINDS
        if a[0] != b[0] and (split == "any" or W.split_of(W.Scene((W.Obj(*a, 0), W.Obj(*b, 1)))) == split)
    ]
    colour = [(a, b) for a, b in pairs if a[1] != b[1] and a[2] == b[2]]
    pattern = [(a, b) for a, b in pairs if a[2] != b[2] and a[1] == b[1]]
    both = [(a, b) for a, b in pairs if a[1] != b[1] and a[2] != b[2]]
    rng.shuffle(both)
    for pair in both:
        (colour if len(colour) <= len(pattern) else pattern).append(pair)
    rng.shuffle(colour)
    rng.shuffle(pattern)
    return {"colour": colour, "pattern": pattern}


def _scene_of(kinds, cells, rng: random.Random) -> W.Scene:
    """Objects of these kinds in these cells, size and offset drawn as ``random_obj`` draws them."""
    return W.Scene(
        tuple(
            W.random_obj(rng, cell, "any", shape=shape, colour=colour, pattern=pattern)
            for (shape, colour, pattern), cell in zip(kinds, cells)
        )
    )


def _leak_questions(source: W.Obj, target: W.Obj, prop: str, value: str) -> list[dict]:
    return [
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


def leakage_pairs(
    n: int = LEAKAGE_N, seed: int = DEFAULT_SEED, split: str = "train"
) -> tuple[list[dict], list[dict]]:
    """``shapes-leakage`` records and their matched controls (see the module doc). Record k:
    order ``ORDERS[k % 2]``, attribute colour when ``(k // 2) % 2 == 0`` else pattern."""
    from effeval.errors import ConfigError

    rng = random.Random(f"shapes-leakage/{seed}/{split}")
    pools = {order: _leak_pools(rng, split) for order in ORDERS}
    cursor = {(o, p): 0 for o in ORDERS for p in ("colour", "pattern")}
    seen: dict[str, set[str]] = {o: set() for o in ORDERS}
    tests, controls = [], []
    for k in range(n):
        order, prop = ORDERS[k % 2], ("colour", "pattern")[(k // 2) % 2]
        pool = pools[order][prop]
        while True:
            if cursor[order, prop] >= len(pool):
                most = 4 * min(len(v) for p in pools.values() for v in p.values())
                raise ConfigError(
                    f"shapes-leakage: {n} records ask for more distinct {order} {prop} captions of the "
                    f"{split} split than there are. Fix: ask for at most {most}"
                )
            kinds = pool[cursor[order, prop]]
            cursor[order, prop] += 1
            scene = _scene_of(kinds, rng.sample(range(W.GRID * W.GRID), 2), rng)
            caption = W.caption(scene)
            if caption in seen[order]:
                continue
            first, second = scene.objects
            source, target = (first, second) if order == "source-first" else (second, first)
            value = getattr(source, prop)
            # the control: the source's attribute -> a third value, the scene staying in its split
            options = [
                v
                for v in (W.COLOURS if prop == "colour" else W.PATTERNS)
                if v not in (value, getattr(target, prop))
            ]
            ctrl_scenes = []
            for v in options:
                ctrl_source = dataclasses.replace(source, **{prop: v})
                objs = tuple(ctrl_source if o is source else o for o in scene.objects)
                if split == "any" or W.split_of(W.Scene(objs)) == W.split_of(scene):
                    ctrl_scenes.append((ctrl_source, W.Scene(objs)))
            if not ctrl_scenes:
                continue
            seen[order].add(caption)
            break
        ctrl_source, ctrl_scene = rng.choice(ctrl_scenes)
        leak = {
            "source": source.shape,
            "target": target.shape,
            "property": value,
            "attribute": prop,
            "order": order,
            "source_phrase": phrase_words(source),
            "target_phrase": phrase_words(target),
        }
        tests.append(
            _record("shapes-leakage", k, scene, _leak_questions(source, target, prop, value), prop, leak=leak)
        )
        ctrl_leak = {
            **leak,
            "source_phrase": phrase_words(ctrl_source),
            "control_value": getattr(ctrl_source, prop),
            "control_of": tests[-1]["id"],
        }
        controls.append(
            _record(
                "shapes-leakage-control",
                k,
                ctrl_scene,
                _leak_questions(ctrl_source, target, prop, value),
                prop,
                leak=ctrl_leak,
            )
        )
    return tests, controls


def leakage(n: int = LEAKAGE_N, seed: int = DEFAULT_SEED, split: str = "train") -> list[dict]:
    return leakage_pairs(n, seed, split)[0]


def leakage_control(n: int = LEAKAGE_N, seed: int = DEFAULT_SEED, split: str = "train") -> list[dict]:
    return leakage_pairs(n, seed, split)[1]


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


GENERATORS = {
    "shapes-leakage": leakage,
    "shapes-leakage-control": leakage_control,
    "shapes-omission": omission,
    "shapes-binding": binding,
}


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
