"""``python -m effeval.bench real``: the real zoo tier, converted folder vs the packaged GGUF.

For each real model (SmolLM2-135M, Gemma 3 270M), side by side in one run, one thread:

- load time (wall and process CPU) of the converted plain folder (``from_pretrained(dir)``) vs loading the GGUF itself
  (``from_pretrained(dir, gguf_file=...)``, which dequantises every time); mean +- stderr over
  repeats, warm page cache (the first, cold load is recorded separately);
- the one-off conversion time (recorded by the zoo when it built the folder);
- quality: perplexity on a fixed 512-token window of public-domain prose (reasoning-gym's
  ``in_the_year_2889.txt``), the greedy completion of a factual prompt, greedy tokens/s.

Goal (issue 11): converted SmolLM2 loads in <= 3 s. Writes ``results/bench/real.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import os
import statistics
import time
from pathlib import Path

from effeval.bench.common import add_threads_argument, bench_command

logger = logging.getLogger(__name__)

PROSE_PACKAGE = "reasoning_gym"
PROSE_FILE = "data/in_the_year_2889.txt"
# The window starts at the story itself (after the Gutenberg header and the redactor's note).
PROSE_ANCHOR = "Little though they seem to think of it"
WINDOW_TOKENS = 512
# Gemma 3 270M (a base model) continues the bare "The capital of France is" with " the capital of
# the country of France."; both models name Paris after "... is the city of".
FACT_PROMPTS = {
    "smollm2-135m": "The capital of France is",
    "gemma3-270m": "The capital of France is the city of",
}


def prose_text() -> str:
    """The story text of reasoning-gym's ``in_the_year_2889.txt`` (a Project Gutenberg eBook)."""
    from effeval.errors import ConfigError

    spec = importlib.util.find_spec(PROSE_PACKAGE)  # not imported: its import builds every generator
    path = Path(next(iter(spec.submodule_search_locations))) / PROSE_FILE if spec else None
    if path is None or not path.is_file():
        raise ConfigError(
            "prose window: reasoning-gym's in_the_year_2889.txt is not installed. "
            "Fix: pip install reasoning-gym==0.1.25 (or make setup)"
        )
    text = path.read_text(encoding="utf-8")
    return text[text.index(PROSE_ANCHOR) :]


def prose_window(tokenizer, n_tokens: int = WINDOW_TOKENS):
    """The first ``n_tokens`` tokens of the story (with the tokenizer's own BOS, if it adds one)."""
    ids = tokenizer(prose_text(), return_tensors="pt").input_ids[:, :n_tokens]
    assert ids.shape[1] == n_tokens
    return ids


def perplexity(model, input_ids) -> float:
    """exp(mean next-token NLL) over the window (``n_tokens - 1`` predictions)."""
    import torch

    with torch.no_grad():
        return math.exp(model(input_ids, labels=input_ids).loss.item())


