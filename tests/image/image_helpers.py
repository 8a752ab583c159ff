"""Helpers for the image runner tests: a model-free scorer (importable as ``image_helpers:PixelScorer``)."""

from __future__ import annotations


class PixelScorer:
    """Deterministic scores from the pixels alone: lets runner tests avoid evaluator models."""

    name = "pixel"

    def metadata(self) -> dict:
        return {"scorer": self.name, "model": None, "definitions": {"mean_pixel": "mean RGB value / 255"}}

    def score(self, images, record: dict) -> dict:
        import numpy as np

        arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.float64) for im in images])
        return {
            "mean_pixel": float(arr.mean() / 255.0),
            "red_share": float(arr[..., 0].sum() / max(arr.sum(), 1.0)),
        }
