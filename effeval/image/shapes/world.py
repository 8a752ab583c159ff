"""The shapes world: 1-3 objects (shape x colour x pattern) on a 2x2 grid of a 32x32 image.

Everything about an image is known exactly: :func:`render` draws a :class:`Scene`, :func:`caption`
writes its template caption ("a red circle and a striped blue square"), :func:`answer` answers a
question about it. Held-out split: three (colour, shape) combinations never appear in training
scenes (``HELD_OUT``); a scene containing one belongs to ``heldout``.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass

from effeval.errors import ConfigError

SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue", "yellow")
PATTERNS = ("plain", "striped", "dotted")
RGB = {"red": (220, 40, 40), "green": (40, 160, 60), "blue": (40, 80, 220), "yellow": (235, 200, 30)}
BACKGROUND = (235, 235, 235)
MARK = (255, 255, 255)  # the stripes / dots inside a patterned object
IMAGE_SIZE = 32
GRID = 2  # 2x2 cells of 16x16
CELL = IMAGE_SIZE // GRID
SIZES = (11, 12, 13)
HELD_OUT = frozenset({("blue", "triangle"), ("yellow", "circle"), ("green", "square")})
NUMBER_WORDS = {"a": 1, "one": 1, "two": 2, "three": 3}
COUNT_WORDS = {1: "a", 2: "two", 3: "three"}
PLURALS = {s: s + "s" for s in SHAPES}


@dataclass(frozen=True)
class Obj:
    shape: str
    colour: str
    pattern: str
    cell: int  # 0..3, row-major
    size: int = 12
    dx: int = 0  # offset of the object's box inside its cell
    dy: int = 0

    def box(self) -> tuple[int, int, int, int]:
        x0 = (self.cell % GRID) * CELL + self.dx
        y0 = (self.cell // GRID) * CELL + self.dy
        return x0, y0, x0 + self.size, y0 + self.size

    def kind(self) -> tuple[str, str, str]:
        return (self.shape, self.colour, self.pattern)


@dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...]

    def to_json(self) -> list[dict]:
        return [asdict(o) for o in self.objects]

    @classmethod
    def from_json(cls, objs: list[dict]) -> Scene:
        return cls(tuple(Obj(**o) for o in objs))


def split_of(scene: Scene) -> str:
    return "heldout" if any((o.colour, o.shape) in HELD_OUT for o in scene.objects) else "train"


def random_obj(rng: random.Random, cell: int, split: str = "train", **fixed) -> Obj:
    """An object in ``cell``; ``fixed`` pins shape/colour/pattern. ``split="train"`` never draws a
    held-out (colour, shape) combination."""
    while True:
        shape = fixed.get("shape") or rng.choice(SHAPES)
        colour = fixed.get("colour") or rng.choice(COLOURS)
        pattern = fixed.get("pattern") or rng.choice(PATTERNS)
        if split != "train" or (colour, shape) not in HELD_OUT:
            break
        if fixed.get("shape") and fixed.get("colour"):
            raise ValueError(f"{colour} {shape} is held out of the train split")
    size = rng.choice(SIZES)
    slack = CELL - size
    return Obj(shape, colour, pattern, cell, size, rng.randint(0, slack), rng.randint(0, slack))


def random_scene(rng: random.Random, n_objects: int | None = None, split: str = "train") -> Scene:
    """1-3 objects in distinct cells. ``split``: ``train`` (no held-out combination), ``heldout``
    (at least one), ``any``."""
    n = n_objects or rng.randint(1, 3)
    while True:
        cells = rng.sample(range(GRID * GRID), n)
        objs = tuple(random_obj(rng, c, "train" if split == "train" else "any") for c in cells)
        scene = Scene(objs)
        if split in ("train", "any") or split_of(scene) == split:
            return scene


def _draw_shape(draw, shape: str, box: tuple[int, int, int, int], fill) -> None:
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=fill)
    elif shape == "square":
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=fill)
    elif shape == "triangle":
        draw.polygon([((x0 + x1 - 1) / 2, y0), (x0, y1 - 1), (x1 - 1, y1 - 1)], fill=fill)
    else:
        raise ValueError(shape)


def _pattern_layer(colour: str, pattern: str):
    from PIL import Image

    layer = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), RGB[colour])
    if pattern == "plain":
        return layer
    px = layer.load()
    for y in range(IMAGE_SIZE):
        for x in range(IMAGE_SIZE):
            if (pattern == "striped" and (y // 2) % 2 == 1) or (
                pattern == "dotted" and x % 4 in (1, 2) and y % 4 in (1, 2)
            ):
                px[x, y] = MARK
    return layer


def render(scene: Scene):
    """The scene as a 32x32 RGB PIL image (deterministic: no randomness at draw time)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), BACKGROUND)
    for o in scene.objects:
        mask = Image.new("L", img.size, 0)
        _draw_shape(ImageDraw.Draw(mask), o.shape, o.box(), 255)
        img.paste(_pattern_layer(o.colour, o.pattern), (0, 0), mask)
    return img


