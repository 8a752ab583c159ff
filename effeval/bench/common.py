"""Shared helpers for benchmarks: timing, the JSON envelope, atomic writes under results/bench/."""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from effeval.commands.scaffold import Command

logger = logging.getLogger(__name__)


def bench_command(
    name: str,
    doc: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int | None],
) -> Command:
    """``python -m effeval.bench NAME`` on the one CLI scaffold: the bench adds its arguments and runs;
    logging, environment defaults and the one-line error exit come from ``run_guarded``. The
    arguments every bench shares are checked before its work starts (``check_bench_arguments``)."""

    def checked_run(args: argparse.Namespace) -> int | None:
        check_bench_arguments(args)
        return start_bench(run, args)

    return Command(f"python -m effeval.bench {name}", doc.splitlines()[0], add_arguments, checked_run)


def check_bench_arguments(args: argparse.Namespace) -> None:
    """What would otherwise fail minutes in, or measure nonsense: ``--threads`` < 1, an ``--out``
    that cannot be written, a NaN / infinite number, a negative count (any integer option but a
    seed)."""
    import math

    from effeval.atomic import check_output_dir
    from effeval.errors import ConfigError

    for name, value in sorted(vars(args).items()):
        flag = "--" + name.replace("_", "-")
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{flag}: {v} is not a finite number. Fix: pass a finite value")
            if isinstance(v, int) and not isinstance(v, bool) and v < 0 and "seed" not in name:
                raise ConfigError(f"{flag}: {v} is negative. Fix: pass a count >= 0")
    if getattr(args, "threads", 1) < 1:
        raise ConfigError(f"--threads: {args.threads} is not a thread count. Fix: pass --threads 1 or more")
    if getattr(args, "out", None):
        check_output_dir(args.out)


def start_bench(run: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int | None:
    """The one place a benchmark's work begins (tests replace it to show that checks come first)."""
    return run(args)


def add_threads_argument(parser: argparse.ArgumentParser, why: str) -> None:
    """``--threads`` (torch threads, default 1); ``why`` says why one thread is this bench's default."""
    parser.add_argument("--threads", type=int, default=1, help=f"torch threads (default 1: {why})")


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="output folder (default results/bench)")


def bench_dir() -> Path:
    """``$EFFEVAL_BENCH_DIR`` or ``results/bench`` under the current directory."""
    return Path(os.environ.get("EFFEVAL_BENCH_DIR", "results/bench"))


def time_call(fn: Callable[[], Any], repeats: int = 3, warmup: int = 1) -> dict[str, float]:
    """Median/min wall time of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": repeats}


def write_bench(name: str, payload: dict[str, Any], out_dir: str | os.PathLike | None = None) -> Path:
    """Write ``{bench, created, environment, ...payload}`` atomically to ``<out_dir>/<name>.json``."""
    import torch

    from effeval.results.convert import environment_block
    from effeval.results.writer import write_json_atomic

    device = "cuda" if torch.cuda.is_available() else "cpu"
    env = environment_block(device)
    env["torch_threads"] = torch.get_num_threads()
    from effeval.model_identity import name_models

    doc = {
        "bench": name,
        "created": _dt.datetime.now(tz=_dt.timezone.utc).isoformat(),
        "environment": env,
        # models named by what they are (zoo name, package, sha256), never by a cache path
        **name_models(payload),
    }
    path = Path(out_dir or bench_dir()) / f"{name}.json"
    write_json_atomic(path, doc)
    logger.info("bench %s -> %s", name, path)
    return path


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A plain aligned table on stdout (benchmarks print their ratios)."""

    from effeval.formatting import format_number as fmt

    widths = {c: max(len(c), *(len(fmt(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(fmt(r.get(c, "")).ljust(widths[c]) for c in columns))
