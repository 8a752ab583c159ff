"""``effeval short-mk analyze SAMPLES.jsonl``: the pool analysis as a JSON table + PNG plot."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from effeval.commands.scaffold import Command

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="cmd", required=True)
    an = sub.add_parser("analyze", help="every strategy and every m <= k from a pool of complete chains")
    an.add_argument(
        "samples",
        metavar="SAMPLES",
        help="lm-eval samples_*.jsonl of an effeval-short-mk strategy=majority run, or a native pool",
    )
    an.add_argument("--out", default=None, help="output stem (default: next to the input, <name>.short-mk)")
    an.add_argument(
        "--normalize", default="math", help="answer normaliser: exact | math | numeric (default math)"
    )
    an.add_argument(
        "--answer",
        default=None,
        help="re-extract answers from logged chain texts: boxed | number | mc | regex:PAT",
    )
    an.add_argument("--seed", type=int, default=1234, help="seed of the tie-break choices")
    an.add_argument(
        "--k", type=int, default=None, help="chains per question the pool must have (default: the first's)"
    )


def analyze(args) -> int:
    from effeval.atomic import check_output_file
    from effeval.bench.common import print_table
    from effeval.errors import ConfigError
    from effeval.methods.short_mk.pool import analyze_pool, load_pool, observation_text, plot_pool
    from effeval.results.writer import write_json_atomic

    samples = Path(args.samples)
    if not samples.is_file():
        what = "a folder" if samples.is_dir() else "not found"
        raise ConfigError(
            f"SAMPLES: {str(samples)!r} is {what}. Fix: pass a samples_*.jsonl written with --log_samples"
        )
    if args.k is not None and args.k < 1:
        raise ConfigError(f"--k: {args.k} chains per question. Fix: pass --k 1 or more, or omit it")
    from effeval.methods.short_mk.answers import make_extractor, make_normalizer

    for flag, make, value in (
        ("--normalize", make_normalizer, args.normalize),
        ("--answer", make_extractor, args.answer),
    ):
        try:
            if value is not None:
                make(value)
        except ConfigError as exc:  # the library names its parameter; the user typed the flag
            raise ConfigError(f"{flag}: {str(exc).split(': ', 1)[-1]}") from None
    stem = Path(args.out) if args.out else samples.with_suffix("")
    json_path = Path(f"{stem}.short-mk.json") if not args.out else stem.with_suffix(".json")
    png_path = json_path.with_suffix(".png")
    for path in (json_path, png_path):  # before the analysis, not after
        check_output_file(path, "--out" if args.out else "SAMPLES (its folder)")
    try:
        questions = load_pool(samples, answer=args.answer, normalize=args.normalize)
    except ConfigError as exc:
        text = str(exc)
        if text.startswith(("--answer", "--normalize", "answer", "normalize")):
            raise
        raise ConfigError(f"SAMPLES: {text}") from None
    other_k = [q for q in questions if args.k is not None and len(q.chains) != args.k]
    if other_k:
        raise ConfigError(
            f"--k: question {other_k[0].qid!r} has {len(other_k[0].chains)} chains, not {args.k}. "
            "Fix: pass the k of the run that wrote SAMPLES, or omit --k"
        )
    table = analyze_pool(questions, normalize=args.normalize, seed=args.seed, expected_k=args.k)
    table["source"] = str(args.samples)
    write_json_atomic(json_path, table)
    plot_pool(table, png_path)
    print_table(
        table["rows"],
        [
            "name",
            "accuracy",
            "accuracy_stderr",
            "thinking_tokens",
            "time_steps",
            "thinking_tokens_ratio_to_majority",
            "time_ratio_to_majority",
        ],
    )
    print()
    print_table(table["length_rank"], ["rank", "accuracy", "accuracy_stderr", "mean_thinking_tokens"])
    print(f"\n{observation_text(table)}")
    print(f"\ntable: {json_path}\nplot:  {png_path}")
    return 0


def run(args) -> int:
    return {"analyze": analyze}[args.cmd](args)


main = Command("effeval short-mk", "short-m@k tools", add_arguments, run)


if __name__ == "__main__":
    sys.exit(main())
