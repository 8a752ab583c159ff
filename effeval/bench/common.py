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


# Bounds of every integer option of the benchmarks, by name (an option not listed: [1, DEFAULT_MAX]).
# A count below the lower bound measures nothing (`overhead --repeats 0` failed in a median of no
# timings); one above the upper bound would run for days or hold more than a machine's memory
# (tokens, chains, heads, windows, batch sizes). Seeds are any integer.
DEFAULT_MAX = 100_000
INT_BOUNDS: dict[str, tuple[int, int]] = {
    "threads": (1, 1024),
    "repeats": (1, 1000),
    "gguf_repeats": (1, 1000),
    "k": (1, 128),  # short-m@k chains per question; SpeLLM heads (methods.spellm.alphabet.MAX_K)
    "num_draft_tokens": (1, 64),
    "batch_size": (1, 1024),
    "max_new_tokens": (1, 8192),
    "max_gen_toks": (1, 8192),
    "max_think_tokens": (1, 8192),
    "answer_tokens": (1, 8192),
    "gen_tokens": (1, 8192),
    "tokens": (1, 8192),  # SpeLLM bench: positions per output-layer call ([positions x vocabulary] floats)
    "prompt": (1, 8192),
    "steps": (1, 10_000),
    "seqlen": (1, 8192),
    "eval_seqlen": (1, 8192),
    "proxy_seqlen": (1, 8192),
    "distill_steps": (0, 100_000),  # 0 skips the distillation check
    "ppl_tokens": (1, 1_000_000),
}
# Bounds of float options (None: no bound on that side); every float must be finite.
FLOAT_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "temperature": (0.0, None),
    "top_p": (0.0, 1.0),
    "time_budget_s": (0.0, None),
    "guidance": (0.0, None),
    "sparsities": (0.0, 1.0),
}


def check_bench_arguments(args: argparse.Namespace) -> None:
    """What would otherwise fail minutes in, or measure nonsense, or exhaust the machine: an
    integer option outside its bounds (``INT_BOUNDS``), a NaN / infinite or out-of-range number,
    an ``--out`` that cannot be written."""
    import math

    from effeval.atomic import check_output_dir
    from effeval.errors import ConfigError

    for name, value in sorted(vars(args).items()):
        flag = "--" + name.replace("_", "-")
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, float):
                low, high = FLOAT_BOUNDS.get(name, (None, None))
                if not math.isfinite(v):
                    raise ConfigError(f"{flag}: {v} is not a finite number. Fix: pass a finite value")
                if (low is not None and v < low) or (high is not None and v > high):
                    shown = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
                    raise ConfigError(f"{flag}: {v} is outside {shown}. Fix: pass a value in {shown}")
            if isinstance(v, int) and not isinstance(v, bool) and "seed" not in name:
                low, high = INT_BOUNDS.get(name, (1, DEFAULT_MAX))
                if not low <= v <= high:
                    raise ConfigError(
                        f"{flag}: {v} is outside [{low}, {high:,}]. Fix: pass a whole number from {low} to {high:,}"
                    )
    if getattr(args, "out", None):
        check_output_dir(args.out)


def start_bench(run: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int | None:
    """The one place a benchmark's work begins (tests replace it to show that checks come first)."""
    return run(args)


def paired_difference(a: list[float], b: list[float]) -> dict:
    """Mean of the paired differences a - b with its standard error and normal 95% CI."""
    n = len(a)
    d = [x - y for x, y in zip(a, b)]
    mean = sum(d) / n
    se = (sum((x - mean) ** 2 for x in d) / (n - 1) / n) ** 0.5 if n > 1 else None
    return {
        "mean": mean,
        "stderr": se,
        "ci95": [mean - 1.96 * se, mean + 1.96 * se] if se is not None else None,
    }


def lm_eval_command(
    model: str, model_args: str, tasks: str, limit: int, out: Path, extra: tuple[str, ...] = ()
) -> list[str]:
    """argv of one stock ``lm_eval`` CLI run over our task folder (``extra``: batch size, device,
    code opt-in, sample logging, ...), writing under ``out``."""
    import sys

    from effeval.task_data import task_configs_dir

    return [
        sys.executable, "-m", "lm_eval",
        "--model", model,
        "--model_args", model_args,
        "--tasks", tasks,
        "--include_path", str(task_configs_dir()),
        "--limit", str(limit),
        *extra,
        "--output_path", str(out),
    ]  # fmt: skip


def lm_eval_env(threads: int) -> dict[str, str]:
    """The environment of a benchmark's lm_eval subprocess: ``threads`` BLAS/OpenMP threads, offline."""
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1")


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
