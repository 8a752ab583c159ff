"""Image quality vs the baseline: FID/KID on CLIP features and CLIP cosine to the ``none`` image."""

from __future__ import annotations

import logging
from typing import Any

from effeval.errors import config_error
from effeval.image.clip_scorer import _OpenClip
from effeval.image.scorer_base import (
    DEFAULT_CLIP_MODEL,
    Scorer,
    _load_images,
    _pick_device,
)

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Image quality vs the baseline


class _ClipFeatureExtractor:
    """torchmetrics feature extractor: preprocessed pixel tensors -> CLIP image features."""

    def __new__(cls, clip: _OpenClip):
        import torch

        class Extractor(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.num_features = int(clip.model.visual.output_dim)

            def forward(self, pixel_values):
                with torch.no_grad():
                    return clip.model.encode_image(pixel_values.to(clip.device)).double().cpu()

        return Extractor()


def fid_kid_from_pixels(
    baseline_pixels, pixels, clip: _OpenClip, kid_subsets: int = 50, seed: int = 0
) -> dict:
    """FID and KID (torchmetrics) between two sets of CLIP-preprocessed image tensors."""
    import torch
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    n = min(len(baseline_pixels), len(pixels))
    if n < 2:
        raise config_error(
            "images", f"FID/KID need at least 2 images per set, got {n}", "score more prompts or seeds"
        )
    extractor = _ClipFeatureExtractor(clip)
    fid = FrechetInceptionDistance(feature=extractor, reset_real_features=True)
    import warnings

    with warnings.catch_warnings():  # "KID will save all extracted features": intended, features are small
        warnings.simplefilter("ignore", UserWarning)
        kid = KernelInceptionDistance(feature=extractor, subsets=kid_subsets, subset_size=min(n, 50))
    for metric in (fid, kid):
        metric.update(baseline_pixels, real=True)
        metric.update(pixels, real=False)
    # KID draws random subsets with torch's global RNG; fork it so the draw is seeded and local.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
    return {
        "fid": float(fid.compute()),
        "kid_mean": float(kid_mean),
        "kid_std": float(kid_std),
        "n_images": n,
    }


class QualityScorer(Scorer):
    name = "quality"

    def __init__(
        self,
        quality_model: str | None = None,
        clip_model: str = DEFAULT_CLIP_MODEL,
        device: str | None = None,
        kid_subsets: int = 50,
        seed: int = 0,
    ):
        self.clip = _OpenClip.get(quality_model or clip_model, _pick_device(device), "quality_model")
        self.kid_subsets = int(kid_subsets)
        self.seed = int(seed)
        self._pixels: list = []
        self._baseline_pixels: list = []

    def metadata(self) -> dict[str, Any]:
        return {
            "scorer": self.name,
            **self.clip.info,
            "library": "open_clip + torchmetrics",
            "feature": "open_clip image embedding (unnormalised) in place of Inception pool3",
            "kid_subsets": self.kid_subsets,
            "kid_seed": self.seed,
            "definitions": {
                "baseline_clip_cosine": "mean over seeds of cos(CLIP(image), CLIP(baseline image, same seed))",
                "fid": "torchmetrics FrechetInceptionDistance on CLIP image features, baseline vs scored images",
                "kid_mean": "torchmetrics KernelInceptionDistance (mean over subsets) on CLIP image features",
            },
        }

    def score(self, images, record: dict) -> dict[str, float]:
        baseline = record.get("baseline_images")
        if not baseline or not images:
            return {}
        images = _load_images(images, "images")
        baseline = _load_images(baseline, "record['baseline_images']")
        if len(baseline) != len(images):
            raise config_error(
                "record['baseline_images']",
                f"{len(baseline)} baseline images for {len(images)} images",
                "pass one baseline image per scored image (same seeds, same order)",
            )
        pix, base_pix = self.clip.pixel_values(images), self.clip.pixel_values(baseline)
        self._pixels.append(pix.cpu())
        self._baseline_pixels.append(base_pix.cpu())
        import torch

        with torch.no_grad():
            a = self.clip.model.encode_image(pix).float()
            b = self.clip.model.encode_image(base_pix).float()
        cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
        return {"baseline_clip_cosine": float(cos.mean())}

    def finalize(self) -> dict[str, float]:
        import torch

        if sum(len(p) for p in self._pixels) < 2:
            logger.warning("quality: fewer than 2 images with baselines; no FID/KID")
            return {}
        out = fid_kid_from_pixels(
            torch.cat(self._baseline_pixels),
            torch.cat(self._pixels),
            self.clip,
            kid_subsets=self.kid_subsets,
            seed=self.seed,
        )
        logger.info("quality: FID/KID over %d image pairs", out.pop("n_images"))
        return out  # metrics only: callers report every key as a score
