"""A reading of a shapes-world image that shares nothing with the judge: per-cell pixel colour
statistics, no learned weights.

Each 16x16 cell: a pixel is *coloured* when its chroma (max - min of R, G, B) exceeds
``CHROMA_MIN`` (the background, 235 grey, and the white pattern marks have chroma 0; the four
object colours have chroma 120-205). A cell is occupied when it holds at least ``MIN_PIXELS``
coloured pixels (the smallest plain object, a size-11 triangle, has ~55; a striped one ~27), and
its colour is the palette colour nearest (RGB distance) to most of its coloured pixels. Shape and
pattern are not read. Used to measure the judge on *generated* images, where no ground truth
exists (``agreement``).
"""

from __future__ import annotations

from effeval.image.shapes import world as W

CHROMA_MIN = 60
MIN_PIXELS = 16


def read_cells(image) -> list[str | None]:
    """Per cell (row-major): the colour name of its object, or None when it looks empty."""
    import numpy as np

    px = np.asarray(image.convert("RGB").resize((W.IMAGE_SIZE, W.IMAGE_SIZE)), dtype=np.float32)
    palette = np.array([W.RGB[c] for c in W.COLOURS], dtype=np.float32)
    out: list[str | None] = []
    for cell in range(W.GRID * W.GRID):
        y, x = (cell // W.GRID) * W.CELL, (cell % W.GRID) * W.CELL
        block = px[y : y + W.CELL, x : x + W.CELL].reshape(-1, 3)
        coloured = block[(block.max(1) - block.min(1)) > CHROMA_MIN]
        if len(coloured) < MIN_PIXELS:
            out.append(None)
            continue
        nearest = ((coloured[:, None, :] - palette[None]) ** 2).sum(-1).argmin(1)
        out.append(W.COLOURS[int(np.bincount(nearest, minlength=len(W.COLOURS)).argmax())])
    return out


def cells_of_scene(scene: W.Scene) -> list[str | None]:
    """The same per-cell form for a scene (what the judge read, or the ground truth)."""
    out: list[str | None] = [None] * (W.GRID * W.GRID)
    for o in scene.objects:
        out[o.cell] = o.colour
    return out


def agreement(judge_reads: list[W.Scene], images, n_boot: int = 1000, seed: int = 0) -> dict:
    """How often the judge's reading of each image agrees with the pixel reading, per image
    (the bootstrap unit): ``cells`` = share of the 4 cells where both say empty, or both say
    occupied with the same colour; ``occupancy`` = share where both agree on empty / occupied;
    ``colour`` = share of cells both read as occupied where the colours agree."""
    from effeval.image.metrics import mean_ci

    cells, occupancy, per_image_colour, colour_n, colour_ok = [], [], [], 0, 0
    for scene, image in zip(judge_reads, images):
        a, b = cells_of_scene(scene), read_cells(image)
        cells.append(sum(x == y for x, y in zip(a, b)) / len(a))
        occupancy.append(sum((x is None) == (y is None) for x, y in zip(a, b)) / len(a))
        both = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
        if both:
            per_image_colour.append(sum(x == y for x, y in both) / len(both))
        colour_n += len(both)
        colour_ok += sum(x == y for x, y in both)
    return {
        "images": len(cells),
        "cells": mean_ci(cells, n_boot, seed),
        "occupancy": mean_ci(occupancy, n_boot, seed),
        "colour": mean_ci(per_image_colour, n_boot, seed) if per_image_colour else None,
        "colour_cells": colour_n,
        "colour_cells_agreeing": colour_ok,
    }
