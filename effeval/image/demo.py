"""Demo step: a tiny leakage run on the zoo's SD pipeline with its HTML report (seconds on CPU)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

DEMO_INTERVENTIONS = ["none", "patch:{leak.target}", "drop:{leak.source}@mask"]


def run(ctx) -> list[Path]:
    from effeval.image.__main__ import main

    out = Path(ctx.out_dir) / "image"
    shutil.rmtree(out, ignore_errors=True)  # a fresh run each time (the runner would resume otherwise)
    args = [
        "run",
        "--pipeline",
        ctx.zoo("sd-tiny"),
        "--benchmark",
        "leakage",
        "--limit",
        str(min(ctx.limit or 3, 3)),
        "--scorers",
        "clip,vqa",
        "--seeds",
        "0",
        "--out",
        str(out),
        "--bootstrap",
        "200",
    ]
    for spec in DEMO_INTERVENTIONS:
        args += ["--intervention", spec]
    if main(args) != 0:
        raise RuntimeError("image demo run failed")
    result = out / "results.json"
    ctx.written.append(result)
    logger.info("image demo: report at %s", out / "report.html")
    print(f"image report: {out / 'report.html'}", flush=True)
    return [result]
