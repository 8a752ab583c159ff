"""Real text that ships with every Python: the stdlib's own sources and pydoc's topic help.

Deterministic: files are taken in sorted order, so every machine with the same Python minor
version gets the same corpus (the zoo's cache key includes that version).
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

# A fixed, sorted selection keeps the corpus small and identical across runs.
_STDLIB_MODULES = (
    "argparse.py",
    "collections/__init__.py",
    "dataclasses.py",
    "functools.py",
    "heapq.py",
    "json/decoder.py",
    "json/encoder.py",
    "pathlib.py",
    "random.py",
    "shutil.py",
    "statistics.py",
    "string.py",
    "textwrap.py",
    "fractions.py",
    "bisect.py",
    "calendar.py",
    "csv.py",
    "difflib.py",
)


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def pydoc_topics() -> list[str]:
    from pydoc_data.topics import topics

    return [topics[key] for key in sorted(topics)]


def stdlib_sources() -> list[str]:
    out = []
    for rel in _STDLIB_MODULES:
        path = stdlib_dir() / rel
        if path.exists():
            out.append(path.read_text(encoding="utf-8", errors="replace"))
    return out


def corpus_texts(kind: str = "mixed") -> list[str]:
    """``prose`` (pydoc topics), ``code`` (stdlib sources) or ``mixed`` (both, interleaved)."""
    if kind == "prose":
        return pydoc_topics()
    if kind == "code":
        return stdlib_sources()
    prose, code = pydoc_topics(), stdlib_sources()
    mixed = []
    for i in range(max(len(prose), len(code))):
        if i < len(prose):
            mixed.append(prose[i])
        if i < len(code):
            mixed.append(code[i])
    return mixed


def heldout_texts(n: int = 8) -> list[str]:
    """Text the zoo never trains on (other stdlib modules), for perplexity checks."""
    names = (
        "ipaddress.py",
        "gettext.py",
        "locale.py",
        "pprint.py",
        "sched.py",
        "selectors.py",
        "zipapp.py",
        "tabnanny.py",
        "numbers.py",
        "operator.py",
    )
    out = []
    for name in names[:n]:
        path = stdlib_dir() / name
        if path.exists():
            out.append(path.read_text(encoding="utf-8", errors="replace"))
    return out


NAMED_CORPORA = {"python": "mixed", "python-prose": "prose", "python-code": "code"}

# Real English prose: reasoning-gym ships Jules Verne's "In the Year 2889" (public domain).
REAL_PROSE_HELDOUT_SHARE = 0.2


def year_2889_text() -> str:
    """The novella's text from the installed reasoning-gym package (one-line error when missing)."""
    import importlib.util

    from effeval.errors import ConfigError

    spec = importlib.util.find_spec("reasoning_gym")
    path = Path(spec.origin).parent / "data" / "in_the_year_2889.txt" if spec and spec.origin else None
    if path is None or not path.exists():
        raise ConfigError(
            "--data real-prose: reasoning-gym's in_the_year_2889.txt is not installed. "
            "Fix: pip install reasoning-gym==0.1.25 (or pass --data python)"
        )
    return path.read_text(encoding="utf-8", errors="replace")


def real_prose_split() -> tuple[list[str], list[str]]:
    """(training, held-out) real prose: pydoc's topic help plus the first 80% of "In the Year
    2889" (by paragraphs) for training; the novella's last 20% is held out."""
    paragraphs = [p.strip() for p in year_2889_text().split("\n\n") if p.strip()]
    cut = int(len(paragraphs) * (1 - REAL_PROSE_HELDOUT_SHARE))
    return pydoc_topics() + ["\n\n".join(paragraphs[:cut])], ["\n\n".join(paragraphs[cut:])]


def story_prose_split(heldout_share: float = REAL_PROSE_HELDOUT_SHARE) -> tuple[list[str], list[str]]:
    """(training, held-out) for ``--data real-prose``: pydoc's topic help plus the first 80% of
    the *story* of "In the Year 2889" (whole paragraphs, by characters); the story's last 20% is
    held out.

    Only the text between Project Gutenberg's START and END markers is the novella: the file's
    last ~35% is the Gutenberg licence, so ``real_prose_split``'s plain 80/20 split of the file
    holds out licence text and trains on the whole story (kept as it is for the hetero-spec zoo
    models built on it)."""
    from effeval.real_data import gutenberg_body

    paragraphs = [p.strip() for p in gutenberg_body(year_2889_text()).split("\n\n") if p.strip()]
    total, cut, seen = sum(len(p) for p in paragraphs), len(paragraphs), 0
    for i, p in enumerate(paragraphs):
        seen += len(p)
        if seen > total * (1 - heldout_share):
            cut = i + 1
            break
    return pydoc_topics() + ["\n\n".join(paragraphs[:cut])], ["\n\n".join(paragraphs[cut:])]


def texts_for(data: str) -> tuple[list[str] | None, list[str] | None]:
    """(training texts, held-out texts) for a named corpus; (None, None) when ``data`` names files."""
    if data in NAMED_CORPORA:
        return corpus_texts(NAMED_CORPORA[data]), heldout_texts(4)
    if data == "real-prose":  # the story only, its end held out (the file's tail is the licence)
        return story_prose_split()
    return None, None