def greedy(model, tokenizer, prompt: str, max_new_tokens: int = 8) -> str:
    inputs = tokenizer(prompt, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(out[0, inputs.input_ids.shape[1] :], skip_special_tokens=True)


def _mean_stderr(xs: list[float]) -> dict:
    mean = statistics.fmean(xs)
    # one sample has no standard error: None (JSON null), never NaN, which JSON cannot hold
    stderr = statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else None
    return {"mean_s": mean, "stderr_s": stderr, "min_s": min(xs), "n": len(xs), "all_s": xs}


def _summary(loads: list[tuple[float, float]]) -> dict:
    """Wall and process-CPU seconds; on a shared machine the CPU time is the steadier figure."""
    return {**_mean_stderr([w for w, _ in loads]), "cpu": _mean_stderr([c for _, c in loads])}


def _timed_load(fn) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    model = fn()
    elapsed = (time.perf_counter() - start, time.process_time() - cpu)
    del model
    return elapsed


def bench_model(name: str, repeats: int, gguf_repeats: int, gen_tokens: int) -> dict:
    import tempfile

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from effeval import zoo
    from effeval.zoo import real

    folder = zoo.get(name)
    spec = real.REAL_MODELS[name]
    record = real.provenance(folder)

    def load_converted():
        return AutoModelForCausalLM.from_pretrained(folder)

    cold = _timed_load(load_converted)
    converted = [_timed_load(load_converted) for _ in range(repeats)]
    with tempfile.TemporaryDirectory() as work:
        gguf = real.locate_gguf(spec, Path(work))

        def load_gguf():
            return AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)

        from_gguf = [_timed_load(load_gguf) for _ in range(gguf_repeats)]
    conv, gg = _summary(converted), _summary(from_gguf)
    ratio = gg["cpu"]["mean_s"] / conv["cpu"]["mean_s"]
    # delta method: relative errors add in quadrature
    errors = (gg["cpu"]["stderr_s"], conv["cpu"]["stderr_s"])
    ratio_err = (
        None
        if None in errors
        else ratio * math.hypot(errors[0] / gg["cpu"]["mean_s"], errors[1] / conv["cpu"]["mean_s"])
    )

    model = load_converted().eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ppl = perplexity(model, prose_window(tokenizer))
    prompt = FACT_PROMPTS[name]
    answer = greedy(model, tokenizer, prompt)
    start = time.perf_counter()
    inputs = tokenizer(prompt, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=gen_tokens, min_new_tokens=gen_tokens, do_sample=False)
    gen_s = time.perf_counter() - start
    new_tokens = out.shape[1] - inputs.input_ids.shape[1]
    build_s = (folder / zoo.COMPLETE_MARKER).read_text().strip()
    return {
        "model": {
            "zoo_name": name,
            "package": f"{spec.package}=={spec.version}",
            "gguf_file": spec.gguf_file,
            "gguf_sha256": spec.gguf_sha256,
            "licence": spec.licence,
            "parameters": record["parameters"] if record else None,
        },
        "folder_bytes": sum(p.stat().st_size for p in folder.iterdir() if p.is_file()),
        "conversion_s": float(build_s.rstrip("s")),
        "load_converted_cold_s": {"wall": cold[0], "cpu": cold[1]},
        "load_converted": conv,
        "load_gguf": gg,
        "gguf_over_converted_load_cpu": {"ratio": ratio, "stderr": ratio_err},
        "machine_load_average": list(os.getloadavg()),
        "load_goal_s": 3.0 if name == "smollm2-135m" else None,
        "perplexity_prose_512": ppl,
        "prose_window": f"reasoning-gym in_the_year_2889.txt from {PROSE_ANCHOR!r}, first {WINDOW_TOKENS} tokens",
        "greedy_prompt": prompt,
        "greedy_completion": answer,
        "greedy_tokens_per_s": new_tokens / gen_s,
        "greedy_tokens": int(new_tokens),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from effeval.zoo.real import REAL_MODELS

    parser.add_argument("--models", default=",".join(REAL_MODELS), help="comma-separated real zoo names")
    parser.add_argument("--repeats", type=int, default=5, help="converted-folder loads (after a cold one)")
    parser.add_argument("--gguf-repeats", type=int, default=2, help="GGUF loads (each dequantises)")
    parser.add_argument("--gen-tokens", type=int, default=32)
    add_threads_argument(parser, "CPU time stays comparable on a shared machine")


def run(args: argparse.Namespace) -> int:
    import torch

    from effeval.bench.common import print_table, write_bench

    torch.set_num_threads(max(1, args.threads))
    from tqdm.auto import tqdm

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    results = {
        name: bench_model(name, args.repeats, args.gguf_repeats, args.gen_tokens) for name in tqdm(names)
    }
    rows = [
        {
            "model": name,
            "load_dir_wall_s": r["load_converted"]["mean_s"],
            "load_dir_cpu_s": r["load_converted"]["cpu"]["mean_s"],
            "+-": r["load_converted"]["cpu"]["stderr_s"],
            "load_gguf_cpu_s": r["load_gguf"]["cpu"]["mean_s"],
            "+- ": r["load_gguf"]["cpu"]["stderr_s"],
            "gguf/dir_cpu": r["gguf_over_converted_load_cpu"]["ratio"],
            "ppl512": r["perplexity_prose_512"],
            "tok/s": r["greedy_tokens_per_s"],
            "greedy": repr(r["greedy_completion"]),
        }
        for name, r in results.items()
    ]
    print_table(rows, list(rows[0]))
    write_bench("real", {"threads": args.threads, "models": results})
    return 0


main = bench_command("real", __doc__, add_arguments, run)
