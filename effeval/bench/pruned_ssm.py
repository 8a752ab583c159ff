"""``python -m effeval.bench pruned-ssm``: pruning a briefly trained zoo Mamba2, side by side.

- held-out perplexity vs sparsity (0 ... 0.9) for magnitude, WANDA and SparseGPT on ``in_proj``
  (the paper's target), with calibration windows from the zoo's training text;
- structured d_state / head-dim at 25% and 50% (taylor-first and magnitude importance);
  a ratio the stock Mamba2Config cannot express (head-dim 25% with expand=2) is evaluated on the
  masked same-shape model and marked ``shrunk: false``;
- pruning wall time per method, and dense vs structured-pruned forward throughput (ratio),
  timed in the same process on the same batch.
Writes results/bench/pruned-ssm.json and results/bench/pruned-ssm.png.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import time

logger = logging.getLogger("effeval.bench.pruned_ssm")

SPARSITIES = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
UNSTRUCTURED = ["magnitude", "wanda", "sparsegpt"]


def heldout_windows(tokenizer, seqlen: int, count: int):
    import torch

    from effeval.zoo.corpus import heldout_texts

    ids: list[int] = []
    for text in heldout_texts(4):
        ids += tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) >= seqlen * count:
            break
    count = min(count, len(ids) // seqlen)
    return torch.tensor(ids[: count * seqlen]).view(count, seqlen)


def perplexity(model, windows, batch_size: int = 8) -> float:
    import torch

    total, n = 0.0, 0
    with torch.no_grad():
        for chunk in windows.split(batch_size):
            loss = model(input_ids=chunk, labels=chunk, use_cache=False).loss
            tokens = chunk.numel() - chunk.shape[0]
            total += float(loss) * tokens
            n += tokens
    return math.exp(total / n)


def _cpu_seconds(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def _throughput(dense, pruned, batch, rounds: int = 9) -> dict:
    """Dense and pruned forwards timed alternately on the same batch, best of ``rounds`` each, in
    process CPU time (one torch thread), so other jobs on a shared machine do not skew the ratio.
    The backbone ratio leaves out the 32k-vocab LM head, which pruning the mixers does not change."""
    import torch

    out = {}
    with torch.no_grad():
        for label, backbone in (("", False), ("backbone_", True)):
            runs = [m.backbone if backbone else m for m in (dense, pruned)]
            for run in runs:
                run(input_ids=batch, use_cache=False)  # warm-up
            best = [float("inf"), float("inf")]
            for _ in range(rounds):
                for i, run in enumerate(runs):
                    best[i] = min(
                        best[i], _cpu_seconds(lambda run=run: run(input_ids=batch, use_cache=False))
                    )
            out[f"dense_{label}tokens_per_cpu_s"] = batch.numel() / best[0]
            out[f"pruned_{label}tokens_per_cpu_s"] = batch.numel() / best[1]
            out[f"{label}forward_speedup"] = best[0] / best[1]
    return out


def _wider_throughput() -> dict:
    """The zoo model (hidden 64) is dominated by per-op overhead and its 32k-vocab head, so the
    structured speed-up is also timed on a wider random Mamba2 where the mixer does the work."""
    import torch
    import transformers as tf

    from effeval.methods.pruned_ssm.api import PruneSpec, prune_model

    torch.manual_seed(0)
    cfg = tf.Mamba2Config(
        vocab_size=1024,
        hidden_size=256,
        expand=2,
        num_heads=8,
        head_dim=64,
        state_size=128,
        n_groups=1,
        num_hidden_layers=2,
        chunk_size=64,
        time_step_rank=16,
    )
    dense = tf.Mamba2ForCausalLM(cfg).eval()
    batch = torch.randint(0, 1024, (4, 256), generator=torch.Generator().manual_seed(0))
    ratios = {}
    for method in ("dstate", "headdim", "heads"):
        model = copy.deepcopy(dense)
        pruned = prune_model(model, spec=PruneSpec(method, 0.5, criterion="magnitude"), progress=False).model
        ratios[f"{method}@0.5"] = _throughput(dense, pruned, batch, rounds=5)
    return {
        "config": {
            k: getattr(cfg, k)
            for k in (
                "hidden_size",
                "expand",
                "num_heads",
                "head_dim",
                "state_size",
                "num_hidden_layers",
                "vocab_size",
            )
        },
        "batch": list(batch.shape),
        "ratios": ratios,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m effeval.bench pruned-ssm", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--nsamples", type=int, default=32, help="calibration windows (paper: 128)")
    parser.add_argument("--seqlen", type=int, default=64, help="calibration window length (paper: 128)")
    parser.add_argument("--eval-windows", type=int, default=24)
    parser.add_argument("--eval-seqlen", type=int, default=128)
    parser.add_argument("--out", default=None, help="output folder (default results/bench)")
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from effeval import zoo
    from effeval.bench.common import bench_dir, print_table, time_call, write_bench
    from effeval.errors import ConfigError
    from effeval.methods.pruned_ssm.api import PruneSpec, prune_model
    from effeval.methods.pruned_ssm.calibration import token_windows
    from effeval.zoo.corpus import corpus_texts

    torch.manual_seed(0)
    torch.set_num_threads(1)  # CPU-time measurements below stay comparable on a shared machine
    path = zoo.get("mamba2-sp", trained=True)
    tokenizer = AutoTokenizer.from_pretrained(path)
    dense = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    calib = token_windows(tokenizer, corpus_texts("mixed"), args.nsamples, args.seqlen, seed=0)
    evalset = heldout_windows(tokenizer, args.eval_seqlen, args.eval_windows)
    dense_ppl = perplexity(dense, evalset)
    logger.info("dense held-out perplexity %.2f on %d tokens", dense_ppl, evalset.numel())

    curves: dict[str, list[dict]] = {m: [] for m in UNSTRUCTURED}
    for method in UNSTRUCTURED:
        for s in SPARSITIES:
            model = copy.deepcopy(dense)
            cpu = time.process_time()
            res = prune_model(model, spec=PruneSpec(method, s), input_ids=calib, progress=False)
            cpu = time.process_time() - cpu
            ppl = dense_ppl if s == 0 else perplexity(model, evalset)
            curves[method].append(
                {
                    "sparsity": s,
                    "perplexity": ppl,
                    "global_sparsity": res.report["global_sparsity"],
                    "prune_wall_time_s": res.report["prune_wall_time_s"],
                    "prune_cpu_time_s": cpu,
                }
            )
            logger.info("%s %.1f: ppl %.2f", method, s, ppl)

    # every mixer weight (in_proj + conv1d + out_proj) at two sparsities: out_proj is the sensitive one
    all_targets = []
    for method in UNSTRUCTURED:
        for s in (0.5, 0.7):
            model = copy.deepcopy(dense)
            res = prune_model(
                model,
                spec=PruneSpec(method, s, targets="in_proj+conv1d+out_proj"),
                input_ids=calib,
                progress=False,
            )
            all_targets.append(
                {
                    "method": method,
                    "sparsity": s,
                    "perplexity": perplexity(model, evalset),
                    "global_sparsity": res.report["global_sparsity"],
                    "prune_wall_time_s": res.report["prune_wall_time_s"],
                }
            )

    structured = []
    throughput_batch = evalset[:4]
    for method in ("dstate", "headdim"):
        for s in (0.25, 0.5):
            for criterion in ("taylor-first", "magnitude"):
                model = copy.deepcopy(dense)
                shrink = True
                try:
                    res = prune_model(
                        model, spec=PruneSpec(method, s, criterion=criterion), input_ids=calib, progress=False
                    )
                except ConfigError as exc:  # not expressible by the stock config: evaluate the masked model
                    logger.info("%s %.2f: %s -> masked only", method, s, exc)
                    shrink = False
                    model = copy.deepcopy(dense)
                    res = prune_model(
                        model,
                        spec=PruneSpec(method, s, criterion=criterion, shrink=False),
                        input_ids=calib,
                        progress=False,
                    )
                row = {
                    "method": method,
                    "sparsity": s,
                    "criterion": criterion,
                    "shrunk": shrink,
                    "perplexity": perplexity(res.model, evalset),
                    "params_before": res.report["params_before"],
                    "params_after": res.report["params_after"],
                    "prune_wall_time_s": res.report["prune_wall_time_s"],
                    "config_after": res.report["config_after"],
                }
                if shrink and criterion == "magnitude":
                    row.update(_throughput(dense, res.model, throughput_batch))
                structured.append(row)
                logger.info("%s %.2f %s: ppl %.2f", method, s, criterion, row["perplexity"])

    wider = _wider_throughput()

    at50 = {m: next(r["perplexity"] for r in curves[m] if r["sparsity"] == 0.5) for m in UNSTRUCTURED}
    walls = {m: next(r["prune_wall_time_s"] for r in curves[m] if r["sparsity"] == 0.5) for m in UNSTRUCTURED}
    cpus = {m: next(r["prune_cpu_time_s"] for r in curves[m] if r["sparsity"] == 0.5) for m in UNSTRUCTURED}
    timing = {"dense_eval_2_windows_wall": time_call(lambda: perplexity(dense, evalset[:2]), repeats=1)}
    payload = {
        "model": {
            "zoo": "mamba2-sp",
            "trained": True,
            "path": str(path),
            "config": {
                k: getattr(dense.config, k)
                for k in (
                    "hidden_size",
                    "state_size",
                    "expand",
                    "num_heads",
                    "head_dim",
                    "n_groups",
                    "num_hidden_layers",
                )
            },
        },
        "calibration": {
            "source": "zoo training corpus (pydoc topics + stdlib sources)",
            "nsamples": args.nsamples,
            "seqlen": args.seqlen,
            "seed": 0,
        },
        "eval": {
            "source": "effeval.zoo.corpus.heldout_texts (stdlib modules not trained on)",
            "tokens": int(evalset.numel()),
            "windows": int(evalset.shape[0]),
            "seqlen": args.eval_seqlen,
        },
        "targets": ["in_proj"],
        "dense_perplexity": dense_ppl,
        "unstructured": curves,
        "all_mixer_targets": all_targets,
        "structured": structured,
        "throughput_wider_random_mamba2": wider,
        "summary": {
            "perplexity_at_50": at50,
            "perplexity_ratio_at_50_vs_dense": {m: v / dense_ppl for m, v in at50.items()},
            "magnitude_over_wanda_perplexity_at_50": at50["magnitude"] / at50["wanda"],
            "prune_wall_time_s_at_50": walls,
            "prune_cpu_time_s_at_50": cpus,
            "forward_speedup_cpu_time": {
                f"{r['method']}@{r['sparsity']}": r["forward_speedup"]
                for r in structured
                if "forward_speedup" in r
            },
            "wider_model_backbone_forward_speedup_cpu_time": {
                k: v["backbone_forward_speedup"] for k, v in wider["ratios"].items()
            },
            "backbone_forward_speedup_cpu_time": {
                f"{r['method']}@{r['sparsity']}": r["backbone_forward_speedup"]
                for r in structured
                if "backbone_forward_speedup" in r
            },
        },
        "timing_reference": timing,
        "notes": (
            "Mamba2Config needs an integer expand = num_heads*head_dim/hidden_size, so head-dim 25% "
            "(expand 2 -> 1.5) cannot be saved as a smaller stock checkpoint; it is evaluated masked."
        ),
    }
    out_dir = args.out or bench_dir()
    json_path = write_bench("pruned-ssm", payload, out_dir)
    _plot(payload, json_path.with_suffix(".png"))
    rows = [
        {"method": m, **{f"s={r['sparsity']:.1f}": r["perplexity"] for r in curves[m]}} for m in UNSTRUCTURED
    ]
    print(f"dense held-out perplexity: {dense_ppl:.3f}")
    print_table(rows, ["method"] + [f"s={s:.1f}" for s in SPARSITIES])
    print()
    print_table(all_targets, ["method", "sparsity", "perplexity", "prune_wall_time_s"])
    print()
    print_table(
        structured,
        [
            "method",
            "sparsity",
            "criterion",
            "shrunk",
            "perplexity",
            "params_after",
            "forward_speedup",
            "backbone_forward_speedup",
        ],
    )
    print(
        "\nwider random Mamba2, backbone forward speed-up (CPU time): "
        + ", ".join(f"{k} {v['backbone_forward_speedup']:.2f}x" for k, v in wider["ratios"].items())
    )
    print("\nprune time at 50% (CPU s, 1 thread): " + ", ".join(f"{m} {v:.2f}" for m, v in cpus.items()))
    print(
        f"\nperplexity at 50%: magnitude {at50['magnitude']:.2f}, wanda {at50['wanda']:.2f}, "
        f"sparsegpt {at50['sparsegpt']:.2f} (dense {dense_ppl:.2f}); wrote {json_path}"
    )
    return 0


def _plot(payload: dict, png_path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for method, rows in payload["unstructured"].items():
        ax1.plot([r["sparsity"] for r in rows], [r["perplexity"] for r in rows], marker="o", label=method)
    ax1.axhline(payload["dense_perplexity"], color="gray", ls=":", label="dense")
    ax1.set_yscale("log")
    ax1.set_xlabel("sparsity of in_proj")
    ax1.set_ylabel("held-out perplexity (log)")
    ax1.set_title("Unstructured pruning, zoo mamba2-sp (trained)")
    ax1.legend()
    labels, values, colors = [], [], []
    for r in payload["structured"]:
        labels.append(
            f"{r['method']} {int(r['sparsity'] * 100)}%\n{r['criterion']}{'' if r['shrunk'] else ' (mask)'}"
        )
        values.append(r["perplexity"])
        colors.append("tab:blue" if r["method"] == "dstate" else "tab:orange")
    ax2.bar(range(len(values)), values, color=colors)
    ax2.axhline(payload["dense_perplexity"], color="gray", ls=":")
    ax2.set_xticks(range(len(values)), labels, fontsize=6, rotation=40, ha="right")
    ax2.set_yscale("log")
    ax2.set_title("Structured: d_state (blue) / head-dim (orange)")
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
