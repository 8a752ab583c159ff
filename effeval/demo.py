"""``make demo`` / ``python -m effeval.demo``: the main job, offline, on real models and data.

By default on the zoo's real tier (SmolLM2-135M, Gemma 3 270M; ``effeval.zoo.real``) and small
slices of the real-data tasks (``task_configs/real/``): runs the stock ``lm_eval`` CLI with
``--model hf`` and every ``effeval-*`` wrapper, converts each run to effeval JSON under
``demo-out/`` (validated; git ignores it, and each run empties it first so it shows only what this
run produced), and prints one table of quality and cost, where a failed step's row says FAILED.
Steps that execute model-written code (HumanEval) run only when the user opts in with
``--run-generated-code`` or ``EFFEVAL_RUN_GENERATED_CODE=1``, and then inside the guarded runner;
without it the demo says what it skipped. ``--tier random`` (or
``EFFEVAL_DEMO_TIER=random``) runs the tiny random zoo on the offline twins instead (seconds, but
its scores mean nothing); the demo falls back to it, with a notice, when the real tier is not
installed. ``REAL_STEPS`` / ``STEPS`` map each step's name to ``"module:function"``; a step
function takes a ``DemoContext`` and returns the effeval JSON paths it wrote. A failing step is
reported and the others still run (the demo then exits 1).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from effeval.code_runner import OPT_IN_ENV as RUN_CODE_ENV
from effeval.code_runner import opted_in_by_env
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

# The default tier: real models on real data (the image step has no real weights to use: its
# pipeline is the tiny random one, labelled as such in the table).
REAL_STEPS: Registry[Callable[[DemoContext], list[Path]]] = Registry(
    "demo step",
    {
        "zoo": "effeval.commands.demo_real:zoo",
        "hf-baseline": "effeval.commands.demo_real:hf_baseline",
        "hetero-spec": "effeval.commands.demo_real:hetero_spec",
        "pruned-ssm": "effeval.commands.demo_real:pruned",
        "short-mk": "effeval.commands.demo_real:short_mk",
        "spellm": "effeval.commands.demo_real:spellm",
        "image": "effeval.image.demo:run",
        "leaderboard": "effeval.results.leaderboard:demo_step",
    },
    argument="--only",
)


OUT_MARKER = ".effeval-demo-output"


@dataclass
class DemoContext:
    out_dir: Path
    trained: bool = False
    limit: int | None = None
    run_generated_code: bool = False
    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def code_flags(self) -> list[str]:
        """lm-eval's opt-in for tasks that execute generated code: only when the user gave it."""
        return ["--confirm_run_unsafe_code"] if self.run_generated_code else []

    def skipped_code(self, task: str, instead: str | None = None) -> None:
        note = f"{task} skipped: it executes model-written code. Opt in with --run-generated-code or {RUN_CODE_ENV}=1"
        if instead:
            note += f" (this step runs {instead} instead)"
        if note not in self.skipped:
            self.skipped.append(note)
            print(f"    NOTICE: {note}", flush=True)

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
    from effeval.formatting import format_number

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
                value = metrics[metric]["value"]
                stderr = metrics[metric].get("stderr")
                spread = (
                    f"±{format_number(stderr, 2)}" if isinstance(stderr, (int, float)) and stderr > 0 else ""
                )
                name = task.replace("effeval_real_", "").replace("effeval_", "")
                scores.append(f"{name}:{metric}={format_number(value, 3, thousands=True)}{spread}")
        eff = data.get("efficiency", {})
        cost = [f"wall={eff['wall_time_s']:.1f}s"] if isinstance(eff.get("wall_time_s"), (int, float)) else []
        for key in (
            "tokens_per_s",
            "acceptance_rate",
            "speedup",
            "speedup_vs_ar",
            "global_sparsity",
            "thinking_tokens_saved_ratio",
            "head_vs_projection_params",
        ):
            if isinstance(eff.get(key), (int, float)):
                cost.append(f"{key}={format_number(eff[key], 3, thousands=True)}")
        rows.append(
            {
                "run": data["run_id"].removeprefix("demo__"),
                "model": data.get("model", {}).get("name", ""),
                "method": data["method"]["name"],
                "quality": " ".join(scores[:4]),
                "cost": " ".join(cost),
            }
        )
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default="demo-out",
        help="where effeval JSON goes (default demo-out, ignored by git); emptied at the start of each "
        "run, so it must be a previous demo's output folder or empty",
    )
    parser.add_argument(
        "--run-generated-code",
        action="store_true",
        default=opted_in_by_env(),
        help=f"also run the steps that execute model-written code (HumanEval), in the guarded runner "
        f"(env {RUN_CODE_ENV}=1); off by default",
    )
    parser.add_argument(
        "--tier",
        choices=["real", "random"],
        default=os.environ.get("EFFEVAL_DEMO_TIER") or "real",
        help="real: SmolLM2 / Gemma 3 on real-data slices (default; env EFFEVAL_DEMO_TIER); "
        "random: the tiny random zoo on offline twins (fast, meaningless scores)",
    )
    parser.add_argument(
        "--trained", action="store_true", help="random tier: use the briefly trained zoo (slower to build)"
    )
    parser.add_argument("--limit", type=int, default=None, help="documents per task (default: all)")
    parser.add_argument("--only", default=None, help=f"comma-separated step names to run ({','.join(STEPS)})")


