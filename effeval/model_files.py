"""Cheap integrity checks of a saved model folder, before anything loads it.

A ``config.json`` cut mid-file or a ``.safetensors`` file shorter than its own header says are
found here in milliseconds (only the header is read; no torch, no transformers), so a command can
refuse them with one line before it starts minutes of work, instead of failing deep inside
``from_pretrained`` or, worse, loading a zoo folder whose weights were truncated.

A safetensors file is ``<8-byte little-endian header length><JSON header><tensor bytes>``; each
tensor's ``data_offsets`` in the header give its byte range, so the file must be exactly
``8 + header length + the largest end offset`` bytes long.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# a header larger than this is not a real one (safetensors itself refuses headers over 100 MB)
MAX_HEADER_BYTES = 100_000_000


def safetensors_problem(path: str | os.PathLike) -> str | None:
    """Why the safetensors file at ``path`` is not complete, or None when its size matches its
    header. Reads the header only."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            prefix = fh.read(8)
            if len(prefix) < 8:
                return f"{path.name} is {size} bytes, too short for a safetensors header"
            length = int.from_bytes(prefix, "little")
            if length > MAX_HEADER_BYTES or 8 + length > size:
                return f"{path.name} is {size:,} bytes, shorter than its own header says (truncated)"
            header = json.loads(fh.read(length).decode("utf-8"))
    except OSError as exc:
        return f"{path.name} cannot be read ({exc.strerror or type(exc).__name__})"
    except (UnicodeDecodeError, json.JSONDecodeError):
        return f"{path.name} has a header that is not JSON (not a safetensors file, or damaged)"
    if not isinstance(header, dict):
        return f"{path.name} has a header that is not a JSON object (damaged)"
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            return f"{path.name}: tensor {name!r} has no valid data_offsets in its header (damaged)"
        end = max(end, offsets[1])
    expected = 8 + length + end
    if size != expected:
        what = "truncated" if size < expected else "longer than its header says"
        return f"{path.name} is {size:,} bytes, its header describes {expected:,} ({what})"
    return None


def folder_problem(folder: str | os.PathLike) -> str | None:
    """The first reason the saved model folder ``folder`` cannot be complete: a ``config.json``
    that is not JSON, a weights file listed by ``model.safetensors.index.json`` that is missing,
    or a ``.safetensors`` file (here or in a sub-folder, as diffusers pipelines keep them) whose
    size does not match its header. None when nothing is wrong as far as these checks can see."""
    folder = Path(folder)
    for config in sorted(folder.glob("**/config.json")):
        try:
            json.loads(config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
            return f"{config.relative_to(folder)} is not valid JSON ({detail})"
    for index in sorted(folder.glob("**/*.safetensors.index.json")):
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            return f"{index.relative_to(folder)} is not a valid weights index"
        missing = sorted(s for s in shards if not (index.parent / s).is_file())
        if missing:
            return f"{index.relative_to(folder)} lists {missing[0]}, which is missing"
    for weights in sorted(folder.glob("**/*.safetensors")):
        problem = safetensors_problem(weights)
        if problem is not None:
            return str(weights.parent.relative_to(folder) / problem) if weights.parent != folder else problem
    return None


def honour_umask(folder: str | os.PathLike) -> None:
    """Give the files a ``save_pretrained`` just wrote under ``folder`` the mode a plain
    ``open(path, "w")`` gives (0666 minus the umask). safetensors (0.8) writes its files through
    a private temporary file and keeps that file's 0600, so a saved model would otherwise be
    unreadable to the group and others under the usual 022 umask. Only files left at exactly 0600
    are changed: a mode someone chose on purpose stays."""
    from effeval.atomic import _umask

    wanted = 0o666 & ~_umask()
    if wanted == 0o600:
        return
    for path in Path(folder).rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mode & 0o777 == 0o600:
                os.chmod(path, wanted)
        except OSError:  # a file another process removed meanwhile: nothing to fix
            pass
