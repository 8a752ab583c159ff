"""``effeval results ...``: convert lm-eval output, validate effeval JSON, compare runs, export a run,
build the static leaderboard."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from effeval.errors import ConfigError

logger = logging.getLogger(__name__)


def add_parser(sub) -> None:
    res = sub.add_parser("results", help="effeval result JSON: convert, validate, compare, export")
    rsub = res.add_subparsers(dest="results_cmd", required=True)
    conv = rsub.add_parser("convert", help="lm-eval results (folder or results_*.json) -> effeval JSON")
    conv.add_argument("source", metavar="SOURCE", help="lm-eval --output_path folder or one results_*.json")
    conv.add_argument("--out", required=True, help="output folder (one <run_id>.json per results file)")
    val = rsub.add_parser("validate", help="check effeval JSON files against effeval/result/v1")
    val.add_argument("paths", nargs="+", help="files or folders (folders: every *.json inside)")
    cmp = rsub.add_parser(
        "compare", help="the same tasks under two or more runs: deltas, CIs, efficiency ratios"
    )
    cmp.add_argument(
        "runs",
        nargs="+",
        help="effeval JSON files, lm-eval results_*.json or --output_path folders; the first is the baseline",
    )
    cmp.add_argument("--out", default=None, help="write the comparison JSON here")
    cmp.add_argument(
        "--tasks", default=None, help="comma-separated tasks to compare (default: all; runs must agree)"
    )
    cmp.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples for the CIs (default 1000)"
    )
    cmp.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    cmp.add_argument("--confidence", type=float, default=0.95, help="CI level (default 0.95)")
    exp = rsub.add_parser(
        "export",
        help="one run in another tool's format (eee, hf-leaderboard, hub, hub-eval-results, model-index)",
    )
    exp.add_argument("result", help="effeval JSON, lm-eval results_*.json or --output_path folder")
    exp.add_argument(
        "--format",
        required=True,
        dest="fmt",
        help="eee | hf-leaderboard | hub | hub-eval-results | model-index",
    )
    exp.add_argument("--out", required=True, help="output folder")
    exp.add_argument(
        "--push",
        action="store_true",
        help="hub: upload the folder as a dataset repo; hub-eval-results: open a pull request on the model repo",
    )
    exp.add_argument(
        "--repo",
        default=None,
        help="hub: <org>/<dataset> to push to; hub-eval-results: <org>/<model> the scores belong to "
        "(default: the run's model id)",
    )
    exp.add_argument(
        "--benchmark",
        action="append",
        default=None,
        metavar="TASK=ORG/DATASET[:TASK_ID]",
        help="hub-eval-results: the Hub benchmark dataset of a task effeval does not map (repeatable)",
    )
    exp.add_argument(
        "--tasks", default=None, help="hub-eval-results: comma-separated tasks to export (default: all)"
    )
    lb = rsub.add_parser(
        "leaderboard", help="static leaderboard site: RESULTS_DIR -> SITE/index.html + plots"
    )
    lb.add_argument("results_dir", help="folder of effeval JSON (searched recursively)")
    lb.add_argument("--out", required=True, help="site folder (index.html + plots/)")
    lb.add_argument("--title", default="effeval leaderboard")


def _json_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(x for x in p.rglob("*.json") if not x.name.startswith("."))
            if not found:
                raise ConfigError(
                    f"{p}: folder has no .json files. Fix: pass effeval result files or their folder"
                )
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise ConfigError(f"{p}: no such file or folder. Fix: pass an existing path")
    return files


def convert(source: str, out: str) -> list[Path]:
    from effeval.results.convert import convert_lm_eval, find_results_files
    from effeval.results.writer import write_result

    written = []
    try:
        results = [convert_lm_eval(path) for path in find_results_files(source)]
    except ConfigError as exc:  # name the argument the user gave
        raise ConfigError(f"SOURCE: {exc}") from None
    for result in results:
        safe = result["run_id"].replace("/", "_")
        written.append(write_result(Path(out) / f"{safe}.json", result))
    return written


def validate(paths: list[str]) -> int:
    """Files named on the command line are checked as results; in a folder, JSON that does not
    declare the result schema (run configs, lm-eval output, bench JSON) is listed as skipped."""
    from effeval.results.schema import SCHEMA_ID, schema_errors

    bad = 0
    named = {Path(p) for p in paths if Path(p).is_file()}
    for path in _json_files(paths):
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            print(f"INVALID {path}: not JSON ({exc})")
            bad += 1
            continue
        if path not in named and not (isinstance(obj, dict) and obj.get("schema") == SCHEMA_ID):
            print(f'skip    {path}: not an effeval result (no "schema": "{SCHEMA_ID}")')
            continue
        errors = schema_errors(obj)
        if errors:
            bad += 1
            print(f"INVALID {path}: " + "; ".join(errors[:5]))
        else:
            print(f"ok      {path}")
    return 1 if bad else 0


def run(args) -> int:
    from effeval.atomic import check_output_dir, check_output_file

    # output paths are checked before any work: a wrong --out must not cost a finished run
    if args.results_cmd in ("convert", "export", "leaderboard"):
        check_output_dir(args.out)
    elif args.results_cmd == "compare" and args.out:
        check_output_file(args.out)
    if args.results_cmd == "export" and args.push and args.fmt == "hub" and not args.repo:
        # not after the export is written
        raise ConfigError("--push: no --repo given. Fix: pass --repo <org>/<dataset name>")
    if args.results_cmd == "convert":
        for path in convert(args.source, args.out):
            print(path)
        return 0
    if args.results_cmd == "validate":
        return validate(args.paths)
    if args.results_cmd == "compare":
        from effeval.results.compare import compare

        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
        compare(
            args.runs,
            out=args.out,
            tasks=tasks,
            iters=args.bootstrap,
            seed=args.seed,
            confidence=args.confidence,
        )
        return 0
    if args.results_cmd == "export":
        from effeval.results.export import export
        from effeval.results.hub_eval_results import parse_tasks_arg

        written = export(
            args.result,
            args.fmt,
            args.out,
            push=args.push,
            repo=args.repo,
            benchmarks=args.benchmark,
            tasks=parse_tasks_arg(args.tasks),
        )
        for path in written:
            print(path)
        return 0
    if args.results_cmd == "leaderboard":
        from effeval.results.leaderboard import build_site

        print(build_site(args.results_dir, args.out, title=args.title).resolve())
        return 0
    raise ConfigError(f"unknown results command {args.results_cmd!r}")