def choose_tier(requested: str) -> str:
    """``requested``, or "random" with a notice when the real tier is not installed here."""
    if requested != "real":
        return requested
    from effeval.commands.demo_real import real_tier_problem

    problem = real_tier_problem()
    if problem is None:
        return "real"
    print(
        "NOTICE: the real tier (SmolLM2-135M, Gemma 3 270M) is not installed, so this demo runs the "
        "tiny RANDOM zoo: its scores mean nothing.\n"
        f"NOTICE: {problem}",
        flush=True,
    )
    return "random"


def prepare_out_dir(out: Path) -> None:
    """Empty ``out`` (a previous demo's output, recognised by its marker file) or create it; a
    folder with other content is refused, never deleted."""
    from effeval.errors import config_error

    if out.exists() and not out.is_dir():
        raise config_error("--out", f"{out} is a file", "name a folder (default demo-out)")
    if out.is_dir() and any(out.iterdir()):
        if not (out / OUT_MARKER).is_file():
            raise config_error(
                "--out",
                f"{out} holds files that no demo wrote (each run empties its folder)",
                "name an empty or new folder, or a previous demo's --out",
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / OUT_MARKER).write_text("written by python -m effeval.demo; emptied at the start of each run\n")


def run(args: argparse.Namespace) -> int:
    from effeval.errors import config_error

    if args.limit is not None and args.limit < 1:
        raise config_error(
            "--limit", f"{args.limit} is not positive", "pass --limit 1 or more, or leave it out"
        )
    tier = choose_tier(args.tier)
    registry = REAL_STEPS if tier == "real" else STEPS
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else list(registry)
    unknown = [s for s in only if s not in registry]
    if unknown:
        raise registry.unknown_error(unknown[0])
    ctx = DemoContext(
        out_dir=Path(args.out),
        trained=args.trained,
        limit=args.limit,
        run_generated_code=args.run_generated_code,
    )
    prepare_out_dir(ctx.out_dir)
    steps = [s for s in registry if s in only]
    print(f"demo: {tier} tier, steps {', '.join(steps)}", flush=True)
    total = time.perf_counter()
    failed: dict[str, str] = {}
    for i, name in enumerate(steps, 1):
        fn = registry.load(name)
        print(f"[{i}/{len(steps)}] {name} ...", flush=True)
        start = time.perf_counter()
        try:
            fn(ctx)
        except Exception as exc:  # one broken method must not hide the others' results
            failed[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
            logger.error("demo step %s failed: %s", name, failed[name])
            print(f"[{i}/{len(steps)}] {name} FAILED after {time.perf_counter() - start:.1f}s", flush=True)
            continue
        print(f"[{i}/{len(steps)}] {name} done in {time.perf_counter() - start:.1f}s", flush=True)
    from effeval.results.cli import validate

    lm_files = [p for p in ctx.written if p.suffix == ".json"]
    if lm_files and validate([str(p) for p in lm_files]) != 0:
        print("demo: some effeval JSON did not validate", file=sys.stderr)
        return 1
    rows = _summary_rows(lm_files) + [
        {"run": name, "model": "", "method": "", "quality": "FAILED", "cost": why[:80]}
        for name, why in failed.items()
    ]
    if rows:
        from effeval.bench.common import print_table

        print()
        print_table(rows, ["run", "model", "method", "quality", "cost"])
    for name, why in failed.items():
        print(f"demo step {name} failed: {why}", file=sys.stderr)
    for note in ctx.skipped:
        print(f"NOTICE: {note}", flush=True)
    import resource

    # CPU seconds of the demo and every lm_eval it ran: the machine-independent half of its cost
    cpu = sum(
        u.ru_utime + u.ru_stime
        for u in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )
    print(
        f"\ndemo ({tier} tier) finished in {time.perf_counter() - total:.1f}s wall, {cpu:.0f} CPU-s "
        f"(load average {os.getloadavg()[0]:.1f}); effeval JSON in {ctx.out_dir}/"
    )
    return 1 if failed else 0


main = Command("python -m effeval.demo", __doc__.splitlines()[0], add_arguments, run)

if __name__ == "__main__":
    sys.exit(main())
