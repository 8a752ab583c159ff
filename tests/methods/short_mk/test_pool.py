"""Pool analysis reproduces values computed by hand; the CLI writes the JSON table and PNG plot."""

import json

import pytest

from effeval.commands.short_mk import main as cli_main
from effeval.errors import ConfigError
from effeval.methods.short_mk.pool import analyze_pool, load_pool

# Two questions, k=3: (thinking tokens, answer) per chain, all finished.
POOL = [
    {
        "id": "A",
        "target": "5",
        "chains": [
            {"think_tokens": 10, "answer": "5"},
            {"think_tokens": 6, "answer": "3"},
            {"think_tokens": 8, "answer": "5"},
        ],
    },
    {
        "id": "B",
        "target": "2",
        "chains": [
            {"think_tokens": 4, "answer": "2"},
            {"think_tokens": 12, "answer": "7"},
            {"think_tokens": 9, "answer": "\\boxed{2}"[7:-1]},
        ],
    },
]

# By hand (A, B):
# short-1@3: A votes c1 "3" (wrong), stop 6: 6+6+6=18 tokens; B c0 "2" (right), stop 4: 12 tokens.
# short-2@3: A c1 "3" vs c2 "5" tie -> shorter chain c1 -> wrong; stop 8: 8+6+8=22. B c0,c2 "2" -> right;
#            stop 9: 4+9+9=22.
# short-3@3: A 5,3,5 -> right, 24 tokens, time 10; B 2,7,2 -> right, 25 tokens, time 12.
# majority@1: A c0 "5" right (10); B c0 "2" right (4).
# majority@2: A "5"(10) vs "3"(6) tie -> "3" wrong, 16 tokens, time 10; B "2"(4) vs "7"(12) -> right, 16, 12.
# longest@3: A c0 "5" right; B c1 "7" wrong. random: A 2/3 right, B 2/3 right; mean tokens 8 and 25/3.
EXPECTED = {
    "short-1@3": (0.5, 15.0, 5.0),
    "short-2@3": (0.5, 22.0, 8.5),
    "short-3@3": (1.0, 24.5, 11.0),
    "majority@1": (1.0, 7.0, 7.0),
    "majority@2": (0.5, 16.0, 11.0),
    "majority@3": (1.0, 24.5, 11.0),
    "shortest@3": (0.5, 15.0, 5.0),
    "longest@3": (0.5, 24.5, 11.0),
    "random@3": (2 / 3, (8 + 25 / 3) / 2, (8 + 25 / 3) / 2),
}


@pytest.fixture()
def pool_file(tmp_path):
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in POOL))
    return path


def test_hand_computed_table(pool_file):
    table = analyze_pool(load_pool(pool_file))
    rows = {r["name"]: r for r in table["rows"]}
    assert set(rows) == set(EXPECTED)
    for name, (acc, tokens, time_steps) in EXPECTED.items():
        assert rows[name]["accuracy"] == pytest.approx(acc), name
        assert rows[name]["thinking_tokens"] == pytest.approx(tokens), name
        assert rows[name]["time_steps"] == pytest.approx(time_steps), name
    assert rows["short-1@3"]["thinking_tokens_ratio_to_majority"] == pytest.approx(15 / 24.5)


def test_lm_eval_samples_layout_and_aborted_chains(tmp_path):
    # lm-eval writes request arguments as {"gen_args_0": {"arg_0": context, "arg_1": gen_kwargs}}.
    log = {"chains": POOL[0]["chains"]}
    sample = {
        "doc_id": 0,
        "target": "5",
        "arguments": {"gen_args_0": {"arg_0": "Q", "arg_1": {"effeval_short_mk": log}}},
    }
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps(sample) + "\n")
    (q,) = load_pool(path)
    assert [c.think_tokens for c in q.chains] == [10, 6, 8] and q.target == "5"
    log["chains"] = [{"think_tokens": 3, "answer": "1", "status": "aborted"}]
    path.write_text(json.dumps(sample) + "\n")
    with pytest.raises(ConfigError, match="strategy=majority"):
        load_pool(path)
    path.write_text(json.dumps({"doc_id": 0, "target": "5", "arguments": {}}) + "\n")
    with pytest.raises(ConfigError, match="no per-chain log"):
        load_pool(path)


