"""``effeval spellm ...``: convert a causal LM to SpeLLM by self-distillation; report coverage.

effeval spellm distill --base DIR --out DIR [--k 16] [--steps 300] [--data python|FILES]
effeval spellm coverage --base DIR [--k 8,12,16,24]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from effeval.commands.scaffold import Command
from effeval.errors import ConfigError

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from effeval.methods.spellm.distill import DistillConfig

    d = DistillConfig(base="", out="")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("distill", help="self-distil k character heads from a causal LM (its own teacher)")
    p.add_argument("--base", required=True, help="base causal-LM directory (the teacher)")
    p.add_argument("--out", required=True, help="SpeLLM directory to write (also holds checkpoints)")
    p.add_argument(
        "--k", type=int, default=d.k, help=f"character heads = longest string per step (default {d.k})"
    )
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimiser steps (default {d.steps})")
    p.add_argument(
        "--data",
        default=d.data,
        help="python | python-prose | python-code | real-prose (pydoc topics + Verne's 'In the Year 2889', "
        "its last 20%% held out) | comma-separated .txt/.jsonl files or folders (default: Python's own text)",
    )
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="sequences per step")
    p.add_argument("--seqlen", type=int, default=d.seqlen, help="tokens per sequence")
    p.add_argument("--lr", type=float, default=d.lr, help="heads learning rate")
    p.add_argument(
        "--tune",
        choices=("heads", "lora", "full"),
        default=d.tune,
        help="heads: backbone frozen (default); lora: also train LoRA adapters on a copy of the backbone "
        "(PEFT, merged on save); full: also tune a copy of the whole backbone",
    )
    p.add_argument(
        "--body-lr",
        type=float,
        default=d.body_lr,
        help="backbone (or LoRA) learning rate with --tune lora|full",
    )
    p.add_argument("--lora-rank", type=int, default=d.lora_rank, help=f"LoRA rank (default {d.lora_rank})")
    p.add_argument(
        "--lora-alpha", type=float, default=d.lora_alpha, help=f"LoRA alpha (default {d.lora_alpha:g})"
    )
    p.add_argument(
        "--pool",
        type=int,
        default=d.pool,
        help="frozen backbone: positions whose teacher targets are computed once (0: fresh every step)",
    )
    p.add_argument(
        "--target-temperature",
        type=float,
        default=d.target_temperature,
        help="teacher temperature for the head targets: 0 = its argmax token (default: the paper's hard "
        "labels; highest top-1 agreement), 1 = its whole distribution (KL-optimal product of marginals, "
        "low agreement), values between sharpen it",
    )
    p.add_argument(
        "--scoring", choices=("padded", "terminated"), default=d.scoring, help="string scoring mode"
    )
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--eval-positions", type=int, default=d.eval_positions)
    p.add_argument("--save-every", type=int, default=d.save_every, help="checkpoint interval (steps)")
    p.add_argument("--max-blocks", type=int, default=d.max_blocks, help="training sequences kept from --data")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--no-resume", action="store_true", help="ignore a checkpoint in --out and start over")
    p.add_argument(
        "--stop-after",
        type=int,
        default=None,
        help="stop with a checkpoint after this many steps (time-boxing); the same command resumes",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    c = sub.add_parser("coverage", help="share of a tokenizer's tokens whose string fits in k heads")
    c.add_argument("--base", required=True, help="model or tokenizer directory")
    c.add_argument("--k", default="8,12,16,20,24,32", help="comma-separated k values")


def run(args) -> int:
    if args.cmd == "coverage":
        return _coverage(args)
    from effeval.atomic import check_output_dir
    from effeval.methods.spellm.distill import DistillConfig, distill

    check_output_dir(args.out)  # before loading the teacher and training, not after

    cfg = DistillConfig(
        base=args.base,
        out=args.out,
        k=args.k,
        steps=args.steps,
        batch_size=args.batch_size,
        seqlen=args.seqlen,
        lr=args.lr,
        tune=args.tune,
        body_lr=args.body_lr,
        lora_rank=args.lora_rank,
        lora_alpha=args.lora_alpha,
        data=args.data,
        eval_every=args.eval_every,
        eval_positions=args.eval_positions,
        save_every=args.save_every,
        seed=args.seed,
        scoring=args.scoring,
        resume=not args.no_resume,
        max_blocks=args.max_blocks,
        pool=args.pool,
        progress=not args.no_progress,
        stop_after=args.stop_after,
        target_temperature=args.target_temperature,
    )
    from effeval.zoo.corpus import texts_for

    summary = distill(cfg, *texts_for(cfg.data))
    if summary.get("stopped_early"):
        print(f"stopped after step {summary['steps_done']}; run the same command again to resume")
        return 0
    first, last = summary["initial"], summary["final"]
    print(f"SpeLLM written to {args.out}")
    print(f"coverage of the input vocabulary at k={cfg.k}: {summary['coverage']['coverage']:.4%}")
    print(
        f"top-1 agreement with the teacher: {first['top1_agreement']:.3f} -> {last['top1_agreement']:.3f} "
        f"(majority-token baseline {last['majority_baseline']:.3f})"
    )
    print(
        f"heads KL: {first['heads_kl']:.3f} -> {last['heads_kl']:.3f}; vocab KL: {first['vocab_kl']:.3f} -> "
        f"{last['vocab_kl']:.3f}"
    )
    return 0


def _coverage(args) -> int:
    from transformers import AutoTokenizer

    from effeval.methods.spellm.alphabet import CharCodec

    try:
        ks = [int(x) for x in str(args.k).split(",") if x.strip()]
    except ValueError:
        raise ConfigError(
            f"--k: {args.k!r} is not a comma-separated list of integers. Fix: e.g. --k 8,16"
        ) from None
    from effeval.models.base import check_pretrained

    base = check_pretrained(
        args.base,
        "--base",
        "effeval spellm coverage",
        model_files=("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "tekken.json"),
    )
    from effeval.errors import loading

    with loading("--base", base, "tokenizer"):
        tok = AutoTokenizer.from_pretrained(base)
    rows = []
    for k in ks:
        codec = CharCodec(tok, k, argument="--base tokenizer")
        rows.append({**codec.coverage(), "characters_vs_bytes": codec.characters_vs_bytes()})
    print(json.dumps(rows, indent=2))
    return 0


main = Command("effeval spellm", "SpeLLM: character-level multi-head output", add_arguments, run)

if __name__ == "__main__":
    sys.exit(main())
