"""``python -m effeval.bench hetero-spec``: heterogeneous-vocabulary speculative decoding, side by side.

One zoo pair (briefly trained on the same text, so drafts are accepted), one process:

- greedy: AR, SLEM, TLI, SLRS (when its module is installed) and transformers' own assisted
  generation (``hf``) decode the same prompts; tokens/s, speedup vs AR (measured in this run),
  mean accepted length, acceptance rate, target/drafter forward calls, and whether every output
  is token-identical to AR.
- sampling: N first-token samples of TLI, SLRS, hf and plain target sampling, each compared
  with the exact processed target distribution by total-variation distance (plain sampling's
  TV is the noise floor for that N).

Writes ``results/bench/hetero-hetero-spec.json``.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import logging
import time

logger = logging.getLogger(__name__)

PROMPTS = [
    "def __init__(self, name, value=None):\n    self.name = name\n",
    "import os\nimport sys\n\n\ndef main(",
    "    for line in lines:\n        if not line.strip():\n",
    'class Error(Exception):\n    """Base class for exceptions in this module."""\n',
    "The following example shows how to",
    "    def __repr__(self):\n        return",
    "if __name__ == '__main__':\n",
    '        raise ValueError("',
]
TV_PROMPT = "    def __repr__(self):\n        return"


def _load(path, device):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path).to(device).eval()
    return model, AutoTokenizer.from_pretrained(path)


def _run_prompt_set(generate, target, t_tok, drafter, d_tok, prompts, max_new, k):
    """Greedy-decode every prompt (request i seeded with i); returns (results, wall seconds)."""
    import torch

    from effeval.methods.hetero_spec.common import SamplingConfig

    config = SamplingConfig(max_new_tokens=max_new, eos_token_ids=(t_tok.eos_token_id,))
    start = time.perf_counter()
    results = [
        generate(
            target,
            t_tok,
            drafter,
            d_tok,
            t_tok(prompt)["input_ids"],
            config,
            num_draft_tokens=k,
            generator=torch.Generator().manual_seed(i),
        )
        for i, prompt in enumerate(prompts)
    ]
    return results, time.perf_counter() - start


def _greedy_row(name, generate, target, t_tok, drafter, d_tok, prompts, max_new, k, reference):
    outputs, tokens, accepted, drafted, steps, t_calls, d_calls = [], 0, 0, 0, 0, 0, 0
    # Warm up once (first-call allocations), then time the whole prompt set.
    _run_prompt_set(generate, target, t_tok, drafter, d_tok, prompts[:1], max_new, k)
    results, wall = _run_prompt_set(generate, target, t_tok, drafter, d_tok, prompts, max_new, k)
    for res in results:
        outputs.append(res.token_ids)
        s = res.stats
        tokens += s.new_tokens
        accepted += s.accepted
        drafted += s.drafted
        steps += len(s.accepted_lengths) if s.accepted_lengths else s.target_calls
        t_calls += s.target_calls
        d_calls += s.drafter_calls
    row = {
        "algorithm": name,
        "wall_time_s": wall,
        "new_tokens": tokens,
        "tokens_per_s": tokens / wall,
        "target_calls": t_calls,
        "drafter_calls": d_calls,
        "drafted": drafted if name != "hf" else None,
        "accepted": accepted,
        "acceptance_rate": (accepted / drafted) if drafted else None,
        "mean_accepted_length": (accepted / steps if steps else None) if name != "ar" else None,
        "tokens_per_target_call": tokens / t_calls if t_calls else None,
    }
    if name == "hf":
        row["note"] = "transformers reports no counts: accepted = new tokens - target passes"
    if reference is not None:
        row["equal_to_ar"] = sum(a == b for a, b in zip(outputs, reference))
        row["prompts"] = len(prompts)
    return row, outputs


def _first_token_tv(name, generate, target, t_tok, drafter, d_tok, config, k, n, seed, exact):
    import torch
    from tqdm.auto import tqdm

    ids = t_tok(TV_PROMPT)["input_ids"]
    generator = torch.Generator().manual_seed(seed)
    counts = collections.Counter()
    start = time.perf_counter()
    for _ in tqdm(range(n), desc=f"TV samples {name}", leave=False, mininterval=5):
        res = generate(target, t_tok, drafter, d_tok, ids, config, num_draft_tokens=k, generator=generator)
        counts[res.token_ids[0] if res.token_ids else t_tok.eos_token_id] += 1  # no token: EOS came first
    empirical = torch.zeros_like(exact)
    for token, c in counts.items():
        empirical[token] = c / n
    tv = 0.5 * float((empirical - exact).abs().sum())
    return {"algorithm": name, "samples": n, "tv": tv, "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m effeval.bench hetero-spec", description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="llama-sp", help="zoo name of the target (default llama-sp)")
    parser.add_argument(
        "--drafter", default="qwen-tekken", help="zoo name of the drafter (default qwen-tekken)"
    )
    parser.add_argument(
        "--random", action="store_true", help="use random-weight zoo models (default: trained)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--num-draft-tokens", type=int, default=4)
    parser.add_argument("--tv-samples", type=int, default=2000)
    parser.add_argument("--temperature", type=float, default=0.5)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed passes per algorithm, interleaved; the fastest counts (shared machines)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: tiny models)")
    parser.add_argument("--out", default=None, help="output folder (default results/bench)")
    args = parser.parse_args(argv)

    import torch

    from effeval import zoo
    from effeval.bench.common import print_table, write_bench
    from effeval.methods.hetero_spec import get_algorithm
    from effeval.methods.hetero_spec.common import SamplingConfig, target_probs
    from effeval.methods.hetero_spec.vocab import Intersection, Vocab

    torch.set_num_threads(args.threads)
    trained = not args.random
    t_path, d_path = zoo.get(args.target, trained=trained), zoo.get(args.drafter, trained=trained)
    target, t_tok = _load(t_path, "cpu")
    drafter, d_tok = _load(d_path, "cpu")
    hf_drafter, _ = _load(d_path, "cpu")  # transformers rewrites its drafter in place: a separate copy
    names = ["ar", "slem", "tli"]
    if importlib.util.find_spec("effeval.methods.hetero_spec.slrs") is not None:
        names.append("slrs")
    names.append("hf")

    greedy, reference = [], None
    for name in names:
        logger.info("spec bench: greedy %s", name)
        try:
            row, outputs = _greedy_row(
                name,
                get_algorithm(name),
                target,
                t_tok,
                hf_drafter if name == "hf" else drafter,
                d_tok,
                PROMPTS,
                args.max_new_tokens,
                args.num_draft_tokens,
                reference,
            )
        except Exception as exc:  # an unavailable or failing algorithm is reported, not fatal
            logger.warning("spec bench: %s failed: %s", name, exc)
            greedy.append({"algorithm": name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        if name == "ar":
            reference = outputs
            row["equal_to_ar"], row["prompts"] = len(PROMPTS), len(PROMPTS)
        greedy.append(row)
    # More timed passes, interleaved across algorithms so load changes hit all of them alike.
    for _ in range(max(0, args.repeats - 1)):
        for row in greedy:
            if "tokens_per_s" not in row:
                continue
            name = row["algorithm"]
            _, wall = _run_prompt_set(
                get_algorithm(name),
                target,
                t_tok,
                hf_drafter if name == "hf" else drafter,
                d_tok,
                PROMPTS,
                args.max_new_tokens,
                args.num_draft_tokens,
            )
            if wall < row["wall_time_s"]:
                row["wall_time_s"], row["tokens_per_s"] = wall, row["new_tokens"] / wall
    for row in greedy:
        row["timed_passes"] = args.repeats
    ar_speed = greedy[0]["tokens_per_s"]
    for row in greedy:
        if "tokens_per_s" in row:
            row["speedup_vs_ar"] = row["tokens_per_s"] / ar_speed

    config = SamplingConfig(
        do_sample=True, temperature=args.temperature, max_new_tokens=2, eos_token_ids=(t_tok.eos_token_id,)
    )
    with torch.no_grad():
        exact = target_probs(target(torch.tensor([t_tok(TV_PROMPT)["input_ids"]])).logits[0, -1], config)
    sampling = []
    for name in ["ar"] + [n for n in names if n in ("tli", "slrs", "hf")]:
        logger.info("spec bench: %d first-token samples of %s", args.tv_samples, name)
        try:
            row = _first_token_tv(
                name,
                get_algorithm(name),
                target,
                t_tok,
                hf_drafter if name == "hf" else drafter,
                d_tok,
                config,
                args.num_draft_tokens,
                args.tv_samples,
                1234,
                exact,
            )
        except Exception as exc:
            logger.warning("spec bench: %s sampling failed: %s", name, exc)
            row = {"algorithm": name, "error": f"{type(exc).__name__}: {exc}"}
        if name == "ar":
            row["algorithm"] = "plain sampling (ar)"
        sampling.append(row)

    payload = {
        "pair": {
            "target": args.target,
            "drafter": args.drafter,
            "trained": trained,
            "target_vocab_size": len(Vocab.of(t_tok)),
            "drafter_vocab_size": len(Vocab.of(d_tok)),
            "shared_tokens": len(Intersection.of(t_tok, d_tok)),
        },
        "settings": {
            "prompts": len(PROMPTS),
            "max_new_tokens": args.max_new_tokens,
            "num_draft_tokens": args.num_draft_tokens,
            "tv_samples": args.tv_samples,
            "temperature": args.temperature,
            "tv_prompt": TV_PROMPT,
            "torch_threads": args.threads,
            "timing": "fastest of --repeats interleaved passes over the prompt set, after one warm-up",
        },
        "greedy": greedy,
        "first_token_tv": sampling,
    }
    path = write_bench("hetero-spec", payload, args.out)
    print_table(
        [r for r in greedy if "tokens_per_s" in r],
        [
            "algorithm",
            "tokens_per_s",
            "speedup_vs_ar",
            "mean_accepted_length",
            "acceptance_rate",
            "target_calls",
            "equal_to_ar",
            "prompts",
        ],
    )
    print()
    print_table([r for r in sampling if "tv" in r], ["algorithm", "samples", "tv"])
    print(f"\nwrote {path}")
    return 0