def _phrase(count: int, shape: str, colour: str, pattern: str) -> str:
    words = [COUNT_WORDS[count]]
    if pattern != "plain":
        words.append(pattern)
    words += [colour, PLURALS[shape] if count > 1 else shape]
    return " ".join(words)


def caption(scene: Scene) -> str:
    """Template caption: identical objects grouped with a count, in order of first appearance."""
    groups: dict[tuple[str, str, str], int] = {}
    for o in scene.objects:
        groups[o.kind()] = groups.get(o.kind(), 0) + 1
    phrases = [_phrase(n, s, c, p) for (s, c, p), n in groups.items()]
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def vocabulary() -> list[str]:
    return sorted(
        set(NUMBER_WORDS) | set(SHAPES) | set(PLURALS.values()) | set(COLOURS) | set(PATTERNS) | {"and"}
    )


def _vocab_error(word: str, text: str) -> ConfigError:
    return ConfigError(
        f"caption: {word!r} in {text!r} is outside the shapes world's vocabulary. "
        f"Fix: use counts a/one/two/three, patterns {'/'.join(PATTERNS)}, colours {'/'.join(COLOURS)} "
        f"and shapes {'/'.join(SHAPES)}, e.g. 'a red circle and a striped blue square'"
    )


def parse_caption(text: str) -> list[dict]:
    """Phrases of a caption in the world's grammar:
    ``<a|one|two|three> [pattern] [colour] <shape[s]>`` joined by ", " / " and ".
    -> ``[{"count", "shape", "colour" (or None), "pattern" (or None)}]``. A word outside the
    vocabulary, or a phrase out of that order, is one clear error."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("caption: empty caption. Fix: write e.g. 'a red circle and a blue square'")
    words = text.strip().rstrip(".").lower().replace(",", " , ").split()
    known = set(vocabulary()) | {","}
    for w in words:
        if w not in known:
            raise _vocab_error(w, text)
    phrases, cur = [], []
    for w in words + [","]:
        if w in (",", "and"):
            if cur:
                phrases.append(cur)
            cur = []
        else:
            cur.append(w)
    out = []
    for ph in phrases:
        m = re.fullmatch(
            r"(a|one|two|three) (?:(plain|striped|dotted) )?(?:(red|green|blue|yellow) )?(\w+)", " ".join(ph)
        )
        shape = next((s for s in SHAPES if m and m.group(4) in (s, PLURALS[s])), None)
        if not m or shape is None:
            raise ConfigError(
                f"caption: phrase {' '.join(ph)!r} of {text!r} is not '<count> [pattern] [colour] <shape>'. "
                "Fix: write phrases like 'two striped red squares'"
            )
        count = NUMBER_WORDS[m.group(1)]
        if (count > 1) != (m.group(4) == PLURALS[shape]):
            raise ConfigError(
                f"caption: {' '.join(ph)!r} in {text!r}: the count and the noun disagree. "
                f"Fix: write 'a {shape}' or 'two {PLURALS[shape]}'"
            )
        out.append({"count": count, "shape": shape, "colour": m.group(3), "pattern": m.group(2)})
    if sum(p["count"] for p in out) > GRID * GRID:
        raise ConfigError(
            f"caption: {text!r} asks for more than {GRID * GRID} objects. Fix: name at most {GRID * GRID}"
        )
    return out


def scene_from_caption(text: str, rng: random.Random) -> Scene:
    """A random scene matching the caption (unspecified colour/pattern drawn at random)."""
    phrases = parse_caption(text)
    n = sum(p["count"] for p in phrases)
    cells = rng.sample(range(GRID * GRID), n)
    objs = []
    for p in phrases:
        colour = p["colour"] or rng.choice(COLOURS)
        pattern = p["pattern"] or rng.choice(PATTERNS)
        for _ in range(p["count"]):
            objs.append(
                random_obj(rng, cells[len(objs)], "any", shape=p["shape"], colour=colour, pattern=pattern)
            )
    return Scene(tuple(objs))


# --- questions -----------------------------------------------------------------------------

QUESTION_TYPES = ("presence", "colour", "pattern", "count")


def question_text(spec: dict) -> str:
    t, shape = spec["type"], spec["shape"]
    if t == "presence":
        return f"Is there a {shape}?"
    if t in ("colour", "pattern"):
        return f"Is the {shape} {spec['value']}?"
    if t == "count":
        n = spec["value"]
        return (
            f"Is there exactly one {shape}?"
            if n == 1
            else f"Are there exactly {COUNT_WORDS[n]} {PLURALS[shape]}?"
        )
    raise ValueError(t)


def answer(scene: Scene, spec: dict) -> bool:
    """Ground truth. colour/pattern: does some object of that shape have it (no such object: no)."""
    of_shape = [o for o in scene.objects if o.shape == spec["shape"]]
    t = spec["type"]
    if t == "presence":
        return bool(of_shape)
    if t == "colour":
        return any(o.colour == spec["value"] for o in of_shape)
    if t == "pattern":
        return any(o.pattern == spec["value"] for o in of_shape)
    if t == "count":
        return len(of_shape) == spec["value"]
    raise ValueError(t)
