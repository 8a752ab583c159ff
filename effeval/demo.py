"""``make demo`` / ``python -m effeval.demo``: the main job, offline, on the tiny zoo.

Builds the zoo, runs the stock ``lm_eval`` CLI with ``--model hf`` and every ``effeval-*``
wrapper on offline tasks, converts each run to effeval JSON under ``results/demo/`` (validated),
and prints one table of quality and cost. Each method contributes one step in its own module:
``STEPS`` maps each step's name to ``"module:function"``; a step function takes a ``DemoContext`` and returns the
effeval JSON paths it wrote.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from effeval.commands.scaffold import Command
from effeval.registry import Registry

logger = logging.getLogger("effeval.demo")

STEPS: Registry[Callable[[DemoContext], list[Path]]] = Registry(
    "demo step",
    {
        "zoo": "effeval.demo:zoo_step",
        "hf-baseline": "effeval.demo:hf_baseline_step",
        "hetero-spec": "effeval.commands.demo_steps:hetero_spec",
        "short-mk": "effeval.commands.demo_steps:short_mk",
        "spellm": "effeval.commands.demo_steps:spellm",
        "pruned-ssm": "effeval.commands.demo_steps:pruned_ssm",
        "image": "effeval.image.demo:run",
        "leaderboard": "effeval.results.leaderboard:demo_step",
    },
    argument="--only",
)


@dataclass
class DemoContext:
    out_dir: Path
    trained: bool = False
    limit: int | None = None
    written: list[Path] = field(default_factory=list)

    def zoo(self, name: str) -> str:
        from effeval import zoo

        return str(zoo.get(name, trained=self.trained))

    def run_lm_eval(
        self, run_name: str, model: str, model_args: str, tasks: str, extra_args: list[str] | None = None
    ) -> Path:
        """Run lm-eval's CLI (through ``effeval lm``), convert its output, write effeval JSON."""
        from effeval.results.convert import convert_lm_eval, find_results_files
        from effeval.results.writer import write_result
        from effeval.task_data import task_configs_dir

        raw = self.out_dir / "lm_eval" / run_name
        shutil.rmtree(raw, ignore_errors=True)
        # `effeval lm` is lm-eval's own CLI plus our task folder; it skips indexing lm-eval's ~14k
        # built-in tasks (~9 s per run) since every demo task is ours.
        effeval = Path(sys.executable).with_name("effeval")
        cmd = [
            str(effeval) if effeval.exists() else "effeval",
            "lm",
            "--model",
            model,
            "--model_args",
            model_args,
            "--tasks",
            tasks,
            "--include_path",
            str(task_configs_dir()),
            "--device",
            "cpu",
            "--batch_size",
            "4",
            "--output_path",
            str(raw),
            "--log_samples",
            *(extra_args or []),
        ]
        if self.limit:
            cmd += ["--limit", str(self.limit)]
        logger.info("demo: %s", " ".join(cmd))
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            raise RuntimeError(f"demo step {run_name!r}: lm_eval exited with {proc.returncode}")
        result = convert_lm_eval(find_results_files(raw)[-1])
        result["run_id"] = f"demo__{run_name}"
        result["provenance"]["command"] = " ".join(cmd)
        result["efficiency"].setdefault("process_wall_time_s", time.perf_counter() - start)
        path = write_result(self.out_dir / f"{run_name}.json", result)
        self.written.append(path)
        return path


def zoo_step(ctx: DemoContext) -> list[Path]:
    from effeval import zoo

    for name, path in zoo.build_all(trained=ctx.trained).items():
        print(f"    zoo {name}: {path}", flush=True)
    return []


def hf_baseline_step(ctx: DemoContext) -> list[Path]:
    target = ctx.zoo("llama-sp")
    return [ctx.run_lm_eval("hf-llama-sp", "hf", f"pretrained={target},dtype=float32", "effeval_smoke")]


def _summary_rows(paths: list[Path]) -> list[dict]:
    rows = []
    for path in paths:
        data = json.loads(path.read_text())
        if data.get("kind") not in ("lm", "image"):
            continue
        scores = []
        preferred = (
            "acc",
            "exact_match",
            "rougeL",
            "pass@1",
            "f1",
            "word_perplexity",
            "leakage_rate",
            "clipscore",
        )
        for task, metrics in sorted(data.get("tasks", {}).items()):
            named = [m for m in preferred if metrics.get(m, {}).get("value") is not None]
            pick = (
                named[:1] or [m for m, v in metrics.items() if isinstance(v.get("value"), (int, float))][:1]
            )
            for metric in pick:
                scores.append(f"{task.replace('effeval_', '')}:{metric}={metrics[metric]['value']:.3g}")
        eff = data.get("efficiency", {})
        cost = [f"wall={eff['wall_time_s']:.1f}s"] if isinstance(eff.get("wall_time_s"), (int, float)) else []
        for key in (
            "tokens_per_s",
            "acceptance_rate",
            "global_sparsity",
            "thinking_tokens_saved_ratio",
            "head_vs_projection_params",
        ):
            if isinstance(eff.get(key), (int, float)):
                cost.append(f"{key}={eff[key]:.3g}")
        rows.append(
            {
                "run": data["run_id"],
                "method": data["method"]["name"],
                "quality": " ".join(scores[:4]),
                "cost": " ".join(cost),
            }
        )
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", default="results/demo", help="where effeval JSON goes (default results/demo)"
    )
    parser.add_argument(
        "--trained", action="store_true", help="use the briefly trained zoo (slower to build)"
    )
    parser.add_argument("--limit", type=int, default=None, help="documents per task (default: all)")
    parser.add_argument("--only", default=None, help=f"comma-separated step names to run ({','.join(STEPS)})")


def run(args: argparse.Namespace) -> int:
    ctx = DemoContext(out_dir=Path(args.out), trained=args.trained, limit=args.limit)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else list(STEPS)
    unknown = [s for s in only if s not in STEPS]
    if unknown:
        raise STEPS.unknown_error(unknown[0])
    steps = [s for s in STEPS if s in only]
    total = time.perf_counter()
    for i, name in enumerate(steps, 1):
        fn = STEPS.load(name)
        print(f"[{i}/{len(steps)}] {name} ...", flush=True)
        start = time.perf_counter()
        fn(ctx)
        print(f"[{i}/{len(steps)}] {name} done in {time.perf_counter() - start:.1f}s", flush=True)
    from effeval.results.cli import validate

    lm_files = [p for p in ctx.written if p.suffix == ".json"]
    if lm_files and validate([str(p) for p in lm_files]) != 0:
        print("demo: some effeval JSON did not validate", file=sys.stderr)
        return 1
    rows = _summary_rows(lm_files)
    if rows:
        from effeval.bench.common import print_table

        print()
        print_table(rows, ["run", "method", "quality", "cost"])
    print(f"\ndemo finished in {time.perf_counter() - total:.1f}s; effeval JSON in {ctx.out_dir}/")
    return 0


main = Command("python -m effeval.demo", __doc__.splitlines()[0], add_arguments, run)

if __name__ == "__main__":
    sys.exit(main())
