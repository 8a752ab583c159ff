"""``effeval image run``: settings, resume, data parallel (torch.distributed) and the per-prompt
work -- generate every intervention x seed, save, score -- then hand over to ``merge``.
The command line lives in ``effeval.image.__main__``; the merge of finished prompts into
results, rows and the report in ``effeval.image.merge``."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
# the run's state


@dataclass
class ImageRun:
    """What every prompt of a run shares: the loaded pipeline and its helpers, the work to do, and
    what ``merge`` writes into the result's provenance."""

    pipe: Any
    encoder: Any  # effeval.image.encoders.PromptEncoder
    generator: Any  # effeval.image.generation.ImageGenerator
    out: Path
    specs: list  # parsed interventions
    seeds: list[int]
    scorers: list  # per-image scorers
    config_hash: str
    device: str
    pipeline_path: Path
    pipeline_fingerprint: str
    bench_name: str
    gen_config: dict
    scorer_names: list[str] = field(default_factory=list)
    scorer_opts: dict = field(default_factory=dict)
    set_level_names: list[str] = field(default_factory=list)  # scored at merge time
    redundancy: bool = False  # analyse each prompt's redundant tokens (drop-redundant needs it)
    redundancy_threshold: float = 0.0
    max_subset: int = 1
    features: Any = None  # a CLIP image-feature function the redundancy analysis reuses
    batch: bool = False  # every intervention x seed of a prompt in one pipeline call (--batch)


# --------------------------------------------------------------------------------------------
# one prompt


def _save_png(image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


def process_prompt(index: int, record: dict, run: ImageRun) -> dict:
    """Every intervention x seed for one record: images saved, scored; returns the prompt file's content."""
    from effeval.image.interventions import apply_intervention
    from effeval.image.redundancy import analyse_prompt, expressions_for

    encoder, generator, out = run.encoder, run.generator, run.out
    enc = encoder.encode(record["prompt"])
    timing = {"generation_s": {}, "scoring_s": 0.0, "redundancy_s": 0.0}
    redundancy = None
    if run.redundancy:
        start = time.perf_counter()
        redundancy = analyse_prompt(
            generator,
            encoder,
            enc,
            expressions_for(record, encoder, enc),
            run.seeds,
            features=run.features,
            max_subset=run.max_subset,
            threshold=run.redundancy_threshold,
        )
        timing["redundancy_s"] = time.perf_counter() - start
    rows = []
    conds = [
        apply_intervention(
            encoder,
            enc,
            spec,
            record,
            redundant_positions=redundancy["redundant_positions"] if redundancy else None,
        )
        for spec in run.specs
    ]
    batched = None
    if run.batch:  # one call for all: its time is shared out equally
        start = time.perf_counter()
        batched = generator.images_batched(conds, run.seeds)
        share = (time.perf_counter() - start) / len(conds)
    for k, (spec, cond) in enumerate(zip(run.specs, conds)):
        start = time.perf_counter()
        images = batched[k] if batched is not None else generator.images(cond, run.seeds)
        timing["generation_s"][spec.label] = share if batched is not None else time.perf_counter() - start
        start = time.perf_counter()
        for seed, image in zip(run.seeds, images):
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
            for scorer in run.scorers:
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
        "config_hash": run.config_hash,
        "index": index,
        "id": record["id"],
        "rows": rows,
        "redundancy": redundancy,
        "truncated": enc.truncated,
        "timing": timing,
    }


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
    from effeval.image.encoders import check_pipeline_folder

    check_pipeline_folder(pipeline_path)  # a missing, foreign or damaged folder: before it loads
    check_image_size(pipeline_path, args.height, args.width)
    from effeval.image.encoders import load_pipeline
    from effeval.models.base import resolve_device

    device = resolve_device(args.device)
    pipe = load_pipeline(pipeline_path, device=device, dtype=args.dtype)
    zoo_info = pipeline_path / "effeval_zoo.json"  # zoo pipelines say how many steps they need
    steps = args.steps or (
        int(json.loads(zoo_info.read_text()).get("steps", 2)) if zoo_info.is_file() else 30
    )
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
    if getattr(args, "batch", False):  # only when asked: older runs' settings (and hashes) stay as they were
        config["batch"] = True
    config_hash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    out = Path(args.out)
    rank, world, dist = _dist()
    cfg_path = out / "run_config.json"
    # Every rank checks (so all fail alike instead of some waiting at a barrier). A run_config.json
    # binds the folder only once a prompt of that run is finished: one left by a run that stopped
    # before its first image (an older version wrote it before the checks below) protects nothing.
    finished = any((out / "prompts").glob("*.json"))
    if cfg_path.is_file() and finished:
        old = json.loads(cfg_path.read_text())
        if old.get("config_hash") != config_hash:
            diff = sorted(k for k in config if old.get("config", {}).get(k) != config[k])
            raise config_error(
                "--out",
                f"{str(out)!r} holds a run with other settings ({', '.join(diff)})",
                "rerun with the same settings to resume, or pass a new --out",
            )

    from effeval.image.encoders import PromptEncoder
    from effeval.image.generation import GenerationConfig, ImageGenerator

    set_level_names = [n for n in names if n in SET_LEVEL_SCORERS]
    scorers = scorers_for_run([n for n in names if n not in SET_LEVEL_SCORERS], opts, device)
    encoder = PromptEncoder(pipe)
    gen_config = GenerationConfig(
        steps=steps, guidance_scale=args.guidance, height=args.height, width=args.width
    )
    state = ImageRun(
        pipe=pipe,
        encoder=encoder,
        generator=ImageGenerator(pipe, gen_config),
        out=out,
        specs=specs,
        seeds=seeds,
        scorers=scorers,
        config_hash=config_hash,
        device=device,
        pipeline_path=pipeline_path,
        pipeline_fingerprint=config["pipeline_fingerprint"],
        bench_name=bench_name,
        gen_config=gen_config.as_dict(),
        scorer_names=names,
        scorer_opts=opts,
        set_level_names=set_level_names,
        redundancy=config["redundancy"],
        redundancy_threshold=args.redundancy_threshold,
        max_subset=args.max_subset,
        batch=bool(getattr(args, "batch", False)),
        features=next(
            (s.clip.image_features for s in scorers if hasattr(getattr(s, "clip", None), "image_features")),
            None,
        ),
    )
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
        for scorer in scorers:  # a scorer that can only score some prompts says so now
            if hasattr(scorer, "check_record"):
                scorer.check_record(record)

    # written only now that every check has passed: a refused run leaves nothing in --out
    if rank == 0 and not (cfg_path.is_file() and finished):
        write_json_atomic(cfg_path, {"config_hash": config_hash, "config": config})
    if dist is not None:
        dist.barrier()

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
        result = process_prompt(i, records[i], state)
        write_json_atomic(
            out / "prompts" / f"{i:05d}.json", result
        )  # persisted before the next prompt starts
    if dist is not None:
        dist.barrier()
    if rank == 0:
        from effeval.image.merge import merge

        path = merge(state, records, args, start_time, argv)
        logger.info("wrote %s", path)
        print(str(path))
    if dist is not None:
        dist.barrier()
        dist.destroy_process_group()
    return 0
