"""``python -m effeval.image run`` (also ``effeval image run``): generate, intervene, score, report.

    python -m effeval.image run --pipeline DIR|zoo:sd-tiny --benchmark leakage|FILE \\
        --intervention none --intervention 'patch:{leak.target}' --scorers clip,vqa \\
        --seeds 0,1 --out runs/leak

Writes under ``--out``: ``images/<index>/<intervention>__s<seed>.png``, ``prompts/<index>.json``
(one per finished prompt, written atomically before the next prompt starts), and once every
prompt is done ``per_prompt.jsonl`` (one row per prompt x intervention x seed: the record id,
the seed, the image and the scorers' keys flat), ``results.json`` (effeval/result/v1,
kind=image) and ``report.html``.

Resumable: rerunning the same command skips prompts whose ``prompts/<index>.json`` exists; a
run killed at any point (even ``kill -9``) and resumed ends with the same per-prompt rows and
metrics as an uninterrupted run, because every image depends only on (prompt, intervention,
seed) and set-level numbers are computed from the saved files at the end. Changing the settings
under an existing ``--out`` is refused (``run_config.json`` records them).

Data parallel: ``torchrun --nproc_per_node N -m effeval.image run ...`` shards prompts
round-robin over ranks (gloo on CPU, nccl on GPU); rank 0 merges after a barrier. The merged
output equals a single-process run's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

from effeval.errors import ConfigError, config_error

logger = logging.getLogger("effeval.image")

SET_LEVEL_SCORERS = ("quality",)  # scored at the end from saved images (needs the baseline)
RESULT_FILE = "results.json"
ROWS_FILE = "per_prompt.jsonl"
REPORT_FILE = "report.html"
ROW_FIELDS = {"id", "index", "prompt", "intervention", "seed", "image", "sequence_length", "positions"}


def parse_seeds(text: str) -> list[int]:
    """``0,1,5`` or ``0-3`` (inclusive) or a mix."""
    seeds: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (part, "")
                seeds += list(range(int(lo), int(hi) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise config_error(
            "--seeds", f"{text!r} is not a list of integers", "write e.g. 0,1,2 or 0-3"
        ) from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise config_error(
            "--seeds",
            f"{text!r} gives no seeds, a negative or a repeated one",
            "write distinct non-negative seeds, e.g. 0,1",
        )
    return seeds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m effeval.image", description="Text-to-image interventions and scoring"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="generate images per prompt x intervention x seed, score them, write JSON + report"
    )
    run.add_argument(
        "--pipeline",
        required=True,
        help="diffusers pipeline folder (SD 1.x/2.x, SDXL) or zoo:NAME (e.g. zoo:sd-tiny)",
    )
    run.add_argument(
        "--benchmark",
        required=True,
        help="leakage|omission|binding|mwe or a file (JSONL, GenEval, T2I-CompBench, TIFA, DSG)",
    )
    run.add_argument(
        "--intervention",
        action="append",
        default=None,
        help="repeatable: none | drop:WORD[|WORD][@pad|@mask] | keep:... | patch:ITEM | drop-redundant (default: none)",
    )
    run.add_argument(
        "--scorers",
        default="clip,vqa",
        help="comma-separated: clip,vqa,quality,judge (or 'none'); module:Class for your own",
    )
    run.add_argument("--seeds", default="0", help="e.g. 0,1 or 0-3 (default 0)")
    run.add_argument("--out", required=True, help="output folder (rerun the same command to resume)")
    run.add_argument("--limit", type=int, default=None, help="first N prompts of the benchmark")
    run.add_argument(
        "--steps", type=int, default=None, help="inference steps (default: 2 for zoo pipelines, else 30)"
    )
    run.add_argument(
        "--guidance", type=float, default=7.5, help="classifier-free guidance scale (default 7.5)"
    )
    run.add_argument("--height", type=int, default=None)
    run.add_argument("--width", type=int, default=None)
    run.add_argument("--device", default="cpu", help="cpu or cuda[:N] (falls back to cpu without CUDA)")
    run.add_argument("--dtype", default="float32")
    run.add_argument(
        "--clip-model", default=None, help="open_clip model for clip/quality (dir, hub id or zoo:NAME)"
    )
    run.add_argument("--vqa-model", default=None, help="VQA model for vqa (dir, hub id or zoo:NAME)")
    run.add_argument(
        "--judge-model",
        default=None,
        help="shapes-world judge for judge (dir or zoo:NAME; default zoo:shapes-judge)",
    )
    run.add_argument(
        "--scorer-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="other scorer option (repeatable)",
    )
    run.add_argument(
        "--redundancy", action="store_true", help="run the redundancy analysis even without drop-redundant"
    )
    run.add_argument("--redundancy-threshold", type=float, default=0.9)
    run.add_argument(
        "--max-subset", type=int, default=2, help="largest token subset tried per expression (default 2)"
    )
    run.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples for confidence intervals"
    )
    run.add_argument("--no-report", action="store_true", help="skip report.html")
    return parser


# --------------------------------------------------------------------------------------------
# settings


def _resolve_pipeline(spec: str) -> Path:
    if spec.startswith("zoo:"):
        from effeval import zoo

        return zoo.get(spec[4:])
    return Path(spec).expanduser()


def check_image_size(pipeline_path: Path, height: int | None, width: int | None) -> None:
    """Sizes the pipeline makes exactly, checked from its config files before anything loads: the
    latents must pass the UNet's downsampling, or the stock call rounds or refuses the size."""
    if height is None and width is None:
        return
    try:
        vae = json.loads((pipeline_path / "vae" / "config.json").read_text())
        unet = json.loads((pipeline_path / "unet" / "config.json").read_text())
    except (OSError, ValueError):
        return  # not an SD-style folder: load_pipeline says what is wrong
    vae_scale = 2 ** (len(vae.get("block_out_channels", [0])) - 1)
    step = vae_scale * 2 ** (len(unet.get("block_out_channels", [0])) - 1)
    default = int(unet.get("sample_size") or 0) * vae_scale
    for name, v in (("--height", height), ("--width", width)):
        if v is not None and v % step:
            raise config_error(
                name,
                f"{v} is not a multiple of {step}, the size step of this pipeline",
                f"pass a multiple of {step}" + (f", or omit it for the default {default}" if default else ""),
            )


