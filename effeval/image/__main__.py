"""``python -m effeval.image run`` (also ``effeval image run``): generate, intervene, score, report.

    python -m effeval.image run --pipeline DIR|zoo:sd-tiny --benchmark leakage|FILE \\
        --intervention none --intervention 'patch:{leak.target}' --scorers clip,vqa \\
        --seeds 0,1 --out runs/leak

Writes under ``--out``: ``images/<index>/<intervention>__s<seed>.png``, ``prompts/<index>.json``
(one per finished prompt, written atomically before the next prompt starts), and once every
prompt is done ``per_prompt.jsonl`` (one row per prompt x intervention x seed: the record id,
the seed, the image and the scorers' keys flat), ``results.json`` (effeval/result/v1,
kind=image) and ``report.html``.

Resumable: rerunning the same command skips prompts whose ``prompts/<index>.json`` exists; a
run killed at any point (even ``kill -9``) and resumed ends with the same per-prompt rows and
metrics as an uninterrupted run, because every image depends only on (prompt, intervention,
seed) and set-level numbers are computed from the saved files at the end. Changing the settings
under an existing ``--out`` is refused (``run_config.json`` records them).

Data parallel: ``torchrun --nproc_per_node N -m effeval.image run ...`` shards prompts
round-robin over ranks (gloo on CPU, nccl on GPU); rank 0 merges after a barrier. The merged
output equals a single-process run's.
"""

from __future__ import annotations

import argparse
import logging
import sys

from effeval.image.runner import parse_seeds, run  # noqa: F401  (parse_seeds: public helper)

logger = logging.getLogger("effeval.image")


def build_parser() -> argparse.ArgumentParser:
    from effeval.commands.scaffold import ArgumentParser

    parser = ArgumentParser(
        prog="python -m effeval.image", description="Text-to-image interventions and scoring"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="generate images per prompt x intervention x seed, score them, write JSON + report"
    )
    run.add_argument(
        "--pipeline",
        required=True,
        help="diffusers pipeline folder (SD 1.x/2.x, SDXL) or zoo:NAME (e.g. zoo:sd-tiny)",
    )
    run.add_argument(
        "--benchmark",
        required=True,
        help="leakage|omission|binding|mwe or a file (JSONL, GenEval, T2I-CompBench, TIFA, DSG)",
    )
    run.add_argument(
        "--intervention",
        action="append",
        default=None,
        help="repeatable: none | drop:WORD[|WORD][@pad|@mask] | keep:... | patch:ITEM | isolate:ITEM|ITEM | drop-redundant (default: none)",
    )
    run.add_argument(
        "--scorers",
        default="clip,vqa",
        help="comma-separated: clip,vqa,quality,judge (or 'none'); module:Class for your own",
    )
    run.add_argument("--seeds", default="0", help="e.g. 0,1 or 0-3 (default 0)")
    run.add_argument("--out", required=True, help="output folder (rerun the same command to resume)")
    run.add_argument("--limit", type=int, default=None, help="first N prompts of the benchmark")
    run.add_argument(
        "--steps",
        type=int,
        default=None,
        help="inference steps (default: the zoo build's, e.g. 2 for random tiny pipelines, else 30)",
    )
    run.add_argument(
        "--guidance", type=float, default=7.5, help="classifier-free guidance scale (default 7.5)"
    )
    run.add_argument("--height", type=int, default=None)
    run.add_argument("--width", type=int, default=None)
    run.add_argument("--device", default="cpu", help="cpu or cuda[:N] (falls back to cpu without CUDA)")
    run.add_argument("--dtype", default="float32")
    run.add_argument(
        "--clip-model", default=None, help="open_clip model for clip/quality (dir, hub id or zoo:NAME)"
    )
    run.add_argument("--vqa-model", default=None, help="VQA model for vqa (dir, hub id or zoo:NAME)")
    run.add_argument(
        "--judge-model",
        default=None,
        help="shapes-world judge for judge (dir or zoo:NAME; default zoo:shapes-judge)",
    )
    run.add_argument(
        "--scorer-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="other scorer option (repeatable)",
    )
    run.add_argument(
        "--redundancy", action="store_true", help="run the redundancy analysis even without drop-redundant"
    )
    run.add_argument("--redundancy-threshold", type=float, default=0.9)
    run.add_argument(
        "--max-subset", type=int, default=2, help="largest token subset tried per expression (default 2)"
    )
    run.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples for confidence intervals"
    )
    run.add_argument("--no-report", action="store_true", help="skip report.html")
    run.add_argument(
        "--batch",
        action="store_true",
        help="generate every intervention x seed of a prompt in one pipeline call (each image keeps "
        "its own seed's noise; faster on CPU for small models, but pixels may differ from unbatched "
        "calls in the last bits, so `none` is no longer bit-identical to pipe(prompt=...))",
    )
    return parser


def check_arguments(args: argparse.Namespace) -> argparse.Namespace:
    """The plain-number options, checked before the benchmark is read or the pipeline loads."""
    import math

    from effeval.errors import config_error

    if args.bootstrap < 1:
        raise config_error("--bootstrap", f"{args.bootstrap} resamples", "pass a positive count such as 1000")
    if args.max_subset < 1:
        raise config_error("--max-subset", f"{args.max_subset} tokens", "pass 1 or more (default 2)")
    if not (math.isfinite(args.redundancy_threshold) and -1 <= args.redundancy_threshold <= 1):
        raise config_error(
            "--redundancy-threshold",
            f"{args.redundancy_threshold} is not a cosine similarity in [-1, 1]",
            "pass e.g. 0.9 (the default)",
        )
    if args.dtype not in ("float32", "float16", "bfloat16"):
        raise config_error(
            "--dtype", f"{args.dtype!r} is not a pipeline dtype", "use float32, float16 or bfloat16"
        )
    if args.pipeline.startswith("zoo:"):
        from effeval import zoo

        if args.pipeline[4:] not in zoo.entries():
            raise config_error(
                "--pipeline", f"no zoo model {args.pipeline[4:]!r}", "use a name `effeval zoo list` prints"
            )
    # scorer names and options: the run writes run_config.json before it builds the scorers
    import importlib

    from effeval.image.runner import _scorer_names, _scorer_opts
    from effeval.image.scorers import SCORERS

    _scorer_opts(args)
    for name in _scorer_names(args.scorers):
        if ":" not in name and name not in SCORERS:
            raise config_error(
                "--scorers", f"unknown scorer {name!r}", f"use names from {', '.join(SCORERS)}"
            )
        if ":" in name:
            module, _, cls = name.partition(":")
            try:
                getattr(importlib.import_module(module), cls)
            except (ImportError, AttributeError) as exc:
                raise config_error(
                    "--scorers",
                    f"{name!r} cannot be imported ({exc})",
                    "give module:Class of an importable scorer",
                ) from None
    return args


def main(argv: list[str] | None = None) -> int:
    from effeval.commands.scaffold import run_guarded

    argv = list(sys.argv[1:] if argv is None else argv)
    # "run" is the only (required) sub-command; parsing under the guard: a bad value is one line
    return run_guarded(lambda: run(check_arguments(build_parser().parse_args(argv)), argv))


if __name__ == "__main__":
    sys.exit(main())
