"""A controlled shapes world: rendered scenes with exact ground truth, template captions,
benchmarks whose answers are known, and a judge trained on it (``effeval.image.shapes.judge``)."""

from effeval.image.shapes.world import (
    COLOURS,
    IMAGE_SIZE,
    PATTERNS,
    SHAPES,
    Obj,
    Scene,
    answer,
    caption,
    parse_caption,
    random_scene,
    render,
    split_of,
)

__all__ = [
    "COLOURS",
    "IMAGE_SIZE",
    "PATTERNS",
    "SHAPES",
    "Obj",
    "Scene",
    "answer",
    "caption",
    "parse_caption",
    "random_scene",
    "render",
    "split_of",
]
