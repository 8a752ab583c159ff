"""``python -m effeval.bench overhead``: what the effeval wrapper layer costs over lm-eval's ``hf``.

Same zoo model (``llama-sp``), same requests (the smoke tasks' multiple-choice continuations for
``loglikelihood``, their code/prose prompts for greedy ``generate_until``), measured side by side
in one run with the order alternated each repeat. Wrappers measured in pass-through mode:

- ``effeval-hetero-spec algorithm=ar`` and ``effeval-pruned-ssm sparsity=0`` when they can be
  built on the model;
- otherwise (and always, as the floor of every wrapper) the wrapper base itself: an HFLM
  subclass with ``EffevalWrapperMixin`` + ``track_requests`` that counts generated tokens like
  the real wrappers do.

Ratio = wrapper throughput / hf throughput, from the median process CPU time of the same requests
with one torch thread (steady on a shared machine; the best-of-repeats wall-time ratio is recorded
too). Goal: >= 0.95. ``outputs_identical_to_hf`` says whether the wrapper returned exactly what
hf returned.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

from effeval.bench.common import add_out_argument, add_threads_argument, bench_command

logger = logging.getLogger(__name__)

# sparsity=0 magnitude pruning needs no calibration; the zoo model is a Llama, so target its attention.
WRAPPERS = [
    ("effeval-hetero-spec", {"algorithm": "ar"}),
    ("effeval-pruned-ssm", {"method": "magnitude", "sparsity": 0, "targets": "q_proj+v_proj"}),
]


def _smoke_rows(name: str) -> list[dict]:
    from effeval.task_data import task_configs_dir

    path = Path(task_configs_dir()) / "data" / "smoke" / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def build_requests(n_loglikelihood: int, n_generate: int, max_gen_toks: int):
    """lm-eval ``Instance`` lists: (loglikelihood, generate_until)."""
    from lm_eval.api.instance import Instance

    rows = _smoke_rows("mc.jsonl")
    ll = []
    # every request distinct (a numbered question), so no harness-level reuse of identical requests
    while len(ll) < n_loglikelihood:
        row = rows[(len(ll) // 4) % len(rows)]
        context = f"Question {len(ll) // 4 + 1}: {row['question']}\nAnswer:"
        for choice in row["choices"][: n_loglikelihood - len(ll)]:
            ll.append(Instance("loglikelihood", row, (context, f" {choice}"), len(ll)))
    gen_rows = _smoke_rows("gen.jsonl")
    gen = [
        Instance(
            "generate_until",
            row,
            (row["prompt"], {"until": ["\n\n"], "max_gen_toks": max_gen_toks, "do_sample": False}),
            i,
        )
        for i, row in enumerate((gen_rows * (n_generate // len(gen_rows) + 1))[:n_generate])
    ]
    return ll, gen


def passthrough_class():
    """The wrapper base around HFLM, doing nothing but what every effeval wrapper does."""
    from lm_eval.models.huggingface import HFLM

    from effeval.models.base import EffevalWrapperMixin, track_requests

    class PassThroughLM(EffevalWrapperMixin, HFLM):
        MODEL_NAME = "effeval-passthrough"
        METHOD = "none"

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self._effeval_init({})

        @track_requests("loglikelihood")
        def loglikelihood(self, requests, disable_tqdm: bool = False):
            return super().loglikelihood(requests, disable_tqdm=disable_tqdm)

        @track_requests("generate_until")
        def generate_until(self, requests, disable_tqdm: bool = False):
            out = super().generate_until(requests, disable_tqdm=disable_tqdm)
            self.stats.generated_tokens += sum(len(self.tok_encode(text)) for text in out)
            return out

    return PassThroughLM


def make_models(pretrained: str, batch_size: int) -> tuple[dict[str, Any], dict[str, str]]:
    """``{label: lm}`` with ``hf`` first, and why any requested wrapper was replaced."""
    from lm_eval.api.registry import get_model
    from lm_eval.models.huggingface import HFLM

    from effeval import zoo
    from effeval.errors import ConfigError

    common = {"pretrained": pretrained, "dtype": "float32", "device": "cpu", "batch_size": batch_size}
    models: dict[str, Any] = {"hf": HFLM(**common)}
    notes: dict[str, str] = {}
    for name, args in WRAPPERS:
        label = f"{name} {' '.join(f'{k}={v}' for k, v in args.items())}"
        try:
            try:
                models[label] = get_model(name)(**common, **args)
            except ConfigError as exc:
                if "drafter" not in str(exc):
                    raise
                # algorithm=ar never calls the drafter, but the wrapper may insist on one
                drafter = str(zoo.get("qwen-tekken"))
                models[label] = get_model(name)(**common, **args, drafter=drafter)
        except Exception as exc:  # a stub, or a wrapper that cannot run this model: measure the base instead
            notes[label] = f"{exc.__class__.__name__}: {str(exc)[:200]}"
            logger.warning(
                "overhead: %s unusable here (%s); measuring the wrapper base instead", label, notes[label]
            )
    models["wrapper base (pass-through)"] = passthrough_class()(**common)
    return models, notes


def measure(models: dict[str, Any], requests: dict[str, list], repeats: int) -> dict:
    """Alternate the models' order each repeat; per request type: wall and CPU times, outputs,
    throughput ratios vs hf. With one torch thread the process CPU time is the work done, which
    other jobs on a shared machine barely disturb; wall time is recorded beside it."""
    from tqdm import tqdm

    labels = list(models)
    wall = {kind: {label: [] for label in labels} for kind in requests}
    cpu = {kind: {label: [] for label in labels} for kind in requests}
    outputs: dict[str, dict[str, Any]] = {kind: {} for kind in requests}
    for kind, reqs in requests.items():
        for label in labels:  # warm-up: first-call allocations and lazy inits are not the wrapper's cost
            outputs[kind][label] = getattr(models[label], kind)(
                reqs[: max(1, len(reqs) // 8)], disable_tqdm=True
            )
        for rep in tqdm(range(repeats), desc=f"overhead {kind}"):
            for label in labels if rep % 2 == 0 else labels[::-1]:
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                outputs[kind][label] = getattr(models[label], kind)(reqs, disable_tqdm=True)
                cpu[kind][label].append(time.process_time() - start_cpu)
                wall[kind][label].append(time.perf_counter() - start_wall)
    out = {}
    for kind, reqs in requests.items():
        rows = {}
        for label in labels:
            c, w = cpu[kind][label], wall[kind][label]
            rows[label] = {
                "requests": len(reqs),
                "cpu_s": c,
                "wall_s": w,
                "requests_per_cpu_s": len(reqs) / statistics.median(c),
                "requests_per_wall_s": len(reqs) / min(w),
                # ratio of medians of CPU time: the headline number
                "throughput_ratio_vs_hf": statistics.median(cpu[kind]["hf"]) / statistics.median(c),
                "best_wall_throughput_ratio_vs_hf": min(wall[kind]["hf"]) / min(w),
                "outputs_identical_to_hf": outputs[kind][label] == outputs[kind]["hf"],
            }
        out[kind] = rows
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--loglikelihood", type=int, default=1200, help="loglikelihood requests (default 1200)"
    )
    parser.add_argument("--generate", type=int, default=60, help="generate_until requests (default 60)")
    parser.add_argument("--max-gen-toks", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    add_threads_argument(parser, "steadier timings on a shared machine")
    add_out_argument(parser)


def run(args: argparse.Namespace) -> int:
    import torch

    from effeval import zoo
    from effeval.bench.common import print_table, write_bench

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    pretrained = str(zoo.get("llama-sp"))
    models, notes = make_models(pretrained, args.batch_size)
    ll, gen = build_requests(args.loglikelihood, args.generate, args.max_gen_toks)
    results = measure(models, {"loglikelihood": ll, "generate_until": gen}, args.repeats)
    rows = [
        {
            "request type": kind,
            "model": label,
            "req/cpu-s": r["requests_per_cpu_s"],
            "ratio vs hf (cpu)": r["throughput_ratio_vs_hf"],
            "ratio vs hf (best wall)": r["best_wall_throughput_ratio_vs_hf"],
            "same outputs": r["outputs_identical_to_hf"],
        }
        for kind, per in results.items()
        for label, r in per.items()
    ]
    print_table(
        rows,
        [
            "request type",
            "model",
            "req/cpu-s",
            "ratio vs hf (cpu)",
            "ratio vs hf (best wall)",
            "same outputs",
        ],
    )
    worst = min(
        r["throughput_ratio_vs_hf"] for per in results.values() for label, r in per.items() if label != "hf"
    )
    payload = {
        "model": "zoo:llama-sp",
        "pretrained": pretrained,
        "settings": {
            "loglikelihood_requests": len(ll),
            "generate_requests": len(gen),
            "max_gen_toks": args.max_gen_toks,
            "repeats": args.repeats,
            "batch_size": args.batch_size,
            "device": "cpu",
            "dtype": "float32",
        },
        "ratio_definition": "hf median CPU seconds / wrapper median CPU seconds for the same requests (one torch "
        "thread); best-of-repeats wall-time ratio also given",
        "goal": 0.95,
        "worst_ratio": worst,
        "meets_goal": worst >= 0.95,
        "wrappers_replaced_by_base": notes,
        "results": results,
    }
    write_bench("overhead", payload, args.out)
    return 0


main = bench_command("overhead", __doc__, add_arguments, run)
