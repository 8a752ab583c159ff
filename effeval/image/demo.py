"""Demo step: a leakage run with its HTML report (under a minute on CPU).

On the shapes world's trained generator and judge when they are built (``effeval zoo build
--shapes``, ~16 CPU-minutes once: too long for the demo to build itself), whose images and scores
mean something; otherwise on the tiny random SD pipeline, with a notice saying so."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

DEMO_INTERVENTIONS = ["none", "patch:{leak.target}", "drop:{leak.source}@mask"]
# the shapes world's records name each item's whole expression ("striped red circle")
SHAPES_INTERVENTIONS = ["none", "patch:{leak.target_phrase}", "drop:{leak.source_phrase}"]
SHAPES_MODELS = ("shapes-sd", "shapes-judge", "shapes-clip")


def run(ctx) -> list[Path]:
    from effeval import zoo
    from effeval.image.__main__ import main

    out = Path(ctx.out_dir) / "image"
    shutil.rmtree(out, ignore_errors=True)  # a fresh run each time (the runner would resume otherwise)
    if all(zoo.is_built(name) for name in SHAPES_MODELS):
        pipeline, benchmark, scorers, limit = ctx.zoo("shapes-sd"), "shapes-leakage", "judge", 12
        build = json.loads((Path(pipeline) / "effeval_zoo.json").read_text())
        sampling = ["--steps", str(build["steps"]), "--guidance", str(build["guidance_scale"])]
        interventions = SHAPES_INTERVENTIONS
    else:
        print(
            "    image: the shapes world's trained generator is not built, so this runs the tiny RANDOM "
            "SD pipeline (its images are noise); `effeval zoo build --shapes` builds it once",
            flush=True,
        )
        pipeline, benchmark, scorers, limit = ctx.zoo("sd-tiny"), "leakage", "clip,vqa", 3
        sampling = []
        interventions = DEMO_INTERVENTIONS
    args = [
        "run",
        "--pipeline",
        pipeline,
        "--benchmark",
        benchmark,
        "--limit",
        str(min(ctx.limit or limit, limit)),
        "--scorers",
        scorers,
        "--seeds",
        "0",
        "--out",
        str(out),
        "--bootstrap",
        "200",
        *sampling,
    ]
    for spec in interventions:
        args += ["--intervention", spec]
    if main(args) != 0:
        raise RuntimeError("image demo run failed")
    result = out / "results.json"
    ctx.written.append(result)
    logger.info("image demo: report at %s", out / "report.html")
    print(f"image report: {out / 'report.html'}", flush=True)
    return [result]
