"""Foundation pieces the results verbs build on: convert lm-eval output, validate effeval JSON."""

import json

import pytest

from effeval.errors import ConfigError
from effeval.results.cli import convert, validate
from effeval.results.convert import convert_lm_eval, find_results_files


def test_convert_keeps_metrics_and_skips_bookkeeping(lm_eval_run, tmp_path):
    raw = json.loads(find_results_files(lm_eval_run)[-1].read_text())
    written = convert(str(lm_eval_run), str(tmp_path / "out"))
    assert len(written) == 1
    result = json.loads(written[0].read_text())
    assert set(result["tasks"]) == {"effeval_smoke_mc", "effeval_smoke_gen"}
    mc = result["tasks"]["effeval_smoke_mc"]
    # every metric lm-eval reported, with its value and stderr; lm-eval's sample_len is not a metric
    assert set(mc) == {"acc", "acc_norm"}
    assert mc["acc"]["value"] == raw["results"]["effeval_smoke_mc"]["acc,none"]
    assert mc["acc"]["stderr"] == raw["results"]["effeval_smoke_mc"]["acc_stderr,none"]
    assert mc["acc"]["n_samples"] == 4 and mc["acc"]["higher_is_better"] is True
    assert result["efficiency"]["evaluation_wall_time_s"] == pytest.approx(
        float(raw["total_evaluation_time_seconds"])
    )
    # the samples files are recorded so compare/export can find them later
    names = [p["path"].rsplit("/", 1)[-1] for p in result["provenance"]["source_files"]]
    assert sum(n.startswith("samples_") for n in names) == 2
    assert validate([str(written[0])]) == 0


def test_validate_flags_a_broken_file(lm_eval_run, tmp_path, capsys):
    result = convert_lm_eval(find_results_files(lm_eval_run)[-1])
    del result["tasks"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(result))
    assert validate([str(bad)]) == 1
    assert "tasks" in capsys.readouterr().out


def test_convert_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        convert(str(tmp_path / "nope"), str(tmp_path / "out"))
