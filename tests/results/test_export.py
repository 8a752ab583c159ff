"""Export round trip: a real lm-eval run -> effeval JSON -> every export format. The Every Eval
Ever output passes that project's own validator (its 0.3.0 wheel, fetched from PyPI here)."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from effeval.errors import ConfigError
from effeval.results.cli import convert
from effeval.results.export import FORMATS, export


@pytest.fixture(scope="module")
def effeval_json(lm_eval_run, tmp_path_factory):
    (path,) = convert(str(lm_eval_run), str(tmp_path_factory.mktemp("converted")))
    return path


@pytest.fixture(scope="module")
def eee_package(tmp_path_factory):
    """every-eval-ever 0.3.0 unpacked (it declares Python >= 3.12, so pip is told the version)."""
    folder = tmp_path_factory.mktemp("eee")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--python-version",
            "3.12",
            "--only-binary=:all:",
            "-d",
            str(folder),
            "every-eval-ever==0.3.0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    wheels = list(folder.glob("every_eval_ever-*.whl"))
    if proc.returncode != 0 or not wheels:
        pytest.skip(f"could not download every-eval-ever from PyPI: {proc.stderr[-300:]}")
    with zipfile.ZipFile(wheels[0]) as zf:
        zf.extractall(folder / "unpacked")
    return folder / "unpacked"


def test_eee_passes_every_eval_ever_validator(effeval_json, eee_package, tmp_path):
    import jsonschema

    written = export(effeval_json, "eee", tmp_path)
    result = json.loads(effeval_json.read_text())
    assert len(written) == len(result["tasks"]) == 2
    schema = json.loads((eee_package / "every_eval_ever/schemas/eval.schema.json").read_text())
    assert schema["version"] == "0.3.0"
    for path in written:
        record = json.loads(path.read_text())
        errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(record)]
        assert errors == [], (path, errors)
        # scores survive; the efficiency block rides along as extra evaluation results
        task = record["evaluation_results"][0]["source_data"]["dataset_name"]
        by_id = {r["evaluation_result_id"]: r["score_details"]["score"] for r in record["evaluation_results"]}
        for metric, val in result["tasks"][task].items():
            assert by_id[f"{metric}/none"] == val["value"]
        assert (
            by_id["effeval.efficiency.evaluation_wall_time_s"]
            == result["efficiency"]["evaluation_wall_time_s"]
        )
    # the package's own CLI validator, with its repository checks (path layout, UUID file names)
    env = {**os.environ, "PYTHONPATH": str(eee_package)}
    proc = subprocess.run(
        [sys.executable, "-m", "every_eval_ever", "validate", "--format", "json", "data/*/*/*/*.json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "ModuleNotFoundError" in proc.stderr:
        pytest.skip(
            f"every-eval-ever's CLI needs packages this venv lacks: {proc.stderr.strip().splitlines()[-1]}"
        )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert len(report) == 2 and all(r["valid"] and not r["errors"] for r in report)


def test_hf_leaderboard_layout(effeval_json, tmp_path):
    export(effeval_json, "hf-leaderboard", tmp_path)
    (res_file,) = (tmp_path / "results").rglob("results_*.json")
    (req_file,) = (tmp_path / "requests").rglob("*_eval_request_False_float32_Original.json")
    data = json.loads(res_file.read_text())
    source = json.loads(effeval_json.read_text())
    assert set(data["config"]) >= {"model_dtype", "model_name", "model_sha"}
    assert data["config"]["model_dtype"] == "float32"
    assert data["results"]["effeval_smoke_mc"]["acc"] == source["tasks"]["effeval_smoke_mc"]["acc"]["value"]
    assert data["results"]["effeval_efficiency"]["wall_time_s"] == source["efficiency"]["wall_time_s"]
    request = json.loads(req_file.read_text())
    assert request["model"] == data["config"]["model_name"] and request["status"] == "FINISHED"


def test_hub_layout_keeps_results_and_details(lm_eval_run, effeval_json, tmp_path):
    written = export(effeval_json, "hub", tmp_path)
    (results_file,) = tmp_path.glob("*/results_*.json")
    original = next(Path(lm_eval_run).rglob("results_*.json"))
    exported, raw = json.loads(results_file.read_text()), json.loads(original.read_text())
    # lm-eval's own file, plus the efficiency block (an hf run has no wrapper to put it there)
    assert (
        exported["config"].pop("effeval")["efficiency"] == json.loads(effeval_json.read_text())["efficiency"]
    )
    assert exported == raw
    samples = sorted(p.name for p in tmp_path.glob("*/samples_*.jsonl"))
    assert samples == sorted(p.name for p in Path(lm_eval_run).rglob("samples_*.jsonl"))
    card = (tmp_path / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    model_dir = results_file.parent.name
    assert {c["config_name"] for c in front["configs"]} == {
        f"{model_dir}__effeval_smoke_mc",
        f"{model_dir}__effeval_smoke_gen",
        f"{model_dir}__results",
    }
    for c in front["configs"]:  # every data_files pattern matches exactly the file it names
        (pattern,) = c["data_files"][1]["path"]
        assert c["data_files"][1]["split"] == "latest" and len(list(tmp_path.glob(pattern))) == 1
    assert len(written) == 4


def test_hub_push_offline_is_a_clear_error(effeval_json, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE"):
        export(effeval_json, "hub", tmp_path, push=True, repo="someone/effeval-details")
    with pytest.raises(ConfigError, match="--repo"):
        export(effeval_json, "hub", tmp_path, push=True)


def test_model_index_yaml(effeval_json, tmp_path):
    (path,) = export(effeval_json, "model-index", tmp_path)
    doc = yaml.safe_load(path.read_text())
    source = json.loads(effeval_json.read_text())
    (entry,) = doc["model-index"]
    by_dataset = {
        r["dataset"]["type"]: {m["name"]: m["value"] for m in r["metrics"]} for r in entry["results"]
    }
    assert by_dataset["effeval_smoke_mc"]["acc"] == source["tasks"]["effeval_smoke_mc"]["acc"]["value"]
    assert by_dataset["effeval_efficiency"]["wall_time_s"] == source["efficiency"]["wall_time_s"]


def test_lm_eval_folder_exports_directly(lm_eval_run, tmp_path):
    # no convert step needed: an lm-eval --output_path folder is converted on the fly
    written = export(lm_eval_run, "eee", tmp_path)
    assert len(written) == 2


def test_unknown_format_and_bad_push(effeval_json, tmp_path):
    with pytest.raises(ConfigError, match=r"--format: unknown format 'csv'.*" + ", ".join(FORMATS)):
        export(effeval_json, "csv", tmp_path)
    with pytest.raises(ConfigError, match="only --format hub"):
        export(effeval_json, "eee", tmp_path, push=True, repo="a/b")


def test_cli_export_unknown_format_exit_code(effeval_json, tmp_path):
    from effeval.cli import main

    assert main(["results", "export", str(effeval_json), "--format", "nope", "--out", str(tmp_path)]) == 2


def test_nested_efficiency_kept_by_eee_dropped_by_model_index(effeval_json, tmp_path, caplog):
    # a wrapper run's block has nested values (per_request_type); model-index has no room for them
    result = json.loads(effeval_json.read_text())
    result["efficiency"].update(
        generated_tokens=96,
        acceptance_rate=0.75,
        per_request_type={"generate_until": {"requests": 4, "wall_time_s": 1.5}},
    )
    rich = tmp_path / "rich.json"
    rich.write_text(json.dumps(result))
    with caplog.at_level("WARNING", logger="effeval.results.export"):
        (card,) = export(rich, "model-index", tmp_path / "card")
    assert "per_request_type" in caplog.text
    metrics = {
        m["name"]: m["value"]
        for r in yaml.safe_load(card.read_text())["model-index"][0]["results"]
        for m in r["metrics"]
        if r["dataset"]["type"] == "effeval_efficiency"
    }
    assert metrics["acceptance_rate"] == 0.75 and "per_request_type" not in metrics
    for path in export(rich, "eee", tmp_path / "eee"):
        record = json.loads(path.read_text())
        kept = json.loads(record["source_metadata"]["additional_details"]["effeval_efficiency_json"])
        assert kept["per_request_type"]["generate_until"]["requests"] == 4
        ids = {r["evaluation_result_id"]: r["score_details"]["score"] for r in record["evaluation_results"]}
        assert ids["effeval.efficiency.generated_tokens"] == 96
        lower = {
            r["evaluation_result_id"]: r["metric_config"]["lower_is_better"]
            for r in record["evaluation_results"]
        }
        assert lower["effeval.efficiency.wall_time_s"] and lower["effeval.efficiency.generated_tokens"]
        assert not lower["effeval.efficiency.acceptance_rate"]
