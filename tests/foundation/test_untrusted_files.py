"""Files are data: a checkpoint cannot run code, names read from files stay inside --out, and
written files are whole and keep the user's umask (issue 17)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from effeval.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


class _RunsCode:
    """Unpickling this calls os.system: what a crafted state.pt would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_distill_checkpoint_does_not_run_code(tmp_path):
    """``spellm distill`` resumes from ``--out/checkpoint/state.pt``. A pickle that runs a shell
    command is refused with one ConfigError and the command never runs. Able to fail: the same
    file loaded the old way (``weights_only=False``) creates the marker, checked first."""
    import torch

    from effeval.methods.spellm.distill import CHECKPOINT_DIR, _load_checkpoint

    marker = tmp_path / "pwned"
    state = tmp_path / CHECKPOINT_DIR / "state.pt"
    state.parent.mkdir()
    torch.save({"config": {}, "heads": _RunsCode(marker), "state": {}}, state)

    torch.load(state, weights_only=False)  # the old load: the file really runs code
    assert marker.exists()
    marker.unlink()

    with pytest.raises(ConfigError, match=r"^--out: .*state\.pt is not a checkpoint.*Fix: "):
        _load_checkpoint(state)
    assert not marker.exists()


def test_every_torch_load_is_weights_only():
    """No checkpoint load in effeval may unpickle arbitrary objects."""
    loads = []
    for path in (REPO / "effeval").rglob("*.py"):
        for m in re.finditer(r"torch\.load\(([^)]*)\)", path.read_text(encoding="utf-8")):
            loads.append((path.name, m.group(1)))
    assert loads, "the SpeLLM checkpoint load should be found"
    assert all("weights_only=True" in args for _, args in loads), loads


@pytest.mark.parametrize("name", ["../X", "../../X", "/tmp/effeval-escape-X", "a/../../X", "..", "a/b"])
def test_hub_export_keeps_model_name_inside_out(tmp_path, name):
    """``model_name_sanitized`` comes from the lm-eval results file; a name that leaves --out is
    refused before anything is written. Able to fail: before the fix, ``../X`` wrote
    ``<out>/../X/results_*.json``."""
    from effeval.results.export import export

    raw = tmp_path / "lm_eval_out"
    raw.mkdir()
    results = {
        "results": {"t": {"alias": "t", "acc,none": 0.5, "acc_stderr,none": 0.1}},
        "configs": {"t": {"task": "t", "output_type": "multiple_choice", "num_fewshot": 0}},
        "versions": {"t": 1.0},
        "n-shot": {"t": 0},
        "higher_is_better": {"t": {"acc": True}},
        "n-samples": {"t": {"original": 4, "effective": 4}},
        "config": {"model": "hf", "model_args": "pretrained=m", "batch_size": 1},
        "model_name": "m",
        "model_name_sanitized": name,
        "date": 1767225600.0,
        "lm_eval_version": "0.4.13",
    }
    lm_file = raw / "results_2026-01-01T00-00-00.000000.json"
    lm_file.write_text(json.dumps(results))
    out = tmp_path / "site" / "out"
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(ConfigError, match=r"^RESULT: model_name_sanitized .*Fix: "):
        export(lm_file, "hub", out)
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not Path("/tmp/effeval-escape-X").exists()


def test_confined_refuses_every_escape(tmp_path):
    from effeval.atomic import confined

    assert confined(tmp_path, "a/b.json", "X", "name") == (tmp_path / "a/b.json").resolve()
    (tmp_path / "link").symlink_to("/")
    for rel in ("../x", "/etc/x", "a/../../x", "link/etc/x", "."):
        with pytest.raises(ConfigError, match="would write outside --out"):
            confined(tmp_path, rel, "X", "name")


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_atomic_writes_keep_the_umask(tmp_path, umask):
    """An atomic write gets the mode a plain open() would (0666 & ~umask), not mkstemp's 0600.
    Able to fail: mkstemp's 0600 differs from the expectation for umask 022 and 002."""
    from effeval.atomic import copy_atomic, write_text_atomic

    old = os.umask(umask)
    try:
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        a = write_text_atomic(tmp_path / "a.txt", "x")
        b = copy_atomic(a, tmp_path / "sub" / "b.txt")
    finally:
        os.umask(old)
    expected = plain.stat().st_mode & 0o777
    assert expected == 0o666 & ~umask
    assert a.stat().st_mode & 0o777 == expected and b.stat().st_mode & 0o777 == expected


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    from effeval.atomic import atomic_path

    target = tmp_path / "plot.svg"
    target.write_text("<svg/>")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("<svg")  # half-written, then the writer fails
            raise RuntimeError("killed")
    assert target.read_text() == "<svg/>" and [p.name for p in tmp_path.iterdir()] == ["plot.svg"]


def test_kill_loop_leaves_no_broken_file():
    """One SIGKILL per writer (the full loop, ``python tests/foundation/kill_loop.py``, is in
    the issue 17 note): every file a user opens is whole, and the next run removes temp files."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, str(REPO / "tests/foundation/kill_loop.py"), "--kills", "1", "--megabytes", "8"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["kind"] for r in rows] == ["hub", "leaderboard"]
    for r in rows:
        assert r["broken_files"] == 0 and r["temp_files_after_next_clean_run"] == 0, r
