"""``python -m effeval.bench verify-cost``: what a forward of 1, 2, 5, 8 new tokens costs on this CPU.

Speculative decoding pays one target forward over ``k + 1`` new tokens per round instead of one
per token; its ceiling is set by ``verify(k + 1) / step(1)`` (about 1 on a GPU). Per real model
and per *path*, with a KV cache at a context of ``--context`` tokens (the first tokens of a
HumanEval prompt plus held-out prose), the median over ``--repeats`` of one forward of ``n`` new
tokens (the cache cropped back to the context before each; row counts interleaved):

- ``plain-t2`` / ``plain-t1``: fp32, ``torch.nn.Linear``, 2 or 1 torch threads (per-phase thread
  counts are these two numbers: a run may give the drafter one thread and the verify two);
- ``mkldnn-t2`` / ``mkldnn-t1``: fp32, every linear layer's weights prepacked for oneDNN
  (``effeval.methods.hetero_spec.fast_path``); logits compared with the plain path's;
- ``bf16-t2``: the model in bfloat16 -- a *different target model* (not lossless vs fp32);
- ``compile-t1``: ``torch.compile`` (inductor, dynamic shapes) of the plain model; compile time
  recorded; skipped for a model when ``--compile-models`` does not name it.

Writes ``results/bench/verify-cost.json``; ``python -m effeval.bench hetero-spec`` copies it into
its own JSON (``verify_cost``).
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import time

from effeval.bench.common import bench_command

logger = logging.getLogger(__name__)

MODELS = ["smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
VARIANTS = ["plain-t2", "plain-t1", "mkldnn-t2", "mkldnn-t1", "bf16-t2", "compile-t1"]


def context_ids(tokenizer, length: int) -> list[int]:
    """``length`` token ids of a fixed text (a HumanEval prompt, then held-out prose)."""
    from effeval import real_data

    text = real_data.humaneval_rows()[0]["prompt"] + "\n" + " ".join(real_data.prose_documents("heldout")[:3])
    ids = tokenizer(text)["input_ids"]
    if len(ids) < length:
        raise ValueError(f"context text has only {len(ids)} tokens")
    return ids[:length]


def step_costs(model, ids: list[int], rows: list[int], repeats: int, vocab_size: int | None = None) -> dict:
    """Median seconds of one forward of ``n`` new tokens after a KV-cached context ``ids``, for
    every ``n`` in ``rows`` (interleaved, one warm-up each), plus the last logits per ``n`` (to
    compare paths)."""
    import torch

    vocab_size = vocab_size or int(model.config.vocab_size)
    gen = torch.Generator().manual_seed(0)
    new = {n: torch.randint(100, vocab_size - 100, (1, n), generator=gen) for n in rows}
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), use_cache=True, logits_to_keep=1)
        cache = out.past_key_values
        base = len(ids)
        times: dict[int, list[float]] = {n: [] for n in rows}
        logits = {}
        for rep in range(repeats + 1):
            order = rows[rep % len(rows) :] + rows[: rep % len(rows)]
            for n in order:
                if cache.get_seq_length() > base:  # transformers 5: crop by a negative count
                    cache.crop(base - cache.get_seq_length())
                start = time.perf_counter()
                res = model(input_ids=new[n], past_key_values=cache, use_cache=True, logits_to_keep=n)
                elapsed = time.perf_counter() - start
                if rep == 0:
                    logits[n] = res.logits[0].float().clone()
                else:
                    times[n].append(elapsed)
    return {
        "median_s": {n: statistics.median(ts) for n, ts in times.items()},
        "min_s": {n: min(ts) for n, ts in times.items()},
        "logits": logits,
    }


def load(name: str, dtype=None):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from effeval import zoo

    path = zoo.get(name)
    import torch

    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(path)


def measure_model(name: str, variants: list[str], args) -> dict:
    import torch

    from effeval.methods.hetero_spec import fast_path

    rows = [int(r) for r in args.rows.split(",")]
    model, tok = load(name)
    ids = context_ids(tok, args.context)
    layers = int(getattr(model.config, "num_hidden_layers", 0) or 0)
    out: dict = {"model": name, "layers": layers, "context": len(ids), "rows": rows, "variants": {}}
    reference = None
    converted = None
    # plain (and compile, which wraps it) first, then the plain model is freed before the
    # converted and bf16 copies load: a 1.5B model is 7 GB in fp32
    order = {"plain": 0, "compile": 1, "mkldnn": 2, "bf16": 3}
    for variant in sorted(variants, key=lambda v: order[v.rsplit("-t", 1)[0]]):
        if model is not None and order[variant.rsplit("-t", 1)[0]] >= 2:
            model = None
            gc.collect()
        path, threads = variant.rsplit("-t", 1)
        torch.set_num_threads(int(threads))
        info: dict = {"threads": int(threads)}
        started = time.perf_counter()
        if path == "plain":
            m = model
        elif path == "mkldnn":
            if converted is None:
                converted, _ = load(name)
                fast_path.apply(converted, "mkldnn")
            m = converted
        elif path == "bf16":
            m = load(name, dtype=torch.bfloat16)[0]
            info["note"] = "bfloat16 weights: a different target model, not lossless vs fp32"
        elif path == "compile":
            if name not in args.compile_models.split(","):
                continue
            m = torch.compile(model, dynamic=True)
        else:
            raise ValueError(variant)
        res = step_costs(m, ids, rows, args.repeats)
        info["prepare_and_measure_s"] = time.perf_counter() - started
        info["forward_ms"] = {str(n): 1e3 * s for n, s in res["median_s"].items()}
        one = res["median_s"][rows[0]]
        info["ratio_to_one_row"] = {str(n): s / one for n, s in res["median_s"].items()}
        if reference is None and path == "plain":
            reference = res["logits"]
        elif reference is not None:
            diffs = {n: float((res["logits"][n] - reference[n]).abs().max()) for n in rows}
            same_argmax = all(
                bool((res["logits"][n].argmax(-1) == reference[n].argmax(-1)).all()) for n in rows
            )
            info["max_abs_logit_diff_vs_plain"] = max(diffs.values())
            info["argmax_equal_to_plain"] = same_argmax
        out["variants"][variant] = info
        logger.info("verify-cost %s %s: %s", name, variant, info["forward_ms"])
        del m
        if path == "bf16":
            gc.collect()
    del model, converted
    gc.collect()
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default=",".join(MODELS), help="zoo models (those not built are skipped)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--rows", default="1,2,5,8", help="new tokens per forward")
    parser.add_argument("--context", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--compile-models", default="smollm2-135m", help="models torch.compile is tried on (compile is slow)"
    )
    parser.add_argument("--out", default=None, help="output folder (default results/bench)")


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from effeval import zoo
    from effeval.bench.common import print_table, write_bench
    from effeval.errors import ConfigError

    variants = [v for v in args.variants.split(",") if v]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise ConfigError(f"--variants: unknown {', '.join(bad)}. Fix: use some of {', '.join(VARIANTS)}")
    if not all(r.isdigit() and int(r) >= 1 for r in args.rows.split(",")):
        raise ConfigError(f"--rows: {args.rows!r} is not a list of positive counts. Fix: e.g. --rows 1,2,5,8")
    if args.repeats < 1 or args.context < 8:
        raise ConfigError(
            "--repeats/--context: must be >= 1 / >= 8. Fix: pass e.g. --repeats 5 --context 150"
        )
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ConfigError(f"--models: unknown {', '.join(unknown)}. Fix: use some of {', '.join(MODELS)}")
    skipped = [m for m in models if not zoo.is_built(m)]
    built = [m for m in models if m not in skipped]
    results: list[dict] = []

    def payload() -> dict:
        return {
            "settings": {
                "context": args.context,
                "rows": args.rows,
                "repeats": args.repeats,
                "timing": "median of repeats of one forward of n new tokens after a KV-cached context "
                "(cache cropped back before each), row counts interleaved",
                "skipped_not_built": skipped,
            },
            "models": results,
        }

    # torch.compile last (a slow compile must not cost the other numbers); written after every model
    plain_variants = [v for v in variants if not v.startswith("compile")]
    compiled = [v for v in variants if v.startswith("compile")]
    for name in tqdm(built, desc="verify-cost"):
        results.append(measure_model(name, plain_variants, args))
        path = write_bench("verify-cost", payload(), args.out)
    for res in results:
        if compiled and res["model"] in args.compile_models.split(","):
            extra = measure_model(res["model"], ["plain-t1", *compiled], args)
            res["variants"].update({v: extra["variants"][v] for v in compiled if v in extra["variants"]})
            path = write_bench("verify-cost", payload(), args.out)
    table = []
    for res in results:
        for variant, info in res["variants"].items():
            row = {"model": res["model"], "variant": variant}
            for n, ms in info["forward_ms"].items():
                row[f"ms_{n}"] = ms
            for n, r in info["ratio_to_one_row"].items():
                row[f"x_{n}"] = r
            row["argmax_eq"] = info.get("argmax_equal_to_plain", "")
            row["max_diff"] = info.get("max_abs_logit_diff_vs_plain", "")
            table.append(row)
    rows = [r.strip() for r in args.rows.split(",")]
    columns = [
        "model",
        "variant",
        *[f"ms_{n}" for n in rows],
        *[f"x_{n}" for n in rows],
        "argmax_eq",
        "max_diff",
    ]
    print_table(table, columns)
    print(f"\nwrote {path}")
    return 0


main = bench_command("verify-cost", __doc__, add_arguments, run)
