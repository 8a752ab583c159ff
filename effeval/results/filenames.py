"""File names made from names found in results (task names, run ids): safe and collision-free.

Replacing the characters a file system or a URL treats specially is not enough on its own: the
tasks ``a/b`` and ``a_b`` would both become ``a_b`` and one file would overwrite the other. A name
that had to be changed therefore carries a short hash of the original, so two different names
never share a file; a name that needed no change keeps its readable form.
"""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_stem(name: str, fallback: str = "item") -> str:
    """``name`` as a file-name stem: itself when it is already safe (letters, digits, ``.``,
    ``_``, ``-``; not starting with ``.`` or ``-``), else the safe characters plus ``-`` and 8 hex
    digits of the name's sha256."""
    text = str(name)
    safe = _UNSAFE.sub("_", text).strip("_").lstrip(".-") or fallback
    if safe == text:
        return safe
    return f"{safe}-{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def unique_stems(names, argument: str, fallback: str = "item") -> dict[str, str]:
    """``{name: file_stem(name)}`` for every name; a ConfigError naming ``argument`` if two stems
    would still share a file (they differ only in case, which a case-insensitive file system such
    as macOS's merges)."""
    from effeval.errors import ConfigError

    stems: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name in names:
        stem = file_stem(name, fallback)
        other = seen.setdefault(stem.casefold(), name)
        if other != name:
            raise ConfigError(
                f"{argument}: {other!r} and {name!r} would be written to the same file ({stem!r} on a "
                "case-insensitive file system). Fix: rename one of them"
            )
        stems[name] = stem
    return stems
