"""``effeval spellm ...``: convert a causal LM to SpeLLM by self-distillation; report coverage.

effeval spellm distill --base DIR --out DIR [--k 16] [--steps 300] [--data python|FILES]
effeval spellm coverage --base DIR [--k 8,12,16,24]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from effeval.commands.scaffold import Command, add_settings
from effeval.config_fields import build
from effeval.errors import ConfigError

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from effeval.methods.spellm.distill import DistillConfig

    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("distill", help="self-distil k character heads from a causal LM (its own teacher)")
    add_settings(p, DistillConfig)  # every option, its default and help come from the dataclass
    c = sub.add_parser("coverage", help="share of a tokenizer's tokens whose string fits in k heads")
    c.add_argument("--base", required=True, help="model or tokenizer directory")
    c.add_argument("--k", default="8,12,16,20,24,32", help="comma-separated k values")


def run(args) -> int:
    if args.cmd == "coverage":
        return _coverage(args)
    from effeval.atomic import check_not_input, check_output_dir
    from effeval.methods.spellm.distill import DistillConfig, distill

    check_output_dir(args.out)  # before loading the teacher and training, not after
    check_not_input(args.out, args.base, "--out", "--base")

    from effeval.models.base import check_pretrained

    if not Path(args.base).expanduser().is_dir():  # the teacher is a local folder (load_causal_lm)
        raise ConfigError(
            f"--base: {args.base!r} is not a model directory (no folder there). Fix: pass a folder "
            "written by save_pretrained, e.g. `effeval zoo path llama-sp --trained`"
        )
    check_pretrained(args.base, "--base", "effeval spellm distill")  # before the texts and the teacher load
    cfg = build(DistillConfig, vars(args))
    from effeval.errors import cli_flags
    from effeval.zoo.corpus import texts_for

    with cli_flags():  # before the teacher loads
        cfg.validate()
    texts = texts_for(cfg.data)
    if texts[0] is None:  # files: a missing, binary or non-UTF-8 one fails here, not after the teacher loads
        from effeval.methods.spellm.distill import load_texts

        load_texts(cfg.data)
    try:
        summary = distill(cfg, *texts)
    except KeyboardInterrupt:
        from effeval.methods.spellm.distill import CHECKPOINT_DIR

        kept = Path(args.out) / CHECKPOINT_DIR / "state.pt"
        where = (
            f"its checkpoint {kept} is kept"
            if kept.is_file()
            else f"no checkpoint was saved yet in {args.out}"
        )
        raise KeyboardInterrupt(f"{where}; run the same command to continue from it") from None
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
        ks = []
    from effeval.methods.spellm.alphabet import MAX_K

    if not ks or min(ks) < 1 or max(ks) > MAX_K:
        raise ConfigError(
            f"--k: {args.k!r} is not a comma-separated list of integers in [1, {MAX_K}]. Fix: e.g. --k 8,16"
        )
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
