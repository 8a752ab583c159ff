"""``python -m effeval.bench image``: what interventions and scorers cost, side by side in one run.

For each zoo pipeline (tiny SD and SDXL, 32x32, 2 steps on CPU): images/s of the stock call
``pipe(prompt=...)`` and of each intervention, which re-encodes the prompt (and the item or the
pad prompt), edits the embeddings and calls the same pipeline with ``prompt_embeds``. The ratio
intervention / stock is the overhead of doing it on stock diffusers (1.0 = free). Timed with
one torch thread on process CPU time (a shared machine's load distorts wall time; both are
written), variants round-robin, fastest call of each. Scorers:
images/s of CLIP (similarity + CLIPScore) and VQA (P(yes) per question) on the tiny zoo
evaluators. Results -> ``results/bench/image.json``.

Tiny random models make the pipeline itself cheap, so the ratios here are an upper bound on the
relative overhead: with a real UNet the same encoding work is a much smaller share.
"""

from __future__ import annotations

import argparse
import logging
import os

from effeval.bench.common import bench_command
from effeval.zoo.image_pipelines import IMAGE_SIZE

logger = logging.getLogger(__name__)

PROMPT = "a zebra and a cup on San Francisco's Golden Gate Bridge"
INTERVENTIONS = [
    "none",
    "drop:zebra",
    "drop:zebra@mask",
    "keep:Golden Gate Bridge",
    "keep:Golden Gate Bridge@mask",
    "patch:zebra",
]


def bench_pipeline(name: str, repeats: int) -> list[dict]:
    """Variants timed round-robin (one call each per round, after a warm-up round) so a load
    change on a shared machine hits all of them alike; the ratio uses each variant's fastest call."""
    import time

    from effeval import zoo
    from effeval.image.encoders import PromptEncoder, load_pipeline
    from effeval.image.generation import GenerationConfig, ImageGenerator
    from effeval.image.interventions import apply_intervention, parse_intervention

    pipe = load_pipeline(zoo.get(name))
    gen = ImageGenerator(pipe, GenerationConfig(steps=2))

    def intervened(spec):
        def one():
            encoder = PromptEncoder(pipe)  # fresh: the pad prompt is encoded every time too (worst case)
            return gen.image(apply_intervention(encoder, encoder.encode(PROMPT), spec), 0)

        return one

    variants = {"stock pipe(prompt=...)": lambda: gen.stock_image(PROMPT, 0)}
    for spec_text in INTERVENTIONS:
        spec = parse_intervention(spec_text)
        variants[spec.label] = intervened(spec)
    wall: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    for round_ in range(repeats + 1):
        for label, fn in variants.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            if round_:  # round 0 warms up
                wall[label].append(time.perf_counter() - start)
                cpu[label].append(time.process_time() - start_cpu)
    stock_cpu, stock_wall = min(cpu["stock pipe(prompt=...)"]), min(wall["stock pipe(prompt=...)"])
    return [
        {
            "pipeline": name,
            "variant": label,
            "images_per_cpu_s": 1.0 / min(cpu[label]),
            "ratio_vs_stock": stock_cpu / min(cpu[label]),
            "images_per_s": 1.0 / min(wall[label]),
            "wall_ratio_vs_stock": stock_wall / min(wall[label]),
            "min_cpu_s": min(cpu[label]),
            "min_wall_s": min(wall[label]),
        }
        for label in variants
    ]


def bench_scorers(repeats: int, n_images: int = 4) -> list[dict]:
    from PIL import Image

    from effeval.bench.common import time_call
    from effeval.image.benchmarks import load_benchmark
    from effeval.image.scorers import build_scorers

    record = load_benchmark("leakage", limit=1)[0]
    images = [Image.effect_noise((64, 64), 40 + 10 * i).convert("RGB") for i in range(n_images)]
    rows = []
    for scorer in build_scorers(["clip", "vqa"], device="cpu"):
        t = time_call(lambda s=scorer: s.score(images, record), repeats=repeats)
        rows.append(
            {
                "scorer": scorer.name,
                "images_per_s": n_images / t["median_s"],
                "median_s": t["median_s"],
                "images_per_call": n_images,
                "questions_per_image": len(record.get("questions", [])) if scorer.name == "vqa" else None,
            }
        )
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pipelines", default="sd-tiny,sdxl-tiny")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-scorers", action="store_true")


def run(args: argparse.Namespace) -> int:
    import torch

    from effeval.bench.common import print_table, write_bench

    # One thread and CPU time: on a shared machine, wall time mostly measures the neighbours.
    torch.set_num_threads(1)
    rows = []
    for name in [n for n in args.pipelines.split(",") if n]:
        rows += bench_pipeline(name, args.repeats)
    print_table(
        rows,
        ["pipeline", "variant", "images_per_cpu_s", "ratio_vs_stock", "images_per_s", "wall_ratio_vs_stock"],
    )
    scorer_rows = [] if args.no_scorers else bench_scorers(args.repeats)
    if scorer_rows:
        print()
        print_table(scorer_rows, ["scorer", "images_per_s", "images_per_call"])
    write_bench(
        "image",
        {
            "description": "images/s of the stock diffusers call vs each intervention through prompt_embeds (ratio = "
            "intervention / stock, measured side by side); scorer throughput on the tiny zoo evaluators",
            "settings": {
                "prompt": PROMPT,
                "steps": 2,
                "image_size": IMAGE_SIZE,
                "repeats": args.repeats,
                "device": "cpu",
                "timing": "1 torch thread; variants timed round-robin; ratio_vs_stock = stock / variant process CPU "
                "time (fastest call of each); wall-clock figures alongside",
                "load_average_1min": os.getloadavg()[0],
            },
            "pipelines": rows,
            "scorers": scorer_rows,
        },
    )
    return 0


main = bench_command("image", __doc__, add_arguments, run)
