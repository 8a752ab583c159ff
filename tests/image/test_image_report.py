"""report.html: self-contained (images inlined), and it renders in headless Chromium."""

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

LABELS = ["none", "drop:cup@mask"]
COLOURS = {
    ("none", 0): (255, 0, 0),
    ("none", 1): (0, 0, 255),
    ("drop:cup@mask", 0): (0, 200, 0),
    ("drop:cup@mask", 1): (255, 255, 0),
}


@pytest.fixture
def report(tmp_path):
    from effeval.image.report import write_report

    records = [{"id": "r1", "prompt": "a zebra & a <cup>"}]
    rows = []
    for (label, seed), colour in COLOURS.items():
        rel = f"images/00000/{label.replace(':', '_').replace('@', '_')}__s{seed}.png"
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 64), colour).save(tmp_path / rel)
        rows.append(
            {
                "id": "r1",
                "index": 0,
                "prompt": records[0]["prompt"],
                "intervention": label,
                "seed": seed,
                "image": rel,
                "sequence_length": 77,
                "positions": {},
                "clip_similarity": 0.25 + seed / 10,
            }
        )
    result = {
        "run_id": "test",
        "model": {"name": "sd-tiny", "wrapper": "StableDiffusionPipeline"},
        "method": {"args": {"interventions": LABELS, "seeds": [0, 1], "steps": 2}},
        "tasks": {
            "mini/none": {"clip_similarity": {"value": 0.3, "ci_low": 0.25, "ci_high": 0.35}},
            "mini/drop:cup@mask": {
                "clip_similarity": {"value": 0.3, "ci_low": 0.25, "ci_high": 0.35},
                "clip_similarity_rel_change": {"value": 0.0, "label": "CLIP similarity +0%"},
            },
        },
        "extra": {"benchmark": "mini"},
    }
    path = write_report(tmp_path, result, rows, records)
    return path


def test_report_is_self_contained(report):
    html = report.read_text()
    assert html.count("data:image/png;base64,") == len(COLOURS)
    assert (
        "src='images/" not in html
        and "http://" not in html
        and "https://" not in html
        and "<script" not in html
    )
    assert "a zebra &amp; a &lt;cup&gt;" in html  # prompts are escaped
    assert "clip_similarity 0.35" in html  # the score under the seed-1 image
    assert "CLIP similarity +0%" in html


def test_report_renders_in_headless_chromium(report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not chromium:
        pytest.skip(
            "headless Chromium not installed. Install: sudo apt-get install -y chromium chromium-driver"
        )
    # the report works from anywhere: move it away from its images folder first
    alone = tmp_path / "elsewhere" / "report.html"
    alone.parent.mkdir()
    shutil.copy(report, alone)
    shutil.rmtree(report.parent / "images")
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1000,1400",
            f"--screenshot={shot}",
            alone.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.is_file(), proc.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    assert pixels.std() > 10  # not blank
    for colour in COLOURS.values():  # every inlined image was drawn (128x128 on the page)
        assert np.all(pixels == colour, axis=1).sum() > 100 * 100, colour


def test_linked_report_points_at_its_pngs_and_cuts_to_max_prompts(report):
    """inline=False (the committed benchmark report): every shown image is a relative link to a
    PNG that exists next to the page, nothing is inlined, and max_prompts drops later prompts.
    A variant that still inlined, or linked absolute paths, fails the first two assertions."""
    from effeval.image.report import render

    out = report.parent
    result = {
        "run_id": "test",
        "model": {"name": "sd-tiny", "wrapper": "StableDiffusionPipeline"},
        "method": {"args": {"interventions": LABELS, "seeds": [0, 1], "steps": 2}},
        "tasks": {},
        "extra": {"benchmark": "mini"},
    }
    rows = []
    for (label, seed), _ in COLOURS.items():
        rel = f"images/00000/{label.replace(':', '_').replace('@', '_')}__s{seed}.png"
        rows.append({"id": "r1", "index": 0, "intervention": label, "seed": seed, "image": rel})
    rows.append({"id": "r2", "index": 1, "intervention": "none", "seed": 0, "image": "images/00001/x.png"})
    records = [{"id": "r1", "prompt": "first"}, {"id": "r2", "prompt": "second"}]
    page = render(out, result, rows, records, inline=False, max_prompts=1)
    assert "data:image" not in page
    links = [part.split("'")[0] for part in page.split("src='")[1:]]
    assert len(links) == len(COLOURS) and all((out / link).is_file() for link in links)
    assert "second" not in page and "1 more prompts" in page
