"""Images from (conditioning, seed) through the stock pipeline call.

Every image has its own ``torch.Generator`` seeded with the run seed, so an image depends only
on (prompt, intervention, seed) -- not on the order prompts are processed, nor on which
process of a data-parallel run makes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from effeval.image.interventions import Conditioning


@dataclass
class GenerationConfig:
    steps: int = 2
    guidance_scale: float = 7.5
    height: int | None = None  # None: the pipeline's default (unet sample_size x vae scale factor)
    width: int | None = None

    def as_dict(self) -> dict:
        return {
            "steps": self.steps,
            "guidance_scale": self.guidance_scale,
            "height": self.height,
            "width": self.width,
        }


class ImageGenerator:
    def __init__(self, pipe, config: GenerationConfig | None = None):
        self.pipe = pipe
        self.config = config or GenerationConfig()

    def _generator(self, seed: int):
        import torch

        return torch.Generator(device="cpu").manual_seed(int(seed))

    def _common(self, seed: int) -> dict:
        cfg = self.config
        kw = {
            "num_inference_steps": cfg.steps,
            "guidance_scale": cfg.guidance_scale,
            "generator": self._generator(seed),
            "output_type": "pil",
        }
        if cfg.height:
            kw["height"] = cfg.height
        if cfg.width:
            kw["width"] = cfg.width
        return kw

    def image(self, cond: Conditioning, seed: int):
        """One PIL image from intervened embeddings (stock ``pipe(prompt_embeds=...)``)."""
        import torch

        with torch.no_grad():
            return self.pipe(**cond.pipeline_kwargs(), **self._common(seed)).images[0]

    def images(self, cond: Conditioning, seeds: list[int]) -> list:
        return [self.image(cond, s) for s in seeds]

    def images_batched(self, conds: list[Conditioning], seeds: list[int]) -> list[list]:
        """``[self.images(c, seeds) for c in conds]`` in as few stock pipeline calls as the shapes
        allow: conditionings whose tensors have the same shapes go in one call, one row and one
        ``torch.Generator`` per (conditioning, seed), so each image still starts from its own
        seed's noise. A batched call computes the same thing as the single ones, but not bit for
        bit (matrix kernels group the rows differently): pixel values may differ in the last bits."""
        import torch

        out: list[list] = [[] for _ in conds]
        groups: dict[tuple, list[int]] = {}
        for i, cond in enumerate(conds):
            kw = cond.pipeline_kwargs()
            groups.setdefault(tuple((k, tuple(v.shape)) for k, v in kw.items()), []).append(i)
        for members in groups.values():
            kws = [conds[i].pipeline_kwargs() for i in members]
            batch = {k: torch.cat([kw[k] for kw in kws for _ in seeds], dim=0) for k in kws[0]}
            common = self._common(0)
            common["generator"] = [self._generator(s) for _ in members for s in seeds]
            with torch.no_grad():
                images = self.pipe(**batch, **common).images
            for j, i in enumerate(members):
                out[i] = images[j * len(seeds) : (j + 1) * len(seeds)]
        return out

    def stock_image(self, prompt: str, seed: int):
        """The unmodified pipeline from the prompt text (the benchmark's reference path)."""
        import torch

        with torch.no_grad():
            return self.pipe(prompt=prompt, **self._common(seed)).images[0]
