"""Text from a run cannot inject keys into exports; NaN / Infinity are refused where JSON is
written or validated; tasks whose names differ only in characters a file name cannot hold get
separate plot files."""

import json
import math

import pytest
import yaml

from effeval.atomic import write_json_atomic
from effeval.errors import ConfigError
from effeval.results.cli import validate
from effeval.results.convert import convert_lm_eval
from effeval.results.export import export
from effeval.results.filenames import file_stem
from effeval.results.leaderboard import build_site
from effeval.results.schema import SCHEMA_ID
from effeval.results.writer import write_result


def _result(run_id="run-1", tasks=None, cost=10.0):
    return {
        "schema": SCHEMA_ID,
        "kind": "lm",
        "run_id": run_id,
        "created": "2026-01-02T03:04:05+00:00",
        "model": {"name": "tiny", "source": "org/tiny"},
        "method": {"name": "baseline", "args": {}},
        "tasks": tasks or {"mc": {"acc": {"value": 0.5, "higher_is_better": True, "n_samples": 4}}},
        "efficiency": {"wall_time_s": cost, "evaluation_wall_time_s": cost},
        "environment": {"versions": {}},
        "provenance": {"source_files": []},
    }


@pytest.mark.parametrize("brk", ["\n", "\r", "\r\n", "\x85", "\u2028", "\u2029"])
def test_a_line_break_in_the_run_id_cannot_add_a_model_index_key(tmp_path, brk):
    src = tmp_path / "run.json"
    src.write_text(json.dumps(_result(run_id=f"demo{brk}evil: true{brk}model-index: []")))
    (path,) = export(src, "model-index", tmp_path / "card")
    text = path.read_text()
    doc = yaml.safe_load(text)
    assert set(doc) == {"model-index"} and doc["model-index"][0]["results"]
    assert text.splitlines()[0].startswith("# model-index") and "evil" not in text.splitlines()[1]


def test_a_line_break_in_names_stays_inside_the_hub_card(tmp_path):
    result = _result(run_id="r\n---\nlicense: evil")
    result["model"]["name"] = "tiny\n---\nlicense: evil"
    src = tmp_path / "run.json"
    src.write_text(json.dumps(result))
    export(src, "hub", tmp_path / "hub")
    card = (tmp_path / "hub" / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert "license" not in front and front["pretty_name"] == "Evaluation run of tiny --- license: evil"
    assert card.count("\n---\n") == 1  # only the front matter's own closing line


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_the_json_writer_refuses_nan_and_infinity(tmp_path, bad):
    path = tmp_path / "x.json"
    with pytest.raises(ConfigError, match=r"a/1/b is .*nothing was written"):
        write_json_atomic(path, {"a": [1.0, {"b": bad}]})
    assert not path.exists()
    result = _result()
    result["tasks"]["mc"]["acc"]["value"] = bad
    with pytest.raises(ConfigError, match="not a JSON number"):
        write_result(tmp_path / "r.json", result)
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_validate_refuses_nan_and_infinity(tmp_path, capsys, token):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_result()))
    assert validate([str(good)]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_result()).replace('"value": 0.5', f'"value": {token}'))
    assert token in bad.read_text()
    assert validate([str(bad)]) == 1
    assert "INVALID" in capsys.readouterr().out


def test_converting_lm_eval_output_maps_its_nan_to_null(tmp_path, caplog):
    # lm-eval writes NaN for what is undefined (a one-document stderr) and for a broken model's score
    raw = {
        "results": {"t": {"alias": "t", "acc,none": 0.5, "acc_stderr,none": math.nan, "ppl,none": math.nan}},
        "config": {"model": "hf", "model_args": "pretrained=org/tiny"},
        "higher_is_better": {"t": {"acc": True, "ppl": False}},
    }
    path = tmp_path / "results_2026-01-02T03-04-05.000000.json"
    path.write_text(json.dumps(raw))
    assert "NaN" in path.read_text()
    with caplog.at_level("WARNING", logger="effeval.results.convert"):
        result = convert_lm_eval(path)
    assert result["tasks"]["t"]["acc"]["stderr"] is None and result["tasks"]["t"]["ppl"]["value"] is None
    assert "ppl is nan" in caplog.text
    write_result(tmp_path / "out.json", result)  # valid, and written
    # the hub export ships lm-eval's own file: its NaN becomes null there too, not a refusal
    written = export(path, "hub", tmp_path / "hub")
    (shipped,) = [p for p in written if p.name == path.name]
    assert "NaN" not in shipped.read_text()
    assert json.loads(shipped.read_text())["results"]["t"]["acc_stderr,none"] is None


def test_tasks_differing_by_slash_or_underscore_get_their_own_plots(tmp_path):
    tasks = {
        "bbh/sports": {"acc": {"value": 0.25, "higher_is_better": True}},
        "bbh_sports": {"acc": {"value": 0.75, "higher_is_better": True}},
    }
    folder = tmp_path / "results"
    write_result(folder / "a.json", _result("a", tasks, cost=5.0))
    write_result(folder / "b.json", _result("b", tasks, cost=9.0))
    html = build_site(folder, tmp_path / "site").read_text()
    plots = {p.name: p for p in (tmp_path / "site" / "plots").glob("*.svg")}
    assert len(plots) == 2
    for task in tasks:
        name = f"{file_stem(task)}.svg"
        assert f'src="plots/{name}"' in html
        assert f"<!-- {task} -->" in plots[name].read_text()  # the plot is titled with its own task


def test_file_stems_are_safe_and_distinct():
    names = ["a/b", "a_b", "a b", "a:b", "../x", "a\nb", "A_b"]
    stems = [file_stem(n) for n in names]
    assert len(set(stems)) == len(names)
    assert file_stem("effeval_real_humaneval") == "effeval_real_humaneval"  # safe names unchanged
    assert all("/" not in s and "\n" not in s and not s.startswith(".") for s in stems)
