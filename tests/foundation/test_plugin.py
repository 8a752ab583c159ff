"""The stock lm-eval CLI finds effeval-* models with no user import, and the built-ins survive."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
OURS = ["effeval-hetero-spec", "effeval-short-mk", "effeval-spellm", "effeval-pruned-ssm"]


def run(cmd, **kw):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, **kw)


def test_registry_has_ours_and_the_builtins_in_a_fresh_interpreter():
    code = (
        "from lm_eval.api.registry import get_model, model_registry\n"
        "import sys, json\n"
        "print(json.dumps({'names': sorted(model_registry.keys()),"
        " 'hf': get_model('hf').__name__, 'heavy': [m for m in ('torch', 'transformers') if m in sys.modules]}))"
    )
    out = run([sys.executable, "-c", code], cwd="/")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout.strip().splitlines()[-1])
    for name in OURS + ["hf", "vllm", "dummy"]:
        assert name in info["names"]
    assert info["hf"] == "HFLM"


def test_hook_is_cheap_and_imports_nothing_heavy():
    out = run([sys.executable, "-X", "importtime", "-c", "import sys; print(sorted(sys.modules))"], cwd="/")
    assert out.returncode == 0
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("import time:") and "cumulative" not in ln]
    cumulative_us = {ln.split("|")[-1].strip(): int(ln.split("|")[1]) for ln in lines}
    assert "effeval._lm_eval_hook" in cumulative_us, "the .pth hook did not run at interpreter start"
    assert cumulative_us["effeval._lm_eval_hook"] < 30_000  # microseconds: the ≤30 ms budget
    loaded = out.stdout
    for heavy in ("'torch'", "'transformers'", "'lm_eval'", "'numpy'"):
        assert heavy not in loaded


@pytest.fixture(scope="module")
def hf_run(tmp_path_factory, zoo_path):
    """One real `lm_eval --model hf` run on the smoke tasks (via the stock console script)."""
    out = tmp_path_factory.mktemp("lm_eval_hf")
    proc = run(
        [
            str(BIN / "lm_eval"),
            "--model",
            "hf",
            "--model_args",
            f"pretrained={zoo_path('llama-sp')},dtype=float32",
            "--tasks",
            "effeval_smoke",
            "--include_path",
            str(REPO / "task_configs"),
            "--device",
            "cuda:0",
            "--batch_size",
            "4",
            "--limit",
            "4",
            "--output_path",
            str(out),
            "--log_samples",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_stock_cli_runs_builtin_hf_on_our_offline_tasks(hf_run):
    results = list(hf_run.rglob("results_*.json"))
    assert len(results) == 1
    data = json.loads(results[0].read_text())
    assert {"effeval_smoke_mc", "effeval_smoke_ppl", "effeval_smoke_gen"} <= set(data["results"])
    # lm-eval scored the first 4 documents of our offline JSONL, loaded through our custom_dataset
    from effeval.task_data import data_dir, iter_jsonl

    (samples,) = hf_run.rglob("samples_effeval_smoke_mc_*.jsonl")
    scored = [json.loads(line)["doc"] for line in samples.read_text().splitlines() if line.strip()]
    assert scored == [doc for _, doc in list(iter_jsonl(data_dir() / "smoke" / "mc.jsonl"))[:4]]


def test_converted_run_is_valid_effeval_json(hf_run, tmp_path):
    out = run([str(BIN / "effeval"), "results", "convert", str(hf_run), "--out", str(tmp_path)])
    assert out.returncode == 0, out.stderr
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1
    check = run([str(BIN / "effeval"), "results", "validate", str(tmp_path)])
    assert check.returncode == 0, check.stdout + check.stderr
    doc = json.loads(files[0].read_text())
    assert doc["schema"] == "effeval/result/v1" and doc["model"]["wrapper"] == "hf"
    assert doc["tasks"]["effeval_smoke_mc"]["acc"]["higher_is_better"] is True
    assert "wall_time_s" in doc["efficiency"]


def test_python_dash_m_lm_eval_and_simple_evaluate_see_effeval_models(tmp_path, zoo_path):
    # `python -m lm_eval` (no subcommand) lists models through the same registry.
    code = (
        "import lm_eval\n"
        "try:\n"
        "    lm_eval.simple_evaluate(model='effeval-no-such-model', tasks=['effeval_smoke_mc'])\n"
        "except Exception as e:\n"
        "    print(str(e))\n"
    )
    out = run([sys.executable, "-c", code], cwd=str(tmp_path))
    assert "effeval-hetero-spec" in out.stdout and "hf" in out.stdout, out.stdout + out.stderr
    proc = run(
        [sys.executable, "-m", "lm_eval", "ls", "tasks", "--include_path", str(REPO / "task_configs")],
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0 or "effeval_smoke" in proc.stdout


def test_effeval_front_door_rejects_unknown_model_listing_ours():
    out = run([str(BIN / "effeval"), "lm", "--model", "effeval-nope", "--tasks", "effeval_smoke_mc"])
    assert out.returncode == 2
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("effeval error: --model: unknown model 'effeval-nope'")
    for name in OURS:
        assert name in err[0]


def test_effeval_front_door_rejects_malformed_model_args():
    out = run([str(BIN / "effeval"), "lm", "--model", "hf", "--model_args", "pretrained", "--tasks", "x"])
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "effeval error: --model_args: 'pretrained' has no '='. Fix: write key=value pairs separated by commas, "
        "e.g. pretrained=DIR,dtype=float32 (model hf)"
    ]


def test_results_convert_rejects_files_that_are_not_lm_eval_output(tmp_path):
    bogus = tmp_path / "results_2026.json"
    bogus.write_text(json.dumps({"hello": 1}))
    out = run([str(BIN / "effeval"), "results", "convert", str(bogus), "--out", str(tmp_path / "o")])
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "not lm-eval output" in lines[0] and "Fix:" in lines[0]
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_stock_cli_runs_an_effeval_model(tmp_path, zoo_path):
    out = tmp_path / "out"
    proc = run(
        [
            str(BIN / "lm_eval"),
            "--model",
            "effeval-hetero-spec",
            "--model_args",
            f"pretrained={zoo_path('llama-sp')},drafter={zoo_path('qwen-tekken')},algorithm=ar",
            "--tasks",
            "effeval_smoke_gen",
            "--include_path",
            str(REPO / "task_configs"),
            "--batch_size",
            "1",
            "--limit",
            "2",
            "--output_path",
            str(out),
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(next(out.rglob("results_*.json")).read_text())
    eff = data["config"]["effeval"]["efficiency"]
    assert data["config"]["effeval"]["model_name"] == "effeval-hetero-spec"
    assert eff["requests"] == 2 and eff["generated_tokens"] > 0 and eff["wall_time_s"] > 0


def test_stock_cli_prints_one_line_for_a_missing_pretrained_dir(tmp_path):
    proc = run(
        [
            str(BIN / "lm_eval"),
            "--model",
            "effeval-hetero-spec",
            "--model_args",
            f"pretrained={tmp_path}/missing,drafter={tmp_path}/missing2",
            "--tasks",
            "effeval_smoke_gen",
            "--include_path",
            str(REPO / "task_configs"),
        ]
    )
    assert proc.returncode == 2  # bad input exits 2 under the stock CLI too
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "effeval error: effeval-hetero-spec model_args 'pretrained': no model directory at"
    )
    assert "Fix:" in last
