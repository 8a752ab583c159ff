"""Merging an image run: finished prompt files -> per_prompt.jsonl, set-level scores (FID/KID),
metrics with bootstrap CIs and changes vs ``none`` (results.json), and the HTML report."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

from effeval.errors import ConfigError, config_error
from effeval.image.runner import RESULT_FILE, ROW_FIELDS, ROWS_FILE, ImageRun, scorers_for_run

logger = logging.getLogger("effeval.image")


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


def merge(run: ImageRun, records: list[dict], args, start_time: float, argv: list[str]) -> Path:
    from effeval.image.redundancy import redundancy_rates
    from effeval.results.convert import environment_block
    from effeval.results.writer import write_json_atomic, write_result, write_text_atomic

    out = run.out
    prompt_files = []
    for i in range(len(records)):
        path = out / "prompts" / f"{i:05d}.json"
        if not path.is_file():
            raise ConfigError(
                f"{path}: missing after the run (a process failed?). Fix: rerun the same command to resume"
            )
        prompt_files.append(json.loads(path.read_text()))
    rows = [r for p in prompt_files for r in p["rows"]]
    labels = [s.label for s in run.specs]
    baseline_label = "none" if "none" in labels else None
    set_level = _set_level_scores(
        run.set_level_names,
        run.scorer_opts,
        run.device,
        run.specs,
        records,
        rows,
        out,
        baseline_label,
    )
    red = [p["redundancy"] for p in prompt_files if p.get("redundancy")]
    red_agg = redundancy_rates(red) if red else None
    bench = run.bench_name
    tasks, aggregates = _tasks_block(bench, labels, rows, baseline_label, args.bootstrap, set_level, red_agg)
    write_text_atomic(out / ROWS_FILE, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))

    gen_s = {lab: sum(p["timing"]["generation_s"].get(lab, 0.0) for p in prompt_files) for lab in labels}
    n_img = {lab: sum(1 for r in rows if r["intervention"] == lab) for lab in labels}
    seq = {lab: [r["sequence_length"] for r in rows if r["intervention"] == lab] for lab in labels}
    total_gen = sum(gen_s.values())
    pipe = run.pipe
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
        "run_id": f"image__{bench}__{run.config_hash[:12]}",
        "created": _dt.datetime.now(tz=_dt.timezone.utc).isoformat(),
        "model": {
            "name": run.pipeline_path.name,
            "source": str(run.pipeline_path),
            "revision": f"config-sha256:{run.pipeline_fingerprint}",
            "dtype": args.dtype,
            "parameters": int(n_params),
            "wrapper": type(pipe).__name__,
        },
        "method": {
            "name": "effeval-image",
            "args": {
                "interventions": labels,
                "seeds": run.seeds,
                "benchmark": args.benchmark,
                "n_prompts": len(records),
                "scorers": run.scorer_names,
                **run.gen_config,
                "redundancy_threshold": run.redundancy_threshold,
                "max_subset": run.max_subset,
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
        "environment": environment_block(run.device),
        "provenance": {"source_files": source_files, "command": "python -m effeval.image " + " ".join(argv)},
        "samples": ROWS_FILE,
        "extra": {
            "benchmark": bench,
            "scorers": [s.metadata() for s in run.scorers],
            "set_level_scorers": run.set_level_names,
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
