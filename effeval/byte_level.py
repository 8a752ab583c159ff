"""GPT-2's reversible byte <-> printable-character map, used by byte-level BPE vocabularies
(GPT-2, CLIP, Qwen, tekken): each of the 256 bytes is stored in the vocabulary as one printable
unicode character (space is ``Ġ``, newline ``Ċ``)."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """byte -> its stand-in character; printable bytes map to themselves, the rest to 256+n."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, codes)}


@functools.lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    """The inverse map: stand-in character -> byte."""
    return {ch: b for b, ch in bytes_to_unicode().items()}
