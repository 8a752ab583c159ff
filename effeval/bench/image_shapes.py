"""``python -m effeval.bench image-shapes``: the leakage experiment in the shapes world, for real.

1. Judge accuracy: the trained judge (zoo ``shapes-judge``) on rendered images it never saw,
   of the ``heldout`` split (colour-shape combinations absent from training) and of fresh
   ``train``-split scenes, on balanced yes/no questions (presence, colour, pattern, count).
2. Generator faithfulness: the trained pipeline (zoo ``shapes-sd``) draws captions that are
   not in its training pool (fresh train-split scenes, and held-out combinations); the judge
   answers every question the caption settles; faithfulness = share answered as the caption says.
3. The paper's experiment: ``effeval image run`` on ``shapes-leakage`` with ``none``,
   ``patch:{leak.target}``, ``drop:{leak.source}@pad``, ``drop:{leak.source}@mask`` and
   ``drop-redundant``, scored by the judge: leakage, omission and binding rates with bootstrap
   CIs and the change vs ``none``.

Everything is written to ``results/bench/image-shapes.json``; the run's HTML report goes to
``results/bench/image-shapes/report.html`` (the first ``--report-prompts`` prompts, their PNGs
next to it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from effeval.bench.common import bench_command

logger = logging.getLogger(__name__)

INTERVENTIONS = [
    "none",
    "patch:{leak.target}",
    "drop:{leak.source}@pad",
    "drop:{leak.source}@mask",
    "drop-redundant",
]


def balanced_questions(scene, rng: random.Random) -> list[tuple[dict, bool]]:
    """Yes and no questions a scene settles: presence of every shape; for each present shape its
    colour and pattern (true and a false value) and its count (true and off by one)."""
    from effeval.image.shapes import world as W

    out = []
    for shape in W.SHAPES:
        of = [o for o in scene.objects if o.shape == shape]
        spec = {"type": "presence", "shape": shape}
        out.append((spec, W.answer(scene, spec)))
        if not of:
            continue
        for prop, values in (("colour", W.COLOURS), ("pattern", W.PATTERNS)):
            true = rng.choice([getattr(o, prop) for o in of])
            false = [v for v in values if v not in {getattr(o, prop) for o in of}]
            out.append(({"type": prop, "shape": shape, "value": true}, True))
            if false:
                out.append(({"type": prop, "shape": shape, "value": rng.choice(false)}, False))
        out.append(({"type": "count", "shape": shape, "value": len(of)}, True))
        wrong = len(of) + 1 if len(of) < 3 else len(of) - 1
        out.append(({"type": "count", "shape": shape, "value": wrong}, False))
    return out


def _mean_ci(values: list[float], seed: int = 0) -> dict:
    from effeval.image.metrics import mean_ci

    return mean_ci(values, n_boot=1000, seed=seed)


def score_reads(scenes, seen, rng: random.Random, key: str) -> dict:
    """Balanced questions on each scene, answered from what the judge read in its image:
    ``key`` -> mean share answered as the scene says (per-image share = bootstrap unit, with CI),
    ``by_type`` -> that share per question type."""
    from effeval.image.shapes import world as W

    per_image, by_type = [], {}
    for scene, read in zip(scenes, seen):
        qs = balanced_questions(scene, rng)
        ok = [W.answer(read, spec) == truth for spec, truth in qs]
        per_image.append(sum(ok) / len(ok))
        for (spec, _), good in zip(qs, ok):
            by_type.setdefault(spec["type"], []).append(float(good))
    return {key: _mean_ci(per_image), "by_type": {t: sum(v) / len(v) for t, v in sorted(by_type.items())}}


def judge_accuracy(judge, n: int, seed: int) -> dict:
    """Accuracy on rendered scenes the judge never saw, per split and question type; per-image
    accuracy is the bootstrap unit."""
    from effeval.image.shapes import world as W

    out = {}
    for split in ("heldout", "train"):
        rng = random.Random(f"judge-eval/{seed}/{split}")
        scenes = [W.random_scene(rng, split=split) for _ in range(n)]
        seen = judge.read([W.render(s) for s in scenes])
        out[split] = {
            "images": n,
            **score_reads(scenes, seen, rng, "accuracy"),
            "scene_exact": sum(
                sorted(o.kind() + (o.cell,) for o in a.objects)
                == sorted(o.kind() + (o.cell,) for o in b.objects)
                for a, b in zip(scenes, seen)
            )
            / n,
        }
    return out


def faithfulness(
    pipe, judge, n: int, seed: int, steps: int, guidance: float, pool_captions: set[str]
) -> dict:
    """The generator on captions outside its training pool, judged on every question the caption settles."""
    import torch
    from tqdm.auto import tqdm

    from effeval.image.shapes import world as W

    out = {}
    for split in ("train", "heldout"):
        rng = random.Random(f"faithfulness/{seed}/{split}")
        scenes = []
        while len(scenes) < n:
            s = W.random_scene(rng, split=split)
            if W.caption(s) not in pool_captions:
                scenes.append(s)
        captions = [W.caption(s) for s in scenes]
        images = []
        for i in tqdm(range(0, n, 8), desc=f"faithfulness ({split})", unit="batch"):
            gens = [
                torch.Generator().manual_seed(seed * 100000 + i + k) for k in range(len(captions[i : i + 8]))
            ]
            with torch.no_grad():
                images += pipe(
                    prompt=captions[i : i + 8],
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                    generator=gens,
                ).images
        seen = judge.read(images)
        out[split] = {
            "captions": n,
            **score_reads(scenes, seen, rng, "faithfulness"),
            "examples": [
                {"caption": c, "judge_sees": W.caption(r) if r.objects else "(nothing)"}
                for c, r in list(zip(captions, seen))[:8]
            ],
        }
    return out


def run_experiment(pipeline: Path, limit: int, steps: int, guidance: float, out: Path) -> dict:
    from effeval.image.__main__ import main as image_main

    argv = [
        "run", "--pipeline", str(pipeline), "--benchmark", "shapes-leakage", "--limit", str(limit),
        "--scorers", "judge", "--seeds", "0", "--steps", str(steps), "--guidance", str(guidance),
        "--out", str(out), "--bootstrap", "1000",
    ]  # fmt: skip
    for spec in INTERVENTIONS:
        argv += ["--intervention", spec]
    code = image_main(argv)
    if code:
        raise RuntimeError(f"effeval image run exited {code}")
    results = json.loads((out / "results.json").read_text())
    table = {}
    for task, block in results.get("tasks", {}).items():
        table[task] = {
            k: v
            for k, v in block.items()
            if any(m in k for m in ("leakage", "omission", "binding", "vqa_accuracy"))
        }
    return {"tasks": table, "n_prompts": limit, "interventions": INTERVENTIONS}


def publish_report(run_dir: Path, dest: Path, max_prompts: int) -> Path:
    """The run's report for ``results/``: the first ``max_prompts`` prompts, their PNGs copied
    next to the page and linked (not inlined), written atomically; the old images are replaced."""
    from effeval.image.benchmarks import load_benchmark
    from effeval.image.report import write_report

    result = json.loads((run_dir / "results.json").read_text())
    rows = [json.loads(line) for line in (run_dir / "per_prompt.jsonl").read_text().splitlines() if line]
    n = result["method"]["args"]["n_prompts"]
    records = load_benchmark(result["method"]["args"]["benchmark"], limit=n)
    stage = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    for row in rows:
        if row["index"] < max_prompts:
            (stage / row["image"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run_dir / row["image"], stage / row["image"])
    write_report(stage, result, rows, records, inline=False, max_prompts=max_prompts)
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    if dest.exists():
        os.replace(dest, old)
    os.replace(stage, dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest / "report.html"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--judge-images", type=int, default=400, help="rendered images per split for judge accuracy"
    )
    parser.add_argument(
        "--captions", type=int, default=64, help="held-out captions per split for faithfulness"
    )
    parser.add_argument("--limit", type=int, default=160, help="shapes-leakage prompts in the experiment")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the zoo build's)")
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument(
        "--report-prompts",
        type=int,
        default=24,
        help="prompts shown (with their PNGs) in the committed report",
    )
    parser.add_argument(
        "--skip", default="", help="comma-separated parts to skip: judge,faithfulness,experiment"
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from effeval import zoo
    from effeval.bench.common import bench_dir, write_bench
    from effeval.image.encoders import load_pipeline
    from effeval.image.shapes.judge import ShapesJudge

    torch.set_num_threads(1)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    judge_dir = zoo.get("shapes-judge")
    need_sd = not {"faithfulness", "experiment"} <= skip
    sd_dir = zoo.get("shapes-sd") if need_sd else None
    build = (
        json.loads((sd_dir / "effeval_zoo.json").read_text())
        if sd_dir
        else {"steps": 20, "guidance_scale": 4.0}
    )
    judge_build = json.loads((judge_dir / "effeval_zoo.json").read_text())
    clip_build = json.loads((zoo.get("shapes-clip") / "effeval_zoo.json").read_text())
    steps = args.steps or build["steps"]
    guidance = args.guidance if args.guidance is not None else build["guidance_scale"]
    judge = ShapesJudge(judge_dir)
    payload: dict = {
        "description": "shapes world: judge accuracy on unseen rendered images, generator faithfulness on "
        "captions outside its training pool, and the leakage experiment (effeval image run, judge scorer)",
        "models": {"judge": judge_build, "clip": clip_build, "generator": build},
        "settings": {
            "steps": steps,
            "guidance": guidance,
            "torch_threads": 1,
            "load_average_1min": os.getloadavg()[0],
        },
    }
    start, wall = time.process_time(), time.perf_counter()
    if "judge" not in skip:
        payload["judge_accuracy"] = judge_accuracy(judge, args.judge_images, seed=1)
        logger.info(
            "judge accuracy: %s", {k: v["accuracy"]["value"] for k, v in payload["judge_accuracy"].items()}
        )
    if "faithfulness" not in skip:
        pipe = load_pipeline(sd_dir)
        from effeval.zoo.shapes import POOL, SEED, _Pool

        pool = set(_Pool.captions_only(POOL, SEED + 10))
        payload["generator_faithfulness"] = faithfulness(pipe, judge, args.captions, 2, steps, guidance, pool)
    if "experiment" not in skip:
        work = Path(tempfile.mkdtemp(prefix="effeval-shapes-"))
        try:
            payload["experiment"] = run_experiment(sd_dir, args.limit, steps, guidance, work / "run")
            dest = bench_dir() / "image-shapes"
            publish_report(work / "run", dest, args.report_prompts)
            payload["experiment"]["report"] = str(dest / "report.html")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    payload["cpu_s"] = round(time.process_time() - start, 1)
    payload["wall_s"] = round(time.perf_counter() - wall, 1)
    path = write_bench("image-shapes", payload)
    logger.info("wrote %s", path)
    print(
        json.dumps({k: payload.get(k) for k in ("judge_accuracy", "generator_faithfulness")}, indent=1)[:4000]
    )
    if "experiment" in payload:
        print(json.dumps(payload["experiment"]["tasks"], indent=1)[:6000])
    return 0


main = bench_command("image-shapes", __doc__, add_arguments, run)
