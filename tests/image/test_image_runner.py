"""The runner: outputs, resume after kill -9, torchrun data parallel, bad input -- all on CPU.

A model-free scorer (``image_helpers:PixelScorer``) keeps these fast; the real scorers are tested
in test_scorers.py. Every run here uses one torch thread, so float results are comparable
between a plain run and torchrun's single-threaded workers.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from effeval.errors import ConfigError

HERE = Path(__file__).resolve().parent
RECORDS = [
    {
        "id": "p1",
        "prompt": "a zebra and a cup on a table",
        "items": ["zebra", "cup"],
        "leak": {"source": "zebra", "target": "cup"},
    },
    {
        "id": "p2",
        "prompt": "a tiger and a sofa in a field",
        "items": ["tiger", "sofa"],
        "leak": {"source": "tiger", "target": "sofa"},
    },
    {
        "id": "p3",
        "prompt": "a leopard and a handbag in a room",
        "items": ["leopard", "handbag"],
        "leak": {"source": "leopard", "target": "handbag"},
    },
    {
        "id": "p4",
        "prompt": "a peacock and a vase on a shelf",
        "items": ["peacock", "vase"],
        "leak": {"source": "peacock", "target": "vase"},
    },
]
INTERVENTIONS = ["none", "patch:{leak.source}", "drop:{leak.source}@mask"]


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "mini.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return path


def _args(pipeline, bench, out, extra=()):
    args = [
        "run",
        "--pipeline",
        str(pipeline),
        "--benchmark",
        str(bench),
        "--scorers",
        "image_helpers:PixelScorer",
        "--seeds",
        "0,1",
        "--out",
        str(out),
        "--bootstrap",
        "50",
    ]
    for spec in INTERVENTIONS:
        args += ["--intervention", spec]
    return args + list(extra)


def _env():
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        HF_HUB_OFFLINE="1",
    )
    return env


def _comparable(out: Path) -> dict:
    """Everything a run produces except wall-clock facts (creation time, timings, environment)."""
    result = json.loads((out / "results.json").read_text())
    for key in ("created", "efficiency", "environment", "provenance"):
        result.pop(key)
    images = {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "images").rglob("*.png"))}
    return {"result": result, "rows": (out / "per_prompt.jsonl").read_text(), "images": images}


@pytest.fixture(scope="module")
def plain_run(zoo_path, bench_file, tmp_path_factory):
    import torch

    from effeval.image.__main__ import main

    out = tmp_path_factory.mktemp("plain") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(_args(zoo_path("sd-tiny"), bench_file, out)) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def test_outputs(plain_run):
    from effeval.results.schema import validate_result

    result = json.loads((plain_run / "results.json").read_text())
    validate_result(result, where="results.json")
    assert result["kind"] == "image"
    rows = [json.loads(line) for line in (plain_run / "per_prompt.jsonl").read_text().splitlines()]
    assert len(rows) == len(RECORDS) * len(INTERVENTIONS) * 2
    for row in rows:
        assert (plain_run / row["image"]).is_file()
        assert 0.0 <= row["mean_pixel"] <= 1.0
    # the mask intervention really shortened the sequence; patch kept it
    by = {(r["id"], r["intervention"], r["seed"]): r for r in rows}
    assert by[("p1", "drop:{leak.source}@mask", 0)]["sequence_length"] == 76
    assert by[("p1", "patch:{leak.source}", 0)]["sequence_length"] == 77
    assert by[("p1", "patch:{leak.source}", 0)]["positions"]["changed_positions"] == [2]  # "zebra"
    task = result["tasks"]["mini/patch:{leak.source}"]
    assert task["mean_pixel"]["n_samples"] == len(RECORDS)
    assert "mean_pixel_abs_change" in task  # change vs none, with its CI
    assert result["extra"]["scorers"][0]["scorer"] == "pixel"
    eff = result["efficiency"]
    mask_lengths = [r["sequence_length"] for r in rows if r["intervention"] == "drop:{leak.source}@mask"]
    assert eff["images"] == len(rows)
    assert (
        eff["per_intervention"]["drop:{leak.source}@mask"]["mean_sequence_length"]
        == sum(mask_lengths) / len(mask_lengths)
        < 77
    )
    html = (plain_run / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(rows)


def test_rerun_skips_finished_prompts(plain_run, zoo_path, bench_file):
    from effeval.image.__main__ import main

    before = {p: p.stat().st_mtime_ns for p in (plain_run / "prompts").glob("*.json")}
    images_before = {p: p.stat().st_mtime_ns for p in (plain_run / "images").rglob("*.png")}
    assert main(_args(zoo_path("sd-tiny"), bench_file, plain_run)) == 0
    assert {p: p.stat().st_mtime_ns for p in (plain_run / "prompts").glob("*.json")} == before
    assert {p: p.stat().st_mtime_ns for p in (plain_run / "images").rglob("*.png")} == images_before


def test_other_settings_in_same_out_are_refused(plain_run, zoo_path, bench_file, monkeypatch):
    from effeval.image.__main__ import main

    monkeypatch.setenv("EFFEVAL_TRACEBACK", "1")  # the command re-raises instead of printing one line

    with pytest.raises(ConfigError, match="--out.*other settings.*seeds"):
        main(_args(zoo_path("sd-tiny"), bench_file, plain_run) + ["--seeds", "3"])


def test_kill_9_then_resume_equals_plain_run(plain_run, zoo_path, bench_file, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "effeval.image", *_args(zoo_path("sd-tiny"), bench_file, out)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (out / "prompts" / "00000.json").exists():
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = list((out / "prompts").glob("*.json"))
    assert 1 <= len(done) < len(RECORDS) and not (out / "results.json").exists()
    resumed = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "finished prompt(s) skipped" in resumed.stderr
    assert _comparable(out) == _comparable(plain_run)


def test_torchrun_two_processes_equals_plain_run(plain_run, zoo_path, bench_file, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    out = tmp_path / "ddp"
    cmd = [
        str(torchrun),
        "--standalone",
        "--nproc_per_node",
        "2",  # --standalone: a free port, no clash
        "-m",
        "effeval.image",
        *_args(zoo_path("sd-tiny"), bench_file, out),
    ]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 1/2: 2 prompt(s) to do" in proc.stderr  # prompts were sharded
    assert _comparable(out) == _comparable(plain_run)


def test_bad_input(zoo_path, bench_file, tmp_path, monkeypatch):
    from effeval.image.__main__ import main

    monkeypatch.setenv("EFFEVAL_TRACEBACK", "1")  # the command re-raises instead of printing one line

    sd = zoo_path("sd-tiny")
    not_pipe = tmp_path / "not_a_pipeline"
    not_pipe.mkdir()
    (not_pipe / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="--pipeline.*not a diffusers pipeline"):
        main(_args(not_pipe, bench_file, tmp_path / "o1"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(RECORDS[0]) + "\n" + '{"id": "x", "prompt": "a cat"\n')
    with pytest.raises(ConfigError, match=r"bad\.jsonl:2"):
        main(_args(sd, bad, tmp_path / "o2"))
    for spec, message in [
        ("drop:giraffe", "'giraffe' is not a word/expression"),
        ("patch:giraffe", "item 'giraffe' is not in the prompt"),
        ("keep:{colour}", "has no field 'colour'"),
    ]:
        out = tmp_path / f"o-{spec.split(':')[0]}"
        with pytest.raises(ConfigError, match=message):
            main(
                [
                    "run",
                    "--pipeline",
                    str(sd),
                    "--benchmark",
                    str(bench_file),
                    "--scorers",
                    "none",
                    "--intervention",
                    spec,
                    "--out",
                    str(out),
                ]
            )
        assert not list(out.rglob("*.png"))  # refused before any image was made
    with pytest.raises(ConfigError, match="--seeds"):
        main(
            [
                "run",
                "--pipeline",
                str(sd),
                "--benchmark",
                str(bench_file),
                "--seeds",
                "1,x",
                "--out",
                str(tmp_path / "o3"),
            ]
        )
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_drop_redundant_end_to_end(zoo_path, tmp_path):
    """mwe-001 (Golden Gate Bridge): with threshold -1 any single token "reproduces" the expression,
    so drop-redundant must drop exactly the other two, and the 1-2 token rate is 1."""
    from effeval.image.__main__ import main

    out = tmp_path / "mwe"
    args = [
        "run",
        "--pipeline",
        zoo_path("sd-tiny"),
        "--benchmark",
        "mwe",
        "--limit",
        "1",
        "--scorers",
        "none",
        "--intervention",
        "none",
        "--intervention",
        "drop-redundant",
        "--redundancy-threshold",
        "-1",
        "--out",
        str(out),
        "--no-report",
    ]
    assert main(args) == 0
    red = json.loads((out / "redundancy.json").read_text())
    (expr,) = red["per_prompt"][0]["expressions"]
    assert expr["expression"] == "Golden Gate Bridge" and len(expr["minimal_positions"]) == 1
    redundant = red["per_prompt"][0]["redundant_positions"]
    assert sorted(set(expr["positions"]) - set(expr["minimal_positions"])) == redundant
    rows = [json.loads(x) for x in (out / "per_prompt.jsonl").read_text().splitlines()]
    (dropped,) = [r for r in rows if r["intervention"] == "drop-redundant"]
    assert dropped["positions"]["changed_positions"] == redundant
    result = json.loads((out / "results.json").read_text())
    assert result["tasks"]["mwe/redundancy"]["represented_by_1_2_rate"]["value"] == 1.0


def test_batch_makes_the_same_images_in_fewer_calls(plain_run, zoo_path, bench_file, tmp_path):
    """``--batch``: every intervention x seed of a prompt in one pipeline call (the mask-mode
    intervention, a shorter sequence, in a call of its own), each row with its own seed's
    generator: the images are the unbatched run's up to the last bits (no pixel off by more than
    2 of 255). Able to fail: rows given the wrong generators (seeds swapped between images of one
    call) differ by far more."""
    import numpy as np
    import torch
    from PIL import Image

    from effeval.image.__main__ import main

    out = tmp_path / "batched"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(_args(zoo_path("sd-tiny"), bench_file, out, ["--batch"])) == 0
    finally:
        torch.set_num_threads(threads)
    plain = sorted(p.relative_to(plain_run) for p in (plain_run / "images").rglob("*.png"))
    assert plain == sorted(p.relative_to(out) for p in (out / "images").rglob("*.png"))
    worst = 0
    for rel in plain:
        a = np.asarray(Image.open(plain_run / rel), dtype=np.int16)
        b = np.asarray(Image.open(out / rel), dtype=np.int16)
        worst = max(worst, int(np.abs(a - b).max()))
    assert worst <= 2, worst
    assert json.loads((out / "run_config.json").read_text())["config"]["batch"] is True
