"""Big and small numbers render readably in the leaderboard (a random model's perplexity is ~1e41).

Shown able to fail: the previous leaderboard formatter printed an integral float with thousands
separators whatever its size, so 3.7e41 became a 42-digit "370,000,...,000" cell, which
``test_leaderboard_cells_are_readable`` rejects (no cell text may hold 10 digits in a row).
"""

import re

from effeval.formatting import format_number
from effeval.results.leaderboard import build_site
from effeval.results.writer import write_result


def test_format_number_cases():
    assert format_number(3.7e41) == "3.7e+41"
    assert format_number(123456, thousands=True) == "123,456"
    assert format_number(1234.56, thousands=True) == "1,235"
    assert format_number(1234.56) == "1235"
    assert format_number(27.1234) == "27.12"
    assert format_number(0.5) == "0.5"
    assert format_number(0.00012) == "1.20e-04"
    assert format_number(12_345_678.9) == "1.23e+07"
    assert format_number(None, missing="") == ""
    assert format_number(float("inf")) == "-"


def _result(run_id, ppl, tokens):
    return {
        "schema": "effeval/result/v1",
        "kind": "lm",
        "run_id": run_id,
        "created": "2026-01-01T00:00:00+00:00",
        "model": {"name": "tiny", "source": "zoo:tiny"},
        "method": {"name": "baseline", "args": {}},
        "tasks": {"ppl": {"word_perplexity": {"value": ppl, "higher_is_better": False}}},
        "efficiency": {"wall_time_s": 2.0, "generated_tokens": tokens},
        "environment": {"versions": {}},
        "provenance": {"source_files": []},
    }


def test_leaderboard_cells_are_readable(tmp_path):
    folder = tmp_path / "results"
    write_result(folder / "random.json", _result("random", 3.7e41, 123456))
    write_result(folder / "real.json", _result("real", 27.1234, 512))
    html = build_site(folder, tmp_path / "site").read_text()
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", html)
    assert "3.7e+41" in cells and "27.12" in cells
    assert not [c for c in cells if re.search(r"\d{10}", c.replace(",", ""))], cells
    # the sort key keeps the exact value (numeric sort stays right)
    assert 'data-sort="3.7e+41"' in html
