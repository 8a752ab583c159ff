"""Bad inputs to ``effeval image run``: each one line naming the argument and the fix (exit 2),
refused before any image is made; or a warning where the input is odd but valid. The table grows."""

from __future__ import annotations

import json
import logging
import os

import pytest

from effeval.image.__main__ import main

PROMPT = "a red circle and a blue square"


@pytest.fixture()
def bench(tmp_path):
    path = tmp_path / "bench.jsonl"
    path.write_text(json.dumps({"id": "p1", "prompt": PROMPT, "items": ["circle", "square"]}) + "\n")
    return path


def _run(pipeline, bench, out, *extra):
    return [
        "run",
        "--pipeline",
        str(pipeline),
        "--benchmark",
        str(bench),
        "--scorers",
        "none",
        "--out",
        str(out),
        *extra,
    ]


# (extra arguments, how the output path is prepared, expected one-line message)
CASES = [
    (
        ["--height", "13"],
        None,
        "--height: 13 is not a multiple of 8, the size step of this pipeline. Fix: pass a multiple of 8, or omit it for the default 32",
    ),
    (["--width", "36"], None, "--width: 36 is not a multiple of 8"),
    (["--guidance", "nan"], None, "--guidance: nan is not a finite scale >= 0. Fix: "),
    (["--guidance", "-1"], None, "--guidance: -1.0 is not a finite scale >= 0. Fix: "),
    ([], "file", "is a file, not a folder. Fix: pass a folder path"),
    ([], "under-file", "is a file, so no folder can be made there. Fix: pass a folder path"),
]


@pytest.mark.parametrize(("extra", "out_kind", "message"), CASES)
def test_bad_image_run_input_is_one_line_exit_2(zoo_path, bench, tmp_path, capsys, extra, out_kind, message):
    """Before: --height 13 wrote a 64 px image but recorded 13; --guidance nan ran; an --out that
    is a file failed only after the pipeline had loaded. Now: exit 2, one line, nothing written."""
    out = tmp_path / "out"
    if out_kind == "file":
        out.write_text("not a folder")
    elif out_kind == "under-file":
        (tmp_path / "f").write_text("x")
        out = tmp_path / "f" / "out"
    rc = main(_run(zoo_path("sd-tiny"), bench, out, *extra))
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2
    assert err.startswith("effeval error: ") and message in err, err
    assert not list(tmp_path.rglob("*.png"))


def test_long_prompt_warns_that_it_is_cut(zoo_path, tmp_path, caplog):
    """A prompt past the text encoder's 77 tokens is cut as diffusers cuts it; the user is told."""
    long_prompt = " ".join(["a red circle"] * 40)
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"id": "long1", "prompt": long_prompt}) + "\n")
    with caplog.at_level(logging.WARNING):
        # a bad target stops the run right after the up-front check: no image needed
        rc = main(_run(zoo_path("sd-tiny"), path, tmp_path / "o", "--intervention", "drop:giraffe"))
    assert rc == 2
    assert any("long1 is longer than the text encoder's 77 tokens" in r.getMessage() for r in caplog.records)


def test_image_run_leaves_offline_mode_to_the_environment(zoo_path, bench, tmp_path, monkeypatch):
    """`effeval image` once set HF_HUB_OFFLINE=1 itself, so a hub --vqa-model could not be used."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    main(_run(zoo_path("sd-tiny"), bench, tmp_path / "o", "--guidance", "nan"))
    assert "HF_HUB_OFFLINE" not in os.environ


def test_judge_on_a_caption_outside_the_shapes_world_is_one_line_exit_2(zoo_path, tmp_path, capsys):
    """The shapes judge knows only its world: a prompt with a word outside the world's vocabulary
    is refused before any image, naming the record and the word (a random judge folder stands in
    for zoo:shapes-judge: the check needs no trained weights). Without the up-front check the run
    draws the image and scores it against questions that mean nothing (exit 0: this fails)."""
    from safetensors.torch import save_file

    from effeval.image.shapes.judge import make_judge

    judge_dir = tmp_path / "judge"
    judge_dir.mkdir()
    save_file(
        {k: v.contiguous() for k, v in make_judge().state_dict().items()},
        str(judge_dir / "judge.safetensors"),
    )
    path = tmp_path / "purple.jsonl"
    record = {
        "id": "p1",
        "prompt": "a purple circle",
        "questions": [{"id": "q", "text": "Is there a circle?", "expected": "yes"}],
    }
    path.write_text(json.dumps(record) + "\n")
    args = _run(zoo_path("sd-tiny"), path, tmp_path / "out")
    args[args.index("--scorers") + 1] = "judge"
    rc = main([*args, "--judge-model", str(judge_dir)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2
    assert err.startswith(
        "effeval error: --scorers judge: record 'p1': caption: 'purple' in 'a purple circle' is outside the shapes world's vocabulary. Fix: "
    ), err
    assert not list(tmp_path.rglob("*.png"))
