"""``python -m effeval.bench image-shapes``: the leakage experiment in the shapes world, for real.

1. Judge accuracy: the trained judge (zoo ``shapes-judge``, trained on ``train``-split renders
   only) on rendered images it never saw, of the ``heldout`` split (colour-shape combinations it
   never saw) and of fresh ``train``-split scenes, on balanced yes/no questions.
2. Generator faithfulness: the trained pipeline (zoo ``shapes-sd``) draws captions that are not
   in its training pool (fresh train-split scenes, and held-out combinations); the judge answers
   every question the caption settles; faithfulness = share answered as the caption says.
3. The leakage experiment: ``effeval image run`` on ``shapes-leakage`` and on its matched
   controls ``shapes-leakage-control`` with ``LEAK_INTERVENTIONS``, scored by the judge;
   control-corrected leakage (``effeval.image.shapes.leakage``) per order (source before / after
   the target) with bootstrap CIs, and each intervention's change vs ``none``. ``keep`` and
   ``isolate`` of both items are the ablation that says where leakage comes from: ``keep`` removes
   every position but the items' own tokens (function words, EOS, padding), ``isolate``
   additionally encodes each item alone, so no position carries one item into the other; what
   leaks then, the denoiser leaks by itself.
4. The judge on generated images: its per-cell reading of every ``none`` image of the runs
   against an independent per-cell pixel-colour reading (``effeval.image.shapes.pixel_reader``);
   and the colour prompts' leakage read from pixels alone.
5. Redundancy: ``shapes-binding`` and ``shapes-omission`` through the same runner with each
   modifier or function word dropped (pad mode: the noun and every later position kept), all of
   them dropped, and only the nouns kept; faithfulness (the judge's accuracy on the record's
   questions) change vs the full prompt, over the prompts the intervention changed.

Everything is written to ``results/bench/image-shapes.json``; ``results/bench/image-shapes/report.html``
holds the tables and the leakage run's first ``--report-prompts`` prompts (PNGs next to it).
"""

from __future__ import annotations

import argparse
import html
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

