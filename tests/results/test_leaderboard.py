"""Leaderboard site: built from effeval JSON, Pareto fronts, and a headless-Chromium check that
the table lists every run, sorts on a header click, and the plots load (from file://)."""

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from effeval.errors import ConfigError
from effeval.results.leaderboard import build_site, pareto_front
from effeval.results.writer import write_result

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _result(run_id, acc, ppl, cost, method="baseline"):
    return {
        "schema": "effeval/result/v1",
        "kind": "lm",
        "run_id": run_id,
        "created": "2026-01-01T00:00:00+00:00",
        "model": {"name": "tiny", "source": "/zoo/tiny"},
        "method": {"name": method, "args": {}},
        "tasks": {
            "mc": {"acc": {"value": acc, "higher_is_better": True}},
            "ppl": {"word_perplexity": {"value": ppl, "higher_is_better": False}},
        },
        "efficiency": {"wall_time_s": cost, "evaluation_wall_time_s": cost, "tokens_per_s": 100.0 / cost},
        "environment": {"versions": {}},
        "provenance": {"source_files": []},
    }


RUNS = [
    ("dense", 0.50, 20.0, 10.0, "baseline"),
    ("wanda50", 0.40, 25.0, 4.0, "wanda"),
    ("slow-bad", 0.30, 30.0, 12.0, "x"),
    ("fast", 0.45, 18.0, 2.0, "y"),
]


@pytest.fixture
def results_dir(tmp_path):
    folder = tmp_path / "results"
    for run_id, acc, ppl, cost, method in RUNS:
        write_result(folder / f"{run_id}.json", _result(run_id, acc, ppl, cost, method))
    # other JSON in the folder (lm-eval raw output, benchmarks) is not a run and is skipped
    (folder / "lm_eval").mkdir()
    (folder / "lm_eval" / "results_x.json").write_text(json.dumps({"results": {}, "config": {}}))
    return folder


def test_pareto_front_by_direction():
    pts = [(10.0, 0.5), (4.0, 0.4), (12.0, 0.3), (2.0, 0.35)]
    assert sorted(pareto_front(pts, higher_is_better=True)) == [0, 1, 3]
    # lower is better: (2, 0.35) beats (4, 0.4) and (10, 0.5); (12, 0.3) is the best score, so it stays
    assert sorted(pareto_front(pts, higher_is_better=False)) == [2, 3]


def test_site_lists_runs_and_plots(results_dir, tmp_path):
    index = build_site(results_dir, tmp_path / "site")
    html = index.read_text()
    for run_id, *_ in RUNS:
        assert f'data-run="{run_id}"' in html
    assert "results_x" not in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # no CDN
    for task in ("mc", "ppl"):
        svg = (tmp_path / "site" / "plots" / f"{task}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "Pareto front" in svg
        assert f'src="plots/{task}.svg"' in html


def test_empty_or_missing_results_dir_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no effeval result JSON"):
        build_site(tmp_path / "empty", tmp_path / "site")
    with pytest.raises(ConfigError, match="no such folder"):
        build_site(tmp_path / "nope", tmp_path / "site")
    from effeval.cli import main as effeval_main

    assert effeval_main(["results", "leaderboard", str(tmp_path / "empty"), "--out", str(tmp_path / "s")]) == 2


def test_demo_step_builds_site_in_out_dir(results_dir, capsys):
    from types import SimpleNamespace

    from effeval.results.leaderboard import demo_step

    demo_step(SimpleNamespace(out_dir=results_dir))
    assert (results_dir / "site" / "index.html").is_file()
    assert str((results_dir / "site" / "index.html").resolve()) in capsys.readouterr().out


def _chrome():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip(
            "chromium / chromedriver not installed. Install: sudo apt-get install -y chromium chromium-driver"
        )
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager fetch a browser or driver
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="effeval-chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
    ):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=opts), profile


def test_chromium_renders_and_sorts(results_dir, tmp_path):
    index = build_site(results_dir, tmp_path / "site")
    browser, profile = _chrome()
    from selenium.webdriver.common.by import By

    try:
        browser.get(index.resolve().as_uri())
        runs = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#runs tbody td.run")]
        assert sorted(runs) == sorted(r[0] for r in RUNS)
        headers = browser.find_elements(By.CSS_SELECTOR, "#runs thead th")
        acc_col = next(i for i, h in enumerate(headers) if h.text.startswith("mc"))

        def column():
            return [
                float(tr.find_elements(By.TAG_NAME, "td")[acc_col].get_attribute("data-sort"))
                for tr in browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
            ]

        before = column()
        headers[acc_col].click()
        ascending = column()
        assert ascending == sorted(before) and ascending != before
        headers[acc_col].click()
        assert column() == sorted(before, reverse=True)
        # the run order (first column) follows the sort
        assert browser.find_element(By.CSS_SELECTOR, "#runs tbody td.run").text == "dense"
        loaded = browser.execute_script(
            "return Array.from(document.images).map(i => i.complete && i.naturalWidth > 0);"
        )
        assert loaded == [True, True]
        ARTIFACTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "leaderboard.png"))
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_main_prints_index(results_dir, tmp_path, capsys):
    from effeval.cli import main

    assert main(["results", "leaderboard", str(results_dir), "--out", str(tmp_path / "site")]) == 0
    assert capsys.readouterr().out.strip().endswith("index.html")
