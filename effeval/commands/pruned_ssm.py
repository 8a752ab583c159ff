"""Prune a Mamba / Mamba2 or Llama-family checkpoint and save one that stock from_pretrained loads.

``effeval pruned-ssm --model DIR --method M --sparsity S --out DIR`` also writes
``effeval_pruning.json`` (per-module sparsity, parameter counts, wall time) next to the weights."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from effeval.commands.scaffold import Command, add_settings
from effeval.config_fields import build
from effeval.errors import ConfigError

logger = logging.getLogger("effeval.prune")


def _task_loader(name: str) -> list[str]:
    # lm-eval task documents come through the adapter module: this package never imports lm_eval
    from effeval.models.pruned_ssm import task_documents

    return task_documents(name)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from effeval.methods.pruned_ssm.api import PruneSpec

    p.add_argument(
        "--model",
        required=True,
        help="directory of a saved Mamba / Mamba2 or decoder-only transformer (e.g. Llama, SmolLM2)",
    )
    p.add_argument("--out", required=True, help="output directory for the pruned checkpoint")
    p.add_argument(
        "--calibration", default=None, help="text file, dataset:NAME[:CONFIG[:SPLIT[:COLUMN]]] or task:NAME"
    )
    add_settings(p, PruneSpec)  # the pruning options, their defaults and help come from PruneSpec
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", help="float32, bfloat16 or float16")


def run(args) -> int:
    from effeval.errors import cli_flags
    from effeval.methods.pruned_ssm.api import PruneSpec, prune_model, save_pruned
    from effeval.models.base import check_pretrained, resolve_device

    with cli_flags():
        spec = build(PruneSpec, vars(args)).validated()
    from effeval.atomic import check_not_input, check_output_dir

    check_output_dir(args.out)  # before loading and pruning, not after
    check_not_input(args.out, args.model, "--out", "--model")
    if args.calibration and not args.calibration.startswith(("dataset:", "task:")):
        from effeval.methods.pruned_ssm.calibration import load_texts

        with cli_flags():  # a missing, binary or non-UTF-8 file fails here, not after the model loads
            load_texts(args.calibration)
    path = check_pretrained(args.model, "--model", "effeval pruned-ssm")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if args.dtype not in dtypes:
        raise ConfigError(f"--dtype: unknown {args.dtype!r}. Fix: use one of {', '.join(dtypes)}")
    from effeval.errors import loading

    with loading("--model", path):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtypes[args.dtype]).to(
            resolve_device(args.device)
        )
        tokenizer = AutoTokenizer.from_pretrained(path)
    result = prune_model(model, tokenizer, spec, calibration=args.calibration, task_loader=_task_loader)
    save_pruned(result.model, tokenizer, args.out, result.report)
    rep = result.report
    from effeval.bench.common import print_table

    rows = [{"module": k, "sparsity": v} for k, v in rep.get("module_sparsity", {}).items()]
    if rows:
        print_table(rows, ["module", "sparsity"])
    summary = {
        k: rep[k]
        for k in (
            "method",
            "global_sparsity",
            "params_before",
            "params_after",
            "nonzero_params",
            "prune_wall_time_s",
            "calibration_tokens",
            "config_after",
        )
        if k in rep
    }
    print(json.dumps(summary, indent=2))
    print(f"saved pruned model to {args.out}")
    return 0


main = Command("effeval pruned-ssm", __doc__.splitlines()[0], add_arguments, run)

if __name__ == "__main__":
    sys.exit(main())