LEAK_INTERVENTIONS = [
    "none",
    "patch:{leak.target_phrase}",
    "drop:{leak.source_phrase}",
    "keep:{leak.source_phrase}|{leak.target_phrase}",
    "isolate:{leak.source_phrase}|{leak.target_phrase}",
]
REDUNDANCY_INTERVENTIONS = [
    "none",
    "drop:{words.count}",
    "drop:{words.pattern}",
    "drop:{words.colour}",
    "drop:{words.function}",
    "drop:{words.modifiers}",
    "keep:{words.noun}",
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


def image_run(
    pipeline: Path,
    benchmark: str,
    limit: int,
    interventions: list[str],
    steps: int,
    guidance: float,
    out: Path,
) -> tuple[dict, list[dict], list[dict]]:
    """One ``effeval image run`` with the judge: (results.json, per-prompt rows, records)."""
    from effeval.image.__main__ import main as image_main
    from effeval.image.benchmarks import load_benchmark

    argv = [
        "run", "--pipeline", str(pipeline), "--benchmark", benchmark, "--limit", str(limit),
        "--scorers", "judge", "--seeds", "0", "--steps", str(steps), "--guidance", str(guidance),
        "--out", str(out), "--bootstrap", "1000", "--no-report", "--batch",
    ]  # fmt: skip
    for spec in interventions:
        argv += ["--intervention", spec]
    code = image_main(argv)
    if code:
        raise RuntimeError(f"effeval image run exited {code}")
    results = json.loads((out / "results.json").read_text())
    rows = [json.loads(line) for line in (out / "per_prompt.jsonl").read_text().splitlines() if line]
    return results, rows, load_benchmark(benchmark, limit=limit)


def _task_table(results: dict) -> dict:
    return {
        task: {
            k: v
            for k, v in block.items()
            if any(m in k for m in ("leakage", "omission", "binding", "vqa_accuracy"))
        }
        for task, block in results.get("tasks", {}).items()
    }


def pixel_leak_reads(records: list[dict], rows: list[dict], run_dir: Path) -> dict:
    """Colour prompts only: the target's cell read from pixels (``pixel_reader``). The generator
    draws the caption's i-th object in cell i, so the target's cell is 0 when it comes first,
    else 1; ``drawn`` = that cell occupied, ``carries`` = its colour is the source's."""
    from PIL import Image

    from effeval.image.shapes.pixel_reader import read_cells

    by_id = {r["id"]: r for r in records}
    out = {}
    for row in rows:
        rec = by_id[row["id"]]
        leak = rec["leak"]
        if leak["attribute"] != "colour":
            continue
        with Image.open(run_dir / row["image"]) as im:
            cells = read_cells(im)
        cell = cells[0 if leak["order"] == "target-first" else 1]
        out[(row["id"], row["intervention"])] = {
            "drawn": float(cell is not None),
            "carries": float(cell == leak["property"]),
        }
    return out


def leakage_experiment(sd_dir: Path, limit: int, steps: int, guidance: float, work: Path) -> dict:
    from effeval.image.shapes import leakage as L

    test_res, test_rows, tests = image_run(
        sd_dir, "shapes-leakage", limit, LEAK_INTERVENTIONS, steps, guidance, work / "leak"
    )
    ctrl_res, ctrl_rows, controls = image_run(
        sd_dir, "shapes-leakage-control", limit, LEAK_INTERVENTIONS, steps, guidance, work / "control"
    )
    reads, ctrl_reads = L.reads_from_rows(test_rows), L.reads_from_rows(ctrl_rows)
    pix = pixel_leak_reads(tests, test_rows, work / "leak")
    pix_ctrl = pixel_leak_reads(controls, ctrl_rows, work / "control")
    pairs = {spec: L.pairs_for(tests, controls, reads, ctrl_reads, spec) for spec in LEAK_INTERVENTIONS}
    leak_table, pixel_table = {}, {}
    for spec in LEAK_INTERVENTIONS:
        entry = {"by_order": L.by_order(pairs[spec])}
        if spec != "none":
            entry["change_vs_none"] = {
                g: L.change_vs(
                    [p for p in pairs[spec] if g == "all" or p["order"] == g],
                    [p for p in pairs["none"] if g == "all" or p["order"] == g],
                )
                for g in L.GROUPS
            }
        leak_table[spec] = entry
        if spec in ("none", "patch:{leak.target_phrase}"):  # the layout holds: caption order
            pixel_table[spec] = L.by_order(L.pairs_for(tests, controls, pix, pix_ctrl, spec))
    return {
        "prompts": limit,
        "orders": {o: sum(t["leak"]["order"] == o for t in tests) for o in ("source-first", "target-first")},
        "interventions": LEAK_INTERVENTIONS,
        "leakage": leak_table,
        "pixel_leakage_colour_prompts": pixel_table,
        "runner_tasks": {
            "shapes-leakage": _task_table(test_res),
            "shapes-leakage-control": _task_table(ctrl_res),
        },
    }


def _changed(row: dict) -> bool:
    pos = row.get("positions") or {}
    return bool(pos.get("changed_positions") or pos.get("n_replaced"))


def redundancy_experiment(sd_dir: Path, limit: int, steps: int, guidance: float, work: Path) -> dict:
    """Faithfulness (the judge's ``vqa_accuracy`` on each record's questions) with each word role
    dropped vs the full prompt, paired over the prompts the intervention changed."""
    from effeval.image.metrics import mean_ci, paired_change

    out = {}
    for bench in ("shapes-binding", "shapes-omission"):
        res, rows, _ = image_run(
            sd_dir, bench, limit, REDUNDANCY_INTERVENTIONS, steps, guidance, work / bench
        )
        base = {r["id"]: r["vqa_accuracy"] for r in rows if r["intervention"] == "none"}
        table = {"none": {"faithfulness": mean_ci(list(base.values()), 1000, 0)}}
        for spec in REDUNDANCY_INTERVENTIONS[1:]:
            mine = {r["id"]: r["vqa_accuracy"] for r in rows if r["intervention"] == spec and _changed(r)}
            ids = sorted(mine)
            table[spec] = {
                "prompts_changed": len(ids),
                "faithfulness": mean_ci([mine[i] for i in ids], 1000, 0) if ids else None,
                "change_vs_full": paired_change([mine[i] for i in ids], [base[i] for i in ids], 1000, 0)
                if ids
                else None,
            }
        out[bench] = {"table": table, "runner_tasks": _task_table(res), "run_dir": str(work / bench)}
    return out


def judge_vs_pixels(judge, run_dirs: list[Path]) -> dict:
    """The judge's per-cell reading of every ``none`` image of these runs against the pixel reading."""
    from PIL import Image

    from effeval.image.shapes.pixel_reader import agreement

    images = []
    for d in run_dirs:
        for line in (d / "per_prompt.jsonl").read_text().splitlines():
            row = json.loads(line)
            if row["intervention"] == "none":
                with Image.open(d / row["image"]) as im:
                    images.append(im.convert("RGB"))
    return agreement(judge.read(images), images)


def _fmt(m: dict | None, digits: int = 3, signed: bool = False) -> str:
    if not m or m.get("value") is None:
        return "–"
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    text = f.format(m["value"])
    if m.get("ci_low") is not None:
        text += f" [{f.format(m['ci_low'])}, {f.format(m['ci_high'])}]"
    return text


def leakage_markdown(exp: dict) -> list[str]:
    """The leakage table (one row per intervention and order) as markdown lines."""
    lines = [
        "| intervention | order | prompts | leak rate | control rate | corrected leakage | "
        "conditional (target drawn) | target omission | corrected change vs none |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for spec, entry in exp["leakage"].items():
        for g, m in entry["by_order"].items():
            if not m.get("n"):
                continue
            ch = (entry.get("change_vs_none") or {}).get(g, {}).get("corrected")
            lines.append(
                f"| `{spec}` | {g} | {m['n']} | {_fmt(m['leak_rate'])} | {_fmt(m['control_rate'])} | "
                f"{_fmt(m['corrected'], signed=True)} | {_fmt(m['conditional'], signed=True)} | "
                f"{_fmt(m['target_omission'])} | {_fmt(ch, signed=True) if ch else ''} |"
            )
    return lines


def redundancy_markdown(red: dict) -> list[str]:
    lines = [
        "| benchmark | intervention | prompts changed | faithfulness | change vs full prompt |",
        "|---|---|---|---|---|",
    ]
    for bench, block in red.items():
        for spec, m in block["table"].items():
            ch = m.get("change_vs_full")
            change = (
                _fmt(
                    {"value": ch["abs_change"], "ci_low": ch["abs_ci_low"], "ci_high": ch["abs_ci_high"]},
                    signed=True,
                )
                if ch
                else ""
            )
            lines.append(
                f"| {bench} | `{spec}` | {m.get('prompts_changed', '')} | {_fmt(m['faithfulness'])} | {change} |"
            )
    return lines


def _md_table_html(lines: list[str]) -> str:
    """A markdown table (as written by ``*_markdown``) as an HTML table."""
    rows = [ln.strip("|").split(" | ") for ln in lines if not ln.startswith("|---")]
    head, body = rows[0], rows[1:]
    out = ["<table><tr>" + "".join(f"<th>{html.escape(c.strip())}</th>" for c in head) + "</tr>"]
    for r in body:
        out.append("<tr>" + "".join(f"<td>{html.escape(c.strip().strip('`'))}</td>" for c in r) + "</tr>")
    return "".join(out) + "</table>"


def closing_note(payload: dict) -> str:
    """What the run shows, in words, quoting its numbers."""
    exp = payload.get("experiment")
    if not exp:
        return ""
    L = exp["leakage"]
    none_sf = L["none"]["by_order"]["source-first"]
    none_tf = L["none"]["by_order"]["target-first"]
    patch = L["patch:{leak.target_phrase}"]
    iso = L["isolate:{leak.source_phrase}|{leak.target_phrase}"]
    parts = [
        f"Control-corrected leakage with no intervention: {_fmt(none_sf['corrected'], signed=True)} when the "
        f"source comes first ({none_sf['n']} prompts; leak rate {_fmt(none_sf['leak_rate'])} vs control "
        f"{_fmt(none_sf['control_rate'])}), {_fmt(none_tf['corrected'], signed=True)} when it comes second "
        f"({none_tf['n']}).",
        f"Patching the target's expression with its encoding alone changes the source-first corrected "
        f"leakage by {_fmt(patch['change_vs_none']['source-first']['corrected'], signed=True)}.",
        f"Isolating both items (each encoded alone, nothing else kept) leaves "
        f"{_fmt(iso['by_order']['source-first']['corrected'], signed=True)} (source first) and "
        f"{_fmt(iso['by_order']['target-first']['corrected'], signed=True)} (target first), with "
        f"{_fmt(iso['by_order']['all']['target_omission'])} of targets missing: no position then "
        "carries one item into the other, so what survives is the denoiser's, though a generator "
        "that loses that many targets is off its training distribution.",
    ]
    pixel = exp.get("pixel_leakage_colour_prompts", {}).get("none", {})
    if pixel.get("source-first", {}).get("n"):
        parts.append(
            "Read from pixels alone (colour prompts, no intervention, the target's cell in the "
            f"caption-order layout): corrected leakage {_fmt(pixel['source-first']['corrected'], signed=True)} "
            f"source first, {_fmt(pixel['target-first']['corrected'], signed=True)} target first."
        )
    jp = payload.get("judge_on_generated")
    if jp:
        parts.append(
            f"The judge agrees with the pixel reading on {_fmt(jp['cells'])} of the cells of "
            f"{jp['images']} generated images."
        )
    red = payload.get("redundancy")
    if red:
        bits = []
        for bench, block in red.items():
            for spec in ("drop:{words.colour}", "drop:{words.modifiers}"):
                ch = block["table"][spec].get("change_vs_full")
                if ch:
                    bits.append(
                        f"{bench} `{spec}` "
                        + _fmt(
                            {
                                "value": ch["abs_change"],
                                "ci_low": ch["abs_ci_low"],
                                "ci_high": ch["abs_ci_high"],
                            },
                            signed=True,
                        )
                    )
        parts.append("Faithfulness change when words are dropped: " + "; ".join(bits) + ".")
    return " ".join(parts)


def report_preamble(payload: dict) -> str:
    parts = ["<h2>Leakage, control-corrected, by order</h2>"]
    exp = payload.get("experiment")
    if exp:
        parts.append(_md_table_html(leakage_markdown(exp)))
    if payload.get("redundancy"):
        parts.append("<h2>Redundancy: faithfulness with words dropped</h2>")
        parts.append(_md_table_html(redundancy_markdown(payload["redundancy"])))
    jp = payload.get("judge_on_generated")
    if jp:
        parts.append(
            "<h2>Judge on generated images vs a pixel-colour reading</h2><p>"
            + html.escape(
                f"{jp['images']} images: cells agreeing {_fmt(jp['cells'])}, occupancy {_fmt(jp['occupancy'])}, "
                f"colour on cells both read as occupied {_fmt(jp['colour'])}"
            )
            + "</p>"
        )
    note = payload.get("closing_note")
    if note:
        parts.append(f"<h2>What this run shows</h2><p>{html.escape(note)}</p>")
    parts.append("<h2>The leakage run (shapes-leakage prompts)</h2>")
    return "".join(parts)


def publish_report(run_dir: Path, dest: Path, max_prompts: int, preamble_html: str = "") -> Path:
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
    write_report(
        stage, result, rows, records, inline=False, max_prompts=max_prompts, preamble_html=preamble_html
    )
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
    parser.add_argument(
        "--limit",
        type=int,
        default=800,
        help="shapes-leakage prompts (half source-first) and as many controls; at most 900",
    )
    parser.add_argument(
        "--redundancy-limit", type=int, default=240, help="shapes-binding and shapes-omission prompts each"
    )
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the zoo build's)")
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument(
        "--report-prompts",
        type=int,
        default=24,
        help="prompts shown (with their PNGs) in the committed report",
    )
    parser.add_argument(
        "--skip", default="", help="comma-separated parts to skip: judge,faithfulness,experiment,redundancy"
    )
    parser.add_argument(
        "--work",
        default=None,
        help="folder for the image runs (kept; rerunning the same command resumes them). Default: a "
        "temporary folder, deleted at the end",
    )


PARTS = ("judge", "faithfulness", "experiment", "redundancy")


def run(args: argparse.Namespace) -> int:
    import torch

    from effeval import zoo
    from effeval.bench.common import bench_dir, write_bench
    from effeval.errors import config_error
    from effeval.image.encoders import load_pipeline
    from effeval.image.shapes.judge import ShapesJudge

    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if skip - set(PARTS):
        raise config_error("--skip", f"unknown part(s) {sorted(skip - set(PARTS))}", f"use {','.join(PARTS)}")
    if args.limit > 900:
        raise config_error(
            "--limit", f"{args.limit} prompts", "ask for at most 900 (distinct captions per order)"
        )
    torch.set_num_threads(1)
    judge_dir = zoo.get("shapes-judge")
    need_sd = not {"faithfulness", "experiment", "redundancy"} <= skip
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
        "description": "shapes world: judge accuracy on unseen rendered images and on generated images (vs a "
        "pixel reading), generator faithfulness on captions outside its training pool, the control-corrected "
        "leakage experiment by order with an encoder/denoiser ablation, and the redundancy experiment "
        "(effeval image run, judge scorer)",
        "models": {
            "judge": {"zoo": judge_dir.name, **judge_build},
            "clip": {"zoo": zoo.get("shapes-clip").name, **clip_build},
            "generator": {"zoo": sd_dir.name if sd_dir else None, **build},
        },
        "settings": {
            "steps": steps,
            "guidance": guidance,
            "torch_threads": 1,
            "limit": args.limit,
            "redundancy_limit": args.redundancy_limit,
            "load_average_1min": os.getloadavg()[0],
        },
        "cpu_s_by_part": {},
    }
    start, wall = time.process_time(), time.perf_counter()

    def timed(part: str, fn):
        t0 = time.process_time()
        value = fn()
        payload["cpu_s_by_part"][part] = round(time.process_time() - t0, 1)
        return value

    if "judge" not in skip:
        payload["judge_accuracy"] = timed("judge", lambda: judge_accuracy(judge, args.judge_images, seed=1))
        logger.info(
            "judge accuracy: %s", {k: v["accuracy"]["value"] for k, v in payload["judge_accuracy"].items()}
        )
    if "faithfulness" not in skip:
        pipe = load_pipeline(sd_dir)
        from effeval.zoo.shapes import POOL, SEED, _Pool

        pool = set(_Pool.captions_only(POOL, SEED + 10))
        payload["generator_faithfulness"] = timed(
            "faithfulness", lambda: faithfulness(pipe, judge, args.captions, 2, steps, guidance, pool)
        )
    if args.work:
        from effeval.atomic import check_output_dir

        check_output_dir(args.work, "--work")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="effeval-shapes-"))
    try:
        runs = []
        if "experiment" not in skip:
            payload["experiment"] = timed(
                "experiment", lambda: leakage_experiment(sd_dir, args.limit, steps, guidance, work)
            )
            runs += [work / "leak", work / "control"]
        if "redundancy" not in skip:
            payload["redundancy"] = timed(
                "redundancy",
                lambda: redundancy_experiment(sd_dir, args.redundancy_limit, steps, guidance, work),
            )
            for block in payload["redundancy"].values():
                runs.append(Path(block.pop("run_dir")))
        if runs:
            payload["judge_on_generated"] = timed("judge_on_generated", lambda: judge_vs_pixels(judge, runs))
        payload["closing_note"] = closing_note(payload)
        if "experiment" in payload:
            dest = bench_dir() / "image-shapes"
            publish_report(work / "leak", dest, args.report_prompts, report_preamble(payload))
            payload["experiment"]["report"] = str(dest / "report.html")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    payload["cpu_s"] = round(time.process_time() - start, 1)
    payload["wall_s"] = round(time.perf_counter() - wall, 1)
    path = write_bench("image-shapes", payload)
    logger.info("wrote %s", path)
    if "experiment" in payload:
        logger.info("leakage:\n%s", "\n".join(leakage_markdown(payload["experiment"])))
    if "redundancy" in payload:
        logger.info("redundancy:\n%s", "\n".join(redundancy_markdown(payload["redundancy"])))
    if payload.get("closing_note"):
        logger.info("%s", payload["closing_note"])
    return 0


main = bench_command("image-shapes", __doc__, add_arguments, run)
