"""Data parallel (issue 17): two processes give the same per-sample outputs and the same merged
efficiency block as one, for a sampled effeval wrapper; the same seed gives the same samples.

The test launches the stock CLI as the README shows it, on CPU:
``ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m lm_eval`` (accelerate's
torch.distributed launcher, gloo; ``accelerate launch --num_processes 2 --cpu`` starts ONE
process, see docs/decisions.md). On GPUs drop ``ACCELERATE_USE_CPU=1``: the same code path.
Three documents over two ranks also exercise lm-eval's padding copy on the shorter rank.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MODEL_ARGS = "k=4,m=2,max_think_tokens=10,answer_tokens=3,think_end=in,seed=7"
TIME_FIELDS = {"wall_time_s", "tokens_per_s", "per_request_type", "processes"}


def lm_eval_run(cmd_prefix: list[str], out: Path, zoo_path, repo_root, extra_env: dict) -> tuple[dict, list]:
    cmd = cmd_prefix + [
        "-m",
        "lm_eval",
        "--model",
        "effeval-short-mk",
        "--model_args",
        f"pretrained={zoo_path('reasoner-sp')},{MODEL_ARGS}",
        "--tasks",
        "short_mk_arith_mini",
        "--include_path",
        str(repo_root / "task_configs"),
        "--limit",
        "3",
        "--device",
        "cpu",
        "--gen_kwargs",
        "do_sample=True,temperature=0.7",
        "--output_path",
        str(out),
        "--log_samples",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra_env}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (results,) = out.rglob("results_*.json")
    (samples,) = out.rglob("samples_short_mk_arith_mini_*.jsonl")
    lines = sorted((json.loads(line) for line in samples.open()), key=lambda s: s["doc_id"])
    return json.loads(results.read_text())["config"]["effeval"]["efficiency"], lines


@pytest.fixture(scope="module")
def evaluate_in_process(zoo_path, tmp_path_factory):
    """``seed -> (efficiency block, samples file bytes, samples sorted by doc_id)`` of one
    in-process lm-eval evaluation (one process), written with lm-eval's own samples writer."""
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    from effeval.models.short_mk import ShortMKLM
    from effeval.task_data import task_configs_dir

    def run(seed: int):
        import torch

        torch.set_num_threads(1)
        args = dict(part.split("=", 1) for part in MODEL_ARGS.split(","))
        args["seed"] = seed
        lm = ShortMKLM(pretrained=zoo_path("reasoner-sp"), device="cpu", **args)
        result = simple_evaluate(
            model=lm,
            tasks=["short_mk_arith_mini"],
            task_manager=TaskManager(include_path=str(task_configs_dir()), include_defaults=False),
            limit=3,
            gen_kwargs="do_sample=True,temperature=0.7",
            log_samples=True,
        )
        out = tmp_path_factory.mktemp(f"seed{seed}")
        tracker = EvaluationTracker(output_path=str(out))
        tracker.general_config_tracker.model_name_sanitized = "m"
        tracker.date_id = "2026-01-01T00-00-00.000000"
        tracker.save_results_samples("short_mk_arith_mini", result["samples"]["short_mk_arith_mini"])
        (path,) = out.rglob("samples_*.jsonl")
        lines = sorted((json.loads(line) for line in path.open()), key=lambda s: s["doc_id"])
        return lm.get_model_info()["effeval"]["efficiency"], path.read_bytes(), lines

    return run


def test_two_processes_match_one(evaluate_in_process, zoo_path, repo_root, tmp_path):
    """Same chosen text, same per-chain log and same scores per document; the merged efficiency
    block equals the single-process one except for times and ``processes`` (1 vs 2, which shows
    the documents really were split). Able to fail: with one random stream per rank, or stats
    not merged (or padding copies counted), rank 1's documents or the counts differ."""
    accelerate = [
        str(Path(sys.executable).with_name("accelerate")),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ]
    one_eff, _, one = evaluate_in_process(7)
    two_eff, two = lm_eval_run(accelerate, tmp_path / "two", zoo_path, repo_root, {"ACCELERATE_USE_CPU": "1"})

    assert one_eff["processes"] == 1 and two_eff["processes"] == 2
    assert {k: v for k, v in one_eff.items() if k not in TIME_FIELDS} == {
        k: v for k, v in two_eff.items() if k not in TIME_FIELDS
    }
    assert one_eff["requests"] == 3 and one_eff["chains_sampled"] == 12
    assert [s["doc_id"] for s in one] == [s["doc_id"] for s in two] == [0, 1, 2]
    for a, b in zip(one, two):
        # the padded document's resps hold lm-eval's extra copy on the shorter rank
        assert a["filtered_resps"] == b["filtered_resps"] and a["resps"][0] == b["resps"][0][:1]
        assert a["arguments"] == b["arguments"]  # includes every chain's log
        assert a["exact_match"] == b["exact_match"]


def test_same_seed_same_samples_file(evaluate_in_process):
    """Two evaluations with the same seed write byte-identical samples files (lm-eval's own
    writer), and another seed writes a different one. Able to fail: a run-level generator that
    keeps drawing across evaluations gives different chains the second time."""
    first = evaluate_in_process(7)[1]
    assert evaluate_in_process(7)[1] == first
    assert evaluate_in_process(8)[1] != first
