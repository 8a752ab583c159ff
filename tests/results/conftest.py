"""Fixtures for the results tests: one real lm-eval run on the zoo model, shared by the session."""

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def lm_eval_run(zoo_path, repo_root, tmp_path_factory):
    """A real ``lm_eval --model hf`` run (4 docs each of a multiple-choice and a generate_until task,
    with --log_samples): returns its --output_path folder."""
    out = tmp_path_factory.mktemp("lm_eval_out")
    # `effeval lm` is lm-eval's own CLI minus the ~9 s index of its built-in tasks
    effeval = Path(sys.executable).with_name("effeval")
    cmd = [
        str(effeval),
        "lm",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={zoo_path('llama-sp')},dtype=float32",
        "--tasks",
        "effeval_smoke_mc,effeval_smoke_gen",
        "--include_path",
        str(repo_root / "task_configs"),
        "--device",
        "cpu",
        "--limit",
        "4",
        "--log_samples",
        "--output_path",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out