def _scorer_names(text: str) -> list[str]:
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    return [] if names in (["none"], []) else names


def _scorer_opts(args) -> dict:
    opts: dict = {}
    for item in args.scorer_opt:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise config_error(
                "--scorer-opt", f"{item!r} is not KEY=VALUE", "write e.g. --scorer-opt threshold=0.5"
            )
        try:
            opts[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            opts[key.strip()] = value
    if args.clip_model:
        opts["clip_model"] = args.clip_model
    if args.vqa_model:
        opts["vqa_model"] = args.vqa_model
    if getattr(args, "judge_model", None):
        opts["judge_model"] = args.judge_model
    return opts


def scorers_for_run(names: list[str], opts: dict, device: str) -> list:
    """Built-in scorers through ``effeval.image.scorers.build_scorers``; ``module:Class`` names
    are instantiated directly (a custom scorer: ``.name``, ``.metadata()``, ``.score(images, record)``)."""
    import importlib

    custom, builtin = [], []
    for n in names:
        if ":" in n:
            mod, _, cls = n.partition(":")
            try:
                custom.append(getattr(importlib.import_module(mod), cls)())
            except (ImportError, AttributeError) as exc:
                raise config_error(
                    "--scorers",
                    f"{n!r} cannot be imported ({exc})",
                    "give module:Class of an importable scorer",
                ) from None
        else:
            builtin.append(n)
    out = []
    if builtin:
        from effeval.image.scorers import build_scorers as build_builtin

        out = build_builtin(builtin, device=device, **opts)
    return out + custom


def _records_hash(records: list[dict]) -> str:
    return hashlib.sha256(json.dumps(records, sort_keys=True, default=str).encode()).hexdigest()


def _pipeline_fingerprint(path: Path) -> str:
    """sha256 over the pipeline's config files (weights are too large to hash on every run)."""
    h = hashlib.sha256()
    for f in sorted(path.rglob("*.json")):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _dist():
    """(rank, world, torch.distributed or None) from torchrun's environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, None
    import torch.distributed as dist

    if not dist.is_initialized():
        import torch

        backend = (
            "nccl"
            if torch.cuda.is_available() and os.environ.get("EFFEVAL_DIST_BACKEND") != "gloo"
            else "gloo"
        )
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size(), dist


# --------------------------------------------------------------------------------------------
# one prompt


def _save_png(image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


def process_prompt(index: int, record: dict, ctx: dict) -> dict:
    """Every intervention x seed for one record: images saved, scored; returns the prompt file's content."""
    from effeval.image.interventions import apply_intervention
    from effeval.image.redundancy import analyse_prompt, expressions_for

    encoder, generator, out = ctx["encoder"], ctx["generator"], ctx["out"]
    enc = encoder.encode(record["prompt"])
    timing = {"generation_s": {}, "scoring_s": 0.0, "redundancy_s": 0.0}
    redundancy = None
    if ctx["redundancy"]:
        start = time.perf_counter()
        redundancy = analyse_prompt(
            generator,
            encoder,
            enc,
            expressions_for(record, encoder, enc),
            ctx["seeds"],
            features=ctx["features"],
            max_subset=ctx["max_subset"],
            threshold=ctx["threshold"],
        )
        timing["redundancy_s"] = time.perf_counter() - start
    rows = []
    for spec in ctx["specs"]:
        cond = apply_intervention(
            encoder,
            enc,
            spec,
            record,
            redundant_positions=redundancy["redundant_positions"] if redundancy else None,
        )
        start = time.perf_counter()
        images = generator.images(cond, ctx["seeds"])
        timing["generation_s"][spec.label] = time.perf_counter() - start
        start = time.perf_counter()
        for seed, image in zip(ctx["seeds"], images):
            rel = f"images/{index:05d}/{spec.slug}__s{seed}.png"
            _save_png(image, out / rel)
            row = {
                "id": record["id"],
                "index": index,
                "prompt": record["prompt"],
                "intervention": spec.label,
                "seed": seed,
                "image": rel,
                "sequence_length": int(cond.prompt_embeds.shape[1]),
                "positions": {k: v for k, v in cond.info.items() if k not in ("intervention", "length")},
            }
            for scorer in ctx["scorers"]:
                scores = scorer.score([image], record)
                clash = set(scores) & set(row)
                if clash:
                    raise ConfigError(
                        f"scorer {scorer.name!r} returned reserved key(s) {sorted(clash)}. Fix: rename them"
                    )
                row.update({k: float(v) for k, v in scores.items()})
            rows.append(row)
        timing["scoring_s"] += time.perf_counter() - start
    return {
        "config_hash": ctx["config_hash"],
        "index": index,
        "id": record["id"],
        "rows": rows,
        "redundancy": redundancy,
        "truncated": enc.truncated,
        "timing": timing,
    }


# --------------------------------------------------------------------------------------------
# merge


def _set_level_scores(
    names, opts, device, specs, records, rows, out: Path, baseline_label: str | None
) -> dict:
    """Scorers that need every image (FID/KID vs the baseline): run from the saved PNGs, in
    benchmark order, so resumed and sharded runs give the same numbers."""
    if not names:
        return {}
    if baseline_label is None:
        raise config_error(
            "--scorers", f"{','.join(names)} compares against the baseline images", "add --intervention none"
        )
    from PIL import Image

    by_key = {(r["index"], r["intervention"], r["seed"]): r for r in rows}
    results: dict = {}
    for spec in specs:
        if spec.label == baseline_label:
            continue
        scorers = scorers_for_run(names, opts, device)
        for i, record in enumerate(records):
            for row in [r for r in rows if r["index"] == i and r["intervention"] == spec.label]:
                base = by_key[(i, baseline_label, row["seed"])]
                with Image.open(out / row["image"]) as im, Image.open(out / base["image"]) as bim:
                    rec = {**record, "baseline_images": [bim.convert("RGB")]}
                    for s in scorers:
                        row.update({k: float(v) for k, v in s.score([im.convert("RGB")], rec).items()})
        results[spec.label] = {k: float(v) for s in scorers for k, v in s.finalize().items()}
    return results


def _tasks_block(
    bench: str,
    labels: list[str],
    rows: list[dict],
    baseline_label: str | None,
    n_boot: int,
    set_level: dict,
    redundancy_agg: dict | None,
) -> tuple[dict, dict]:
    from effeval.image.metrics import aggregate

    baseline_rows = [r for r in rows if r["intervention"] == baseline_label] if baseline_label else None
    # every score key the scorers produced (per-question "q.<id>.p_yes" stay in per_prompt.jsonl)
    keys: list[str] = []
    for r in rows:
        for k, v in r.items():
            if k not in ROW_FIELDS and not k.startswith("q.") and isinstance(v, float) and k not in keys:
                keys.append(k)
    tasks, aggregates = {}, {}
    for label in labels:
        mine = [r for r in rows if r["intervention"] == label]
        agg = aggregate(mine, baseline_rows if label != baseline_label else None, n_boot=n_boot, keys=keys)
        aggregates[label] = agg
        block = {}
        for name, m in agg["metrics"].items():
            block[name] = {
                "value": m["value"],
                "stderr": None,
                "higher_is_better": m["higher_is_better"],
                "n_samples": m["n"],
                "ci_low": m["ci_low"],
                "ci_high": m["ci_high"],
            }
        for name, ch in agg.get("vs_baseline", {}).items():
            block[f"{name}_rel_change"] = {
                "value": ch["rel_change"],
                "ci_low": ch["rel_ci_low"],
                "ci_high": ch["rel_ci_high"],
                "higher_is_better": ch["higher_is_better"],
                "n_samples": ch["n_paired"],
                "label": ch["label"],
            }
            block[f"{name}_abs_change"] = {
                "value": ch["abs_change"],
                "ci_low": ch["abs_ci_low"],
                "ci_high": ch["abs_ci_high"],
                "higher_is_better": ch["higher_is_better"],
                "n_samples": ch["n_paired"],
            }
        for name, value in set_level.get(label, {}).items():
            block[name] = {
                "value": value,
                "higher_is_better": not name.startswith(("fid", "kid")),
                "n_samples": len(mine),
            }
        tasks[f"{bench}/{label}"] = block
    if redundancy_agg:
        tasks[f"{bench}/redundancy"] = {
            k: {"value": v, "higher_is_better": None, "n_samples": redundancy_agg["multi_token_expressions"]}
            for k, v in redundancy_agg.items()
            if k not in ("expressions", "multi_token_expressions")
        }
    return tasks, aggregates


def merge(ctx: dict, records: list[dict], args, start_time: float, argv: list[str]) -> Path:
    from effeval.image.redundancy import redundancy_rates
    from effeval.results.convert import environment_block
    from effeval.results.writer import write_json_atomic, write_result, write_text_atomic

    out = ctx["out"]
    prompt_files = []
    for i in range(len(records)):
        path = out / "prompts" / f"{i:05d}.json"
        if not path.is_file():
            raise ConfigError(
                f"{path}: missing after the run (a process failed?). Fix: rerun the same command to resume"
            )
        prompt_files.append(json.loads(path.read_text()))
    rows = [r for p in prompt_files for r in p["rows"]]
    labels = [s.label for s in ctx["specs"]]
    baseline_label = "none" if "none" in labels else None
    set_level = _set_level_scores(
        ctx["set_level_names"],
        ctx["scorer_opts"],
        ctx["device"],
        ctx["specs"],
        records,
        rows,
        out,
        baseline_label,
    )
    red = [p["redundancy"] for p in prompt_files if p.get("redundancy")]
    red_agg = redundancy_rates(red) if red else None
    bench = ctx["bench_name"]
    tasks, aggregates = _tasks_block(bench, labels, rows, baseline_label, args.bootstrap, set_level, red_agg)
    write_text_atomic(out / ROWS_FILE, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))

    gen_s = {lab: sum(p["timing"]["generation_s"].get(lab, 0.0) for p in prompt_files) for lab in labels}
    n_img = {lab: sum(1 for r in rows if r["intervention"] == lab) for lab in labels}
    seq = {lab: [r["sequence_length"] for r in rows if r["intervention"] == lab] for lab in labels}
    total_gen = sum(gen_s.values())
    pipe = ctx["pipe"]
    n_params = sum(
        p.numel()
        for name in ("unet", "text_encoder", "text_encoder_2", "vae")
        if getattr(pipe, name, None) is not None
        for p in getattr(pipe, name).parameters()
    )
    bench_src = Path(args.benchmark)
    source_files = []
    if bench_src.is_file():
        source_files.append(
            {"path": str(bench_src), "sha256": hashlib.sha256(bench_src.read_bytes()).hexdigest()}
        )
    else:
        data = Path(__file__).parent / "data" / f"{args.benchmark}.jsonl"
        if data.is_file():
            source_files.append(
                {
                    "path": f"effeval/image/data/{data.name}",
                    "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
                }
            )
    import datetime as _dt

    result = {
        "schema": "effeval/result/v1",
        "kind": "image",
        "run_id": f"image__{bench}__{ctx['config_hash'][:12]}",
        "created": _dt.datetime.now(tz=_dt.timezone.utc).isoformat(),
        "model": {
            "name": ctx["pipeline_path"].name,
            "source": str(ctx["pipeline_path"]),
            "revision": f"config-sha256:{ctx['pipeline_fingerprint']}",
            "dtype": args.dtype,
            "parameters": int(n_params),
            "wrapper": type(pipe).__name__,
        },
        "method": {
            "name": "effeval-image",
            "args": {
                "interventions": labels,
                "seeds": ctx["seeds"],
                "benchmark": args.benchmark,
                "n_prompts": len(records),
                "scorers": ctx["scorer_names"],
                **ctx["gen_config"],
                "redundancy_threshold": ctx["threshold"],
                "max_subset": ctx["max_subset"],
            },
        },
        "tasks": tasks,
        "efficiency": {
            "wall_time_s": time.perf_counter() - start_time,
            "images": len(rows),
            "generation_s": total_gen,
            "images_per_s": len(rows) / total_gen if total_gen > 0 else None,
            "scoring_s": sum(p["timing"]["scoring_s"] for p in prompt_files),
            "redundancy_s": sum(p["timing"]["redundancy_s"] for p in prompt_files),
            "per_intervention": {
                lab: {
                    "images": n_img[lab],
                    "generation_s": gen_s[lab],
                    "images_per_s": n_img[lab] / gen_s[lab] if gen_s[lab] > 0 else None,
                    "mean_sequence_length": sum(seq[lab]) / len(seq[lab]) if seq[lab] else None,
                }
                for lab in labels
            },
        },
        "environment": environment_block(ctx["device"]),
        "provenance": {"source_files": source_files, "command": "python -m effeval.image " + " ".join(argv)},
        "samples": ROWS_FILE,
        "extra": {
            "benchmark": bench,
            "scorers": [s.metadata() for s in ctx["scorers"]],
            "set_level_scorers": ctx["set_level_names"],
            "aggregates": aggregates,
            "redundancy": red_agg,
            "truncated_prompts": [p["id"] for p in prompt_files if p.get("truncated")],
        },
    }
    path = write_result(out / RESULT_FILE, result)
    if red:
        write_json_atomic(
            out / "redundancy.json",
            {
                "aggregate": red_agg,
                "per_prompt": [
                    {"id": p["id"], **p["redundancy"]} for p in prompt_files if p.get("redundancy")
                ],
            },
        )
    if not args.no_report:
        from effeval.image.report import write_report

        write_report(out, result, rows, records)
    return path


