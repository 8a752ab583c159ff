"""What every image scorer shares: model provenance (zoo / local / hub id -> path, revision,
weights sha256), device choice, image loading, and the ``Scorer`` base class."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from effeval.errors import config_error

logger = logging.getLogger(__name__)


DEFAULT_CLIP_MODEL = "zoo:open-clip-tiny"
DEFAULT_VQA_MODEL = "zoo:blip-vqa-tiny"
DEFAULT_CLIP_TEMPLATE = "{prompt}"
DEFAULT_VQA_TEMPLATE = "{question}"
# For generic image-text-to-text models (chat VLMs), the question is asked in this frame.
DEFAULT_ITT_TEMPLATE = "{question} Answer yes or no."
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")


# --------------------------------------------------------------------------------------------
# Model resolution and provenance


def resolve_model(spec: str, argument: str) -> dict[str, Any]:
    """``spec`` (local dir | ``zoo:NAME`` | hub id) -> {"model_id", "path", "revision", "source"}."""
    if not spec or not isinstance(spec, str):
        raise config_error(
            argument, f"expected a model directory or hub id, got {spec!r}", "pass a local directory"
        )
    if spec.startswith("zoo:"):
        from effeval import zoo

        path = zoo.get(spec[4:])
        return {"model_id": spec, "path": str(path), "revision": None, "source": "effeval-zoo"}
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise config_error(
                argument, f"{spec} is a file, not a model directory", "pass the model's directory"
            )
        return {"model_id": spec, "path": str(path.resolve()), "revision": None, "source": "local"}
    repo_id = spec[len("hf-hub:") :] if spec.startswith("hf-hub:") else spec
    if repo_id.count("/") != 1 or spec.startswith((".", "/", "~")):
        raise config_error(
            argument,
            f"{spec!r} is neither an existing directory nor a hub id (org/name)",
            "pass an existing local model directory, a hub id like org/name, or zoo:open-clip-tiny / zoo:blip-vqa-tiny",
        )
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(repo_id=repo_id)
    except Exception as exc:  # offline and not cached, unknown repo, no access
        raise config_error(
            argument,
            f"could not get hub model {repo_id!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
            "download it once while online (or pass a local directory); HF_HUB_OFFLINE=1 only reads the cache",
        ) from None
    return {"model_id": repo_id, "path": local, "revision": Path(local).name, "source": "hf-hub"}


_HASH_CACHE: dict[tuple, str] = {}


def weights_sha256(path: str | os.PathLike) -> str | None:
    """sha256 over the directory's weight files (sorted by name; each file's name then bytes)."""
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    if not files:
        return None
    key = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    if key not in _HASH_CACHE:
        h = hashlib.sha256()
        for p in files:
            h.update(str(p.relative_to(root)).encode() + b"\0")
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        _HASH_CACHE[key] = h.hexdigest()
    return _HASH_CACHE[key]


def _pick_device(device: str | None) -> str:
    from effeval.models.base import resolve_device

    return resolve_device(device)


def _load_images(images, argument: str) -> list:
    from PIL import Image

    out = []
    for im in images:
        if isinstance(im, (str, os.PathLike)):
            if not Path(im).is_file():
                raise config_error(
                    argument, f"image file {im} does not exist", "pass existing image paths or PIL images"
                )
            im = Image.open(im)
        if not isinstance(im, Image.Image):
            raise config_error(
                argument, f"expected PIL images, got {type(im).__name__}", "pass PIL.Image objects"
            )
        out.append(im.convert("RGB"))
    return out


# --------------------------------------------------------------------------------------------
# Scorer base and registry


# question kind -> the rate reported for it: binding is the share answered as expected, leakage
# and omission the share answered against expectation (the failure is what is counted)
KIND_KEYS = {"leak": "leakage", "presence": "omission", "binding": "binding"}


def rates_by_kind(correct_by_kind: dict[str, list[float]]) -> dict[str, float]:
    """Per-question shares answered as expected, grouped by question kind -> ``vqa_accuracy`` over
    every question and the rate of each kind in ``KIND_KEYS``."""
    every = [c for cs in correct_by_kind.values() for c in cs]
    out = {"vqa_accuracy": sum(every) / len(every)}
    for kind, key in KIND_KEYS.items():
        if kind in correct_by_kind:
            acc = sum(correct_by_kind[kind]) / len(correct_by_kind[kind])
            out[key] = acc if key == "binding" else 1.0 - acc
    return out


class Scorer:
    name = "base"

    def metadata(self) -> dict[str, Any]:
        raise NotImplementedError

    def score(self, images, record: dict) -> dict[str, float]:
        raise NotImplementedError

    def finalize(self) -> dict[str, float]:
        """Numbers over everything scored so far (set-level metrics); most scorers have none."""
        return {}
