"""``effeval results ...``: convert lm-eval output, validate effeval JSON (more verbs join here)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from effeval.errors import ConfigError

logger = logging.getLogger(__name__)


def add_parser(sub) -> None:
    res = sub.add_parser("results", help="effeval result JSON: convert, validate")
    rsub = res.add_subparsers(dest="results_cmd", required=True)
    conv = rsub.add_parser("convert", help="lm-eval results (folder or results_*.json) -> effeval JSON")
    conv.add_argument("source", help="lm-eval --output_path folder or one results_*.json")
    conv.add_argument("--out", required=True, help="output folder (one <run_id>.json per results file)")
    val = rsub.add_parser("validate", help="check effeval JSON files against effeval/result/v1")
    val.add_argument("paths", nargs="+", help="files or folders (folders: every *.json inside)")


def _json_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(x for x in p.rglob("*.json") if not x.name.startswith("."))
            if not found:
                raise ConfigError(f"{p}: folder has no .json files. Fix: pass effeval result files or their folder")
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
    for path in find_results_files(source):
        result = convert_lm_eval(path)
        safe = result["run_id"].replace("/", "_")
        written.append(write_result(Path(out) / f"{safe}.json", result))
    return written


def validate(paths: list[str]) -> int:
    from effeval.results.schema import schema_errors

    bad = 0
    for path in _json_files(paths):
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            print(f"INVALID {path}: not JSON ({exc})")
            bad += 1
            continue
        errors = schema_errors(obj)
        if errors:
            bad += 1
            print(f"INVALID {path}: " + "; ".join(errors[:5]))
        else:
            print(f"ok      {path}")
    return 1 if bad else 0


def run(args) -> int:
    if args.results_cmd == "convert":
        for path in convert(args.source, args.out):
            print(path)
        return 0
    if args.results_cmd == "validate":
        return validate(args.paths)
    raise ConfigError(f"unknown results command {args.results_cmd!r}")