# --------------------------------------------------------------------------------------------


def run(args, argv: list[str]) -> int:
    start_time = time.perf_counter()
    from effeval.image.benchmarks import load_benchmark
    from effeval.image.interventions import parse_intervention
    from effeval.results.writer import write_json_atomic

    specs = [parse_intervention(s) for s in (args.intervention or ["none"])]
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise config_error(
            "--intervention", f"repeated intervention in {labels}", "list each intervention once"
        )
    seeds = parse_seeds(args.seeds)
    from effeval.atomic import check_output_dir

    check_output_dir(args.out)  # a file, or a place that cannot be written: before any work
    if not math.isfinite(args.guidance) or args.guidance < 0:
        raise config_error(
            "--guidance",
            f"{args.guidance} is not a finite scale >= 0",
            "pass e.g. --guidance 7.5 (1 = no guidance)",
        )
    for k in ("steps", "height", "width"):
        v = getattr(args, k)
        if v is not None and v < 1:
            raise config_error(f"--{k}", f"{v} is not positive", f"pass --{k} >= 1")
    records = load_benchmark(args.benchmark, limit=args.limit)
    pipeline_path = _resolve_pipeline(args.pipeline)
    check_image_size(pipeline_path, args.height, args.width)
    from effeval.image.encoders import load_pipeline
    from effeval.models.base import resolve_device

    device = resolve_device(args.device)
    pipe = load_pipeline(pipeline_path, device=device, dtype=args.dtype)
    steps = args.steps or (2 if (pipeline_path / "effeval_zoo.json").is_file() else 30)
    names = _scorer_names(args.scorers)
    opts = _scorer_opts(args)
    specs_need_redundancy = any(s.name == "drop-redundant" for s in specs)
    bench_name = (
        Path(args.benchmark).stem if Path(args.benchmark).is_file() else args.benchmark.split(":")[-1]
    )
    config = {
        "pipeline": str(pipeline_path.resolve()),
        "pipeline_fingerprint": _pipeline_fingerprint(pipeline_path),
        "benchmark": args.benchmark,
        "records_sha256": _records_hash(records),
        "interventions": labels,
        "seeds": seeds,
        "steps": steps,
        "guidance": args.guidance,
        "height": args.height,
        "width": args.width,
        "dtype": args.dtype,
        "device": device,
        "scorers": names,
        "scorer_opts": opts,
        "redundancy": bool(args.redundancy or specs_need_redundancy),
        "redundancy_threshold": args.redundancy_threshold,
        "max_subset": args.max_subset,
    }
    config_hash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    out = Path(args.out)
    rank, world, dist = _dist()
    cfg_path = out / "run_config.json"
    # Every rank checks (so all fail alike instead of some waiting at a barrier); rank 0 writes.
    if cfg_path.is_file():
        old = json.loads(cfg_path.read_text())
        if old.get("config_hash") != config_hash:
            diff = sorted(k for k in config if old.get("config", {}).get(k) != config[k])
            raise config_error(
                "--out",
                f"{str(out)!r} holds a run with other settings ({', '.join(diff)})",
                "rerun with the same settings to resume, or pass a new --out",
            )
    elif rank == 0:
        write_json_atomic(cfg_path, {"config_hash": config_hash, "config": config})
    if dist is not None:
        dist.barrier()

    from effeval.image.encoders import PromptEncoder
    from effeval.image.generation import GenerationConfig, ImageGenerator

    set_level_names = [n for n in names if n in SET_LEVEL_SCORERS]
    scorers = scorers_for_run([n for n in names if n not in SET_LEVEL_SCORERS], opts, device)
    encoder = PromptEncoder(pipe)
    gen_config = GenerationConfig(
        steps=steps, guidance_scale=args.guidance, height=args.height, width=args.width
    )
    features = next(
        (s.clip.image_features for s in scorers if hasattr(getattr(s, "clip", None), "image_features")), None
    )
    ctx = {
        "encoder": encoder,
        "generator": ImageGenerator(pipe, gen_config),
        "out": out,
        "specs": specs,
        "seeds": seeds,
        "scorers": scorers,
        "config_hash": config_hash,
        "redundancy": config["redundancy"],
        "features": features,
        "max_subset": args.max_subset,
        "threshold": args.redundancy_threshold,
        "pipe": pipe,
        "device": device,
        "set_level_names": set_level_names,
        "scorer_opts": opts,
        "scorer_names": names,
        "bench_name": bench_name,
        "gen_config": gen_config.as_dict(),
        "pipeline_path": pipeline_path,
        "pipeline_fingerprint": config["pipeline_fingerprint"],
    }
    # Validate every record's interventions up front: a bad target fails before any image is made.
    for record in records:
        enc = encoder.encode(record["prompt"])
        if enc.truncated:
            logger.warning(
                "prompt %s is longer than the text encoder's %d tokens; the rest is cut, as the stock "
                "pipeline cuts it (listed in extra.truncated_prompts)",
                record["id"],
                encoder.max_length,
            )
        from effeval.image.interventions import apply_intervention

        for spec in specs:
            if spec.name != "drop-redundant":
                apply_intervention(encoder, enc, spec, record)

    from tqdm.auto import tqdm

    todo = [
        i
        for i in range(len(records))
        if i % world == rank and not (out / "prompts" / f"{i:05d}.json").is_file()
    ]
    skipped = sum(1 for i in range(len(records)) if i % world == rank) - len(todo)
    if skipped:
        logger.info("resuming: %d finished prompt(s) skipped", skipped)
    logger.info("rank %d/%d: %d prompt(s) to do", rank, world, len(todo))
    for i in tqdm(
        todo,
        desc=f"image prompts (rank {rank})" if world > 1 else "image prompts",
        unit="prompt",
        disable=None,
    ):
        result = process_prompt(i, records[i], ctx)
        write_json_atomic(
            out / "prompts" / f"{i:05d}.json", result
        )  # persisted before the next prompt starts
    if dist is not None:
        dist.barrier()
    if rank == 0:
        path = merge(ctx, records, args, start_time, argv)
        logger.info("wrote %s", path)
        print(str(path))
    if dist is not None:
        dist.barrier()
        dist.destroy_process_group()
    return 0


def main(argv: list[str] | None = None) -> int:
    from effeval.commands.scaffold import run_guarded

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    return run_guarded(lambda: run(args, argv))  # "run" is the only (required) sub-command


if __name__ == "__main__":
    sys.exit(main())