def test_cli_writes_json_and_png(pool_file, tmp_path, capsys):
    out = tmp_path / "analysis"
    assert cli_main(["analyze", str(pool_file), "--out", str(out)]) == 0
    table = json.loads((tmp_path / "analysis.json").read_text())
    assert {r["name"] for r in table["rows"]} == set(EXPECTED)
    png = (tmp_path / "analysis.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    assert "short-1@3" in capsys.readouterr().out
    assert cli_main(["analyze", str(tmp_path / "missing.jsonl")]) == 2


# A third question with a tie in length (c0, c1: 5 tokens) and a truncated chain with no answer.
POOL_WITH_TIE = POOL + [
    {
        "id": "C",
        "target": "1",
        "chains": [
            {"think_tokens": 5, "answer": "1"},
            {"think_tokens": 5, "answer": "2"},
            {"think_tokens": 7, "answer": None, "status": "truncated"},
        ],
    }
]


def test_length_rank_table_by_hand(tmp_path):
    """Sorted by (thinking tokens, chain index), right/wrong per rank, written out by hand:
    A: 6 wrong, 8 right, 10 right; B: 4 right, 9 right, 12 wrong; C: 5(c0) right, 5(c1) wrong,
    7 truncated (no answer) wrong. A variant that keeps sampling order instead of sorting by
    length gives rank 1 = A c0, B c0, C c0 = 3/3 and fails; breaking the C tie the other way
    gives rank 1 = 1/3 and fails too."""
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in POOL_WITH_TIE))
    table = analyze_pool(load_pool(path))
    got = [(r["rank"], r["accuracy"], r["mean_thinking_tokens"]) for r in table["length_rank"]]
    expected = [(1, 2 / 3, 5.0), (2, 2 / 3, 22 / 3), (3, 1 / 3, 29 / 3)]
    assert [g[0] for g in got] == [1, 2, 3]
    for (_, acc, tokens), (_, want_acc, want_tokens) in zip(got, expected):
        assert acc == pytest.approx(want_acc) and tokens == pytest.approx(want_tokens)
    # standard error of three 0/1 values with mean 2/3: sqrt((1/3) / 3) by hand
    assert table["length_rank"][0]["accuracy_stderr"] == pytest.approx((1 / 9) ** 0.5)


def test_chain_log_from_a_different_k_is_a_one_line_error(tmp_path, capsys):
    """A log appended from a k=3 run and a k=2 run must not be analysed as one pool."""
    path = tmp_path / "chains.jsonl"
    mixed = POOL + [{"id": "D", "target": "1", "chains": [{"think_tokens": 3, "answer": "1"}] * 2}]
    path.write_text("".join(json.dumps(q) + "\n" for q in mixed))
    with pytest.raises(ConfigError, match="a chain log from a different k"):
        analyze_pool(load_pool(path))
    assert cli_main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Fix:" in err
    good = tmp_path / "pool.jsonl"
    good.write_text("".join(json.dumps(q) + "\n" for q in POOL))
    assert cli_main(["analyze", str(good), "--k", "4"]) == 2


# D: the longest chain is sampled first, so sampling order and length order disagree.
POOL_FOR_OBSERVATION = POOL_WITH_TIE + [
    {
        "id": "D",
        "target": "1",
        "chains": [
            {"think_tokens": 20, "answer": "1"},
            {"think_tokens": 5, "answer": "2"},
            {"think_tokens": 9, "answer": "1"},
        ],
    }
]


def test_shorter_vs_longer_by_hand(tmp_path):
    """Right (1) / wrong (0) by length rank, written out by hand: A [0, 1, 1], B [1, 1, 0],
    C [1, 0, 0] (its truncated chain last), D [0, 1, 1]. Shortest minus longest: -1, +1, +1, -1
    (mean 0, stderr sqrt((4/3)/4)); wrong minus right mean length: A 6 - 9 = -3, B 12 - 6.5 = +5.5,
    C 6 - 5 = +1, D 5 - 14.5 = -9.5 (mean -1.5). Finished chains only, C keeps two chains [1, 0] and
    its gap is 5 - 5 = 0 (mean -1.75). Shown able to fail: ranking by sampling order gives
    shortest minus longest 0, 0, +1, 0 (mean 0.25); keeping C's truncated chain in the finished
    scope gives a gap mean of -1.5."""
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in POOL_FOR_OBSERVATION))
    obs = analyze_pool(load_pool(path))["shorter_vs_longer"]
    every, done = obs["all_chains"], obs["finished_chains"]
    assert every["shortest_minus_longest"]["mean"] == pytest.approx(0.0)
    assert every["shortest_minus_longest"]["stderr"] == pytest.approx((1 / 3) ** 0.5)
    assert every["short_half_minus_long_half"]["mean"] == pytest.approx(0.0)
    assert every["wrong_minus_correct_thinking_tokens"]["mean"] == pytest.approx(-1.5)
    assert done["shortest_minus_longest"]["mean"] == pytest.approx(0.0)
    assert done["wrong_minus_correct_thinking_tokens"]["mean"] == pytest.approx(-1.75)
    assert done["wrong_minus_correct_thinking_tokens"]["questions"] == 4
