"""CLIP similarity and CLIPScore (open_clip, or torchmetrics' CLIPScore on the same model)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from effeval.errors import config_error
from effeval.image.scorer_base import (
    DEFAULT_CLIP_MODEL,
    DEFAULT_CLIP_TEMPLATE,
    Scorer,
    _load_images,
    _pick_device,
    resolve_model,
    weights_sha256,
)

logger = logging.getLogger(__name__)


class _OpenClip:
    """An open_clip model + preprocess + tokenizer, loaded once per (spec, device)."""

    _CACHE: dict[tuple, _OpenClip] = {}

    def __init__(self, spec: str, device: str, argument: str):
        import open_clip
        import torch

        self.info = resolve_model(spec, argument)
        path = Path(self.info["path"])
        if not (path / "open_clip_config.json").is_file():
            raise config_error(
                argument,
                f"{path} has no open_clip_config.json, so it is not an open_clip model directory",
                "pass a directory saved in open_clip's hub layout (open_clip_config.json + weights), e.g. zoo:open-clip-tiny",
            )
        # open_clip logs every loading step at INFO on the root logger; keep runs' logs readable.
        root_level = logging.root.level
        logging.root.setLevel(max(root_level, logging.WARNING))
        try:
            self.model, _, self.preprocess = open_clip.create_model_and_transforms(
                f"local-dir:{path}", device=device
            )
            self.tokenizer = open_clip.get_tokenizer(f"local-dir:{path}")
        finally:
            logging.root.setLevel(root_level)
        self.model.eval()
        self.device = device
        self.info["weights_sha256"] = weights_sha256(path)
        self.info["tokenizer"] = type(self.tokenizer).__name__
        self._torch = torch

    @classmethod
    def get(cls, spec: str, device: str, argument: str) -> _OpenClip:
        key = (spec, device)
        if key not in cls._CACHE:
            cls._CACHE[key] = cls(spec, device, argument)
        return cls._CACHE[key]

    def pixel_values(self, images):
        return self._torch.stack([self.preprocess(im) for im in images]).to(self.device)

    def image_features(self, images, normalize: bool = True):
        with self._torch.no_grad():
            f = self.model.encode_image(self.pixel_values(images)).float()
        return f / f.norm(dim=-1, keepdim=True) if normalize else f

    def text_features(self, texts, normalize: bool = True):
        with self._torch.no_grad():
            f = self.model.encode_text(self.tokenizer(list(texts)).to(self.device)).float()
        return f / f.norm(dim=-1, keepdim=True) if normalize else f


class _TorchmetricsClipAdapter:
    """What torchmetrics' CLIPScore expects from ``model_name_or_path()``: a model with
    ``get_image_features`` / ``get_text_features`` and a processor, here backed by open_clip.
    ``to()`` is a no-op so torchmetrics cannot move our model off its device."""

    def __init__(self, clip: _OpenClip):
        import types

        self.clip = clip
        self.config = types.SimpleNamespace()  # torchmetrics probes config.text_config

    def to(self, device):
        return self

    def get_image_features(self, pixel_values):
        with self.clip._torch.no_grad():
            return self.clip.model.encode_image(pixel_values.to(self.clip.device)).float()

    def get_text_features(self, input_ids, attention_mask=None):
        with self.clip._torch.no_grad():
            return self.clip.model.encode_text(input_ids.to(self.clip.device)).float()

    def __call__(self, images=None, text=None, **_):
        if images is not None:
            from PIL import Image

            pil = [Image.fromarray(t.permute(1, 2, 0).cpu().numpy()) for t in images]
            return {"pixel_values": self.clip.pixel_values(pil)}
        ids = self.clip.tokenizer(list(text))
        return {"input_ids": ids, "attention_mask": (ids != 0).long()}


def _pil_to_uint8_chw(im):
    import numpy as np
    import torch

    return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1)


class ClipScorer(Scorer):
    name = "clip"

    def __init__(
        self,
        clip_model: str = DEFAULT_CLIP_MODEL,
        clip_template: str = DEFAULT_CLIP_TEMPLATE,
        clipscore_weight: float = 1.0,
        device: str | None = None,
    ):
        if "{prompt}" not in clip_template:
            raise config_error(
                "clip_template", f"{clip_template!r} has no {{prompt}} field", "include {prompt}"
            )
        self.clip = _OpenClip.get(clip_model, _pick_device(device), "clip_model")
        self.template = clip_template
        self.weight = float(clipscore_weight)
        self.clipscore_impl = "torchmetrics.functional.multimodal.clip_score (open_clip adapter)"

    def metadata(self) -> dict[str, Any]:
        return {
            "scorer": self.name,
            **self.clip.info,
            "library": "open_clip",
            "text_template": self.template,
            "clipscore_weight": self.weight,
            "clipscore_impl": self.clipscore_impl,
            "definitions": {
                "clip_similarity": "mean over images of cos(E_image, E_text)",
                "clipscore": f"mean over images of {self.weight} * max(100 * cos(E_image, E_text), 0)",
            },
        }

    def clipscores(self, images, text: str) -> list[float]:
        """w * max(100 cos, 0) per image, through torchmetrics where it works."""
        if self.clipscore_impl.startswith("torchmetrics"):
            try:
                from torchmetrics.functional.multimodal import clip_score

                adapter = _TorchmetricsClipAdapter(self.clip)
                out = []
                for im in images:
                    s = clip_score(_pil_to_uint8_chw(im), text, model_name_or_path=lambda: (adapter, adapter))
                    out.append(self.weight * float(s))
                return out
            except (ImportError, AttributeError, TypeError, ValueError) as exc:
                logger.warning(
                    "torchmetrics CLIPScore unusable (%s); computing the same formula directly", exc
                )
                self.clipscore_impl = "effeval direct formula w*max(100*cos,0) (torchmetrics failed)"
        cos = (self.clip.image_features(images) @ self.clip.text_features([text]).T)[:, 0]
        return [self.weight * max(100.0 * float(c), 0.0) for c in cos]

    def score(self, images, record: dict) -> dict[str, float]:
        images = _load_images(images, "images")
        if not images:
            return {}
        text = self.template.format(prompt=record["prompt"])
        cos = (self.clip.image_features(images) @ self.clip.text_features([text]).T)[:, 0]
        scores = self.clipscores(images, text)
        return {"clip_similarity": float(cos.mean()), "clipscore": sum(scores) / len(scores)}
