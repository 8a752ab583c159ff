"""The shapes world's judge: a small CNN reads each grid cell (shape or empty, colour, pattern) and
answers the benchmarks' yes/no questions exactly from what it read (``world.answer`` on the
scene it sees). Plugged in as the ``judge`` scorer (``--scorers judge``); its keys are the VQA
scorer's (``leakage``, ``omission``, ``binding``, ``vqa_accuracy``) so metrics and reports are shared.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from effeval.errors import ConfigError
from effeval.image.shapes import world as W

DEFAULT_JUDGE = "zoo:shapes-judge"


# chroma (max - min over R, G, B, images in [-1, 1]) at which a pixel counts as fully object: the
# four colours have 0.94-1.61, the background and the white pattern marks 0
CHROMA_FULL = 0.6


def make_judge():
    """The cell reader, factorised so that what it has not seen together it can still read:
    shape and pattern come from the cell's *silhouette* (chroma, clipped: the same for every
    colour), colour from a per-pixel (1x1) reading of the RGB values averaged over the
    silhouette (the same for every shape). An unfactorised CNN trained without the held-out
    colour-shape combinations read them as seen ones (a yellow circle as a yellow square, a blue
    triangle as a green one: 0.92 accuracy on held-out renders)."""
    import torch

    c = torch.nn

    class CellJudge(c.Module):
        """One 16x16 cell -> logits of shape (none + 3), colour (4), pattern (3)."""

        def __init__(self):
            super().__init__()
            self.body = c.Sequential(
                c.Conv2d(1, 32, 3, padding=1),
                c.ReLU(),
                c.Conv2d(32, 32, 3, padding=1),
                c.ReLU(),
                c.MaxPool2d(2),
                c.Conv2d(32, 64, 3, padding=1),
                c.ReLU(),
                c.MaxPool2d(2),
                c.Flatten(),
                c.Linear(64 * 16, 128),
                c.ReLU(),
            )
            self.pixel = c.Sequential(c.Conv2d(3, 32, 1), c.ReLU(), c.Conv2d(32, 32, 1), c.ReLU())
            self.shape = c.Linear(128, 1 + len(W.SHAPES))
            self.colour = c.Linear(32, len(W.COLOURS))
            self.pattern = c.Linear(128, len(W.PATTERNS))

        def forward(self, cells):
            chroma = cells.max(dim=1, keepdim=True).values - cells.min(dim=1, keepdim=True).values
            silhouette = (chroma / CHROMA_FULL).clamp(0.0, 1.0)
            h = self.body(silhouette)
            weight = silhouette.flatten(1)
            per_pixel = self.pixel(cells).flatten(2)  # n, 32, 256
            pooled = (per_pixel * weight[:, None]).sum(-1) / (weight.sum(-1, keepdim=True) + 1e-3)
            return self.shape(h), self.colour(pooled), self.pattern(h)

    return CellJudge()


def cells_of(pixels):
    """(n, 3, 32, 32) -> (n*4, 3, 16, 16), cells row-major."""
    n = pixels.shape[0]
    x = pixels.unfold(2, W.CELL, W.CELL).unfold(3, W.CELL, W.CELL)  # n, 3, 2, 2, 16, 16
    return x.permute(0, 2, 3, 1, 4, 5).reshape(n * W.GRID * W.GRID, 3, W.CELL, W.CELL)


def cell_labels(scenes):
    """Targets per cell: shape index (0 = empty), colour and pattern (-100 = ignored when empty)."""
    import torch

    n_cells = W.GRID * W.GRID
    shape = torch.zeros(len(scenes) * n_cells, dtype=torch.long)
    colour = torch.full_like(shape, -100)
    pattern = torch.full_like(shape, -100)
    for i, s in enumerate(scenes):
        for o in s.objects:
            j = i * n_cells + o.cell
            shape[j] = 1 + W.SHAPES.index(o.shape)
            colour[j] = W.COLOURS.index(o.colour)
            pattern[j] = W.PATTERNS.index(o.pattern)
    return shape, colour, pattern


def images_tensor(images):
    """PIL images (resized to 32x32 if needed) -> float tensor (n, 3, 32, 32) in [-1, 1]."""
    import numpy as np
    import torch

    arrs = []
    for im in images:
        im = im.convert("RGB")
        if im.size != (W.IMAGE_SIZE, W.IMAGE_SIZE):
            im = im.resize((W.IMAGE_SIZE, W.IMAGE_SIZE))
        arrs.append(np.asarray(im, dtype=np.float32))
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2) / 127.5 - 1.0


_QUESTION_FORMS = [
    (re.compile(r"is there an? (\w+)\?"), lambda m: {"type": "presence", "shape": m[1]}),
    (
        re.compile(r"is the (\w+) (\w+)\?"),
        lambda m: {"type": "colour" if m[2] in W.COLOURS else "pattern", "shape": m[1], "value": m[2]},
    ),
    (re.compile(r"is there exactly one (\w+)\?"), lambda m: {"type": "count", "shape": m[1], "value": 1}),
    (
        re.compile(r"are there exactly (two|three) (\w+)s\?"),
        lambda m: {"type": "count", "shape": m[2], "value": W.NUMBER_WORDS[m[1]]},
    ),
]


def question_spec(q: dict) -> dict:
    """A question's structured form: its ``spec``, else parsed from the world's question text."""
    if isinstance(q.get("spec"), dict):
        return q["spec"]
    text = str(q.get("text", "")).strip().lower()
    for rx, build in _QUESTION_FORMS:
        m = rx.fullmatch(text)
        if m:
            spec = build(m)
            ok = spec["shape"] in W.SHAPES and (
                spec["type"] in ("presence", "count") or spec["value"] in (W.COLOURS + W.PATTERNS)
            )
            if ok:
                return spec
    raise ConfigError(
        f"--scorers judge: question {q.get('text')!r} is not one the shapes judge can answer. "
        "Fix: use a shapes-* benchmark, or questions like 'Is the circle red?', 'Is there a square?', "
        "'Are there exactly two triangles?'"
    )


class ShapesJudge:
    def __init__(self, path: str | Path):
        import torch
        from safetensors.torch import load_file

        torch.set_num_threads(max(1, torch.get_num_threads()))
        self.model = make_judge()
        self.model.load_state_dict(load_file(str(Path(path) / "judge.safetensors")))
        self.model.eval()

    def read(self, images) -> list[W.Scene]:
        """What the judge sees: one object per non-empty cell (size and offset not estimated)."""
        import torch

        px = images_tensor(images)
        with torch.no_grad():
            s, c, p = self.model(cells_of(px))
        s, c, p = s.argmax(-1), c.argmax(-1), p.argmax(-1)
        n_cells = W.GRID * W.GRID
        scenes = []
        for i in range(px.shape[0]):
            objs = []
            for k in range(n_cells):
                j = i * n_cells + k
                if int(s[j]) > 0:
                    objs.append(
                        W.Obj(W.SHAPES[int(s[j]) - 1], W.COLOURS[int(c[j])], W.PATTERNS[int(p[j])], k)
                    )
            scenes.append(W.Scene(tuple(objs)))
        return scenes

    def answers(self, images, questions: list[dict]) -> list[list[bool]]:
        specs = [question_spec(q) for q in questions]
        return [[W.answer(scene, sp) for sp in specs] for scene in self.read(images)]


class JudgeScorer:
    """``--scorers judge``: the shapes judge's exact yes/no answers as the VQA scorer's keys."""

    name = "judge"

    def __init__(self, judge_model: str = DEFAULT_JUDGE, device: str | None = None):
        from effeval.image.scorer_base import resolve_model, weights_sha256

        self.info = resolve_model(judge_model, "judge_model")
        if not (Path(self.info["path"]) / "judge.safetensors").is_file():
            raise ConfigError(
                f"--judge-model: {judge_model!r} holds no judge.safetensors. "
                "Fix: use zoo:shapes-judge (effeval zoo build --shapes) or a folder it wrote"
            )
        self.info["weights_sha256"] = weights_sha256(self.info["path"])
        self.judge = ShapesJudge(self.info["path"])

    def metadata(self) -> dict[str, Any]:
        return {
            "scorer": self.name,
            **self.info,
            "library": "effeval",
            "definitions": {
                "vqa_accuracy": "share of questions the judge answers as expected",
                "leakage": "share of kind=leak questions answered against expectation (leak seen)",
                "omission": "share of kind=presence questions answered against expectation (object missing)",
                "binding": "share of kind=binding questions answered as expected",
            },
        }

    def check_record(self, record: dict) -> None:
        """Before any image: the judge knows only the shapes world, so the prompt must be a caption
        in its grammar and every question one it answers (else one line naming the record)."""
        try:
            W.parse_caption(record.get("prompt", ""))
            for q in record.get("questions") or []:
                question_spec(q)
        except ConfigError as exc:
            raise ConfigError(f"--scorers judge: record {record.get('id')!r}: {exc}") from None

    def score(self, images, record: dict) -> dict[str, float]:
        from effeval.image.scorer_base import rates_by_kind

        questions = record.get("questions") or []
        if not questions or not images:
            return {}
        answers = self.judge.answers(images, questions)
        out: dict[str, float] = {}
        by_kind: dict[str, list[float]] = {}
        for j, q in enumerate(questions):
            said_yes = [row[j] for row in answers]
            correct = sum(y == (q["expected"] == "yes") for y in said_yes) / len(said_yes)
            by_kind.setdefault(q.get("kind", "other"), []).append(correct)
            out[f"q.{q['id']}.p_yes"] = sum(said_yes) / len(said_yes)
        out.update(rates_by_kind(by_kind))
        return out

    def finalize(self) -> dict[str, float]:
        return {}
