"""The pieces the Qwen2.5-Coder runs of the short-mk / pruned-ssm / spellm benches add, on hand
numbers and tiny inputs (the runs themselves need the real-large tier and CPU-minutes)."""

from __future__ import annotations

import json

import pytest


def _q(chains):
    """A question whose chains are (think_tokens, correct) pairs, indexed in order."""
    return {
        "chains": [{"index": i, "think_tokens": n, "correct": c} for i, (n, c) in enumerate(chains)],
        "strategies": {"maj@k": {"correct": sum(c for _, c in chains) * 2 > len(chains)}},
    }


def test_shortest_vs_longest_is_paired_per_question():
    """q1: shortest right, longest wrong (+1); q2: shortest wrong, longest right (-1); q3: equal
    lengths 4 and 4 -> index order: chain 0 shortest (right), chain 1 longest (wrong) (+1); q4 both
    right (0). Mean (1 - 1 + 1 + 0) / 4 = 0.25; differences (1, -1, 1, 0): sample sd 0.9574,
    stderr 0.4787. Shortest accuracy 3/4, longest 2/4."""
    from effeval.bench.short_mk_real import shortest_vs_longest

    per_q = [
        _q([(9, False), (5, True), (7, True)]),
        _q([(3, False), (7, True)]),
        _q([(4, True), (4, False)]),
        _q([(2, True), (8, True)]),
    ]
    got = shortest_vs_longest(per_q)
    assert got["shortest_minus_longest"] == pytest.approx(0.25)
    assert got["shortest_accuracy"] == pytest.approx(0.75) and got["longest_accuracy"] == pytest.approx(0.5)
    assert got["stderr"] == pytest.approx(0.4787, abs=1e-4)
    assert got["ci95"] == pytest.approx([0.25 - 1.96 * 0.47871, 0.25 + 1.96 * 0.47871], abs=1e-3)
    assert (got["only_shortest_right"], got["only_longest_right"]) == (2, 1)


def test_single_sample_is_chain_zero_and_the_mean_over_chains():
    """Chain 0 right in q1 only (0.5); the mean over chains (2/3 + 1/2) / 2 = 7/12."""
    from effeval.bench.short_mk_real import single_sample

    got = single_sample([_q([(5, True), (6, True), (7, False)]), _q([(3, False), (4, True)])])
    assert got["chain_0"]["accuracy"] == pytest.approx(0.5)
    assert got["mean_over_chains"]["accuracy"] == pytest.approx(7 / 12)


def test_short_mk_prompt_template_without_answer_format_exits_2_before_work(tmp_path, capsys):
    from effeval.bench.short_mk import main

    code = main(
        [
            "--model",
            "qwen2.5-coder-0.5b",
            "--prompt-template",
            "Think about {question}",
            "--out",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if "effeval error" in line]
    assert len(lines) == 1 and "--prompt-template" in lines[0] and "asks for no answer format" in lines[0]
    assert not list(tmp_path.iterdir())


def test_short_mk_group_size_zero_is_one_line(tmp_path, capsys):
    from effeval.bench.short_mk import main

    code = main(["--model", "qwen2.5-coder-0.5b", "--group-size", "0", "--out", str(tmp_path)])
    lines = [line for line in capsys.readouterr().err.splitlines() if "effeval error" in line]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("effeval error: --group-size:")
    assert not list(tmp_path.iterdir())


def test_bench_entry_keeps_the_other_entries(tmp_path):
    from effeval.bench.entries import write_bench_entry

    (tmp_path / "short-mk.json").write_text(json.dumps({"bench": "short-mk", "results": {"all": [1]}}))
    write_bench_entry("short-mk", "qwen2.5-coder-0.5b", {"results": {"all": [2]}}, out_dir=tmp_path)
    doc = json.loads((tmp_path / "short-mk.json").read_text())
    assert doc["results"] == {"all": [1]}
    assert doc["qwen2.5-coder-0.5b"]["results"] == {"all": [2]} and "environment" in doc["qwen2.5-coder-0.5b"]


def test_gsm_multiple_choice_gold_letter_holds_the_answer():
    """The gold letter's option is the question's own answer, the four options differ, and the gold
    position varies (a model answering one letter cannot score above chance by position)."""
    import re

    from effeval.bench.short_mk_real import gsm_symbolic
    from effeval.bench.spellm_real import gsm_multiple_choice

    items = gsm_multiple_choice(20)
    answers = {r["id"]: r["answer"] for r in gsm_symbolic(23)}
    for item in items:
        options = dict(re.findall(r"^\(([ABCD])\) (.*)$", item["context"], flags=re.M))
        assert len(set(options.values())) == 4
        assert options[item["answer"]] == answers[item["id"]]
    assert len({item["answer"] for item in items}) >= 3


def test_qwen_flap_entry_names_a_known_structure():
    from effeval.bench.pruned_ssm import _qwen_flap_arg
    from effeval.errors import ConfigError

    assert _qwen_flap_arg("AL-AM:all@0.2") == ("al-am", "all", 0.2)
    with pytest.raises(ConfigError, match="flap_structure: unknown 'global'"):
        _qwen_flap_arg("global:all@0.2")


def test_option_scores_equal_spellm_score_of_each_option(zoo_path):
    """The one-forward multiple-choice scores equal SpeLLMForCausalLM.score run once per option,
    in both scorings, and the base's logit order equals its log-softmax order."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from effeval.bench.spellm_real import option_scores
    from effeval.methods.spellm.model import ScoreItem, SpeLLMForCausalLM

    path = zoo_path("llama-sp")
    tok = AutoTokenizer.from_pretrained(path)
    base = AutoModelForCausalLM.from_pretrained(path).eval()
    spellm = SpeLLMForCausalLM.from_base(path, 8, seed=3).eval()
    with torch.no_grad():
        spellm.heads.proj.weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    context = tok.encode("Question: pick one.\nAnswer: (", add_special_tokens=False)
    options = [tok.encode(x, add_special_tokens=False)[-1] for x in "ABCD"]
    got = option_scores(spellm, base, context, options)
    for mode in ("vocab", "padded"):
        want = spellm.score([ScoreItem(context, spellm.steps_for([t], mode)) for t in options], mode=mode)
        assert got[f"spellm_{mode}"] == pytest.approx([w for w, _ in want], abs=1e-4)
    with torch.no_grad():
        lsm = torch.log_softmax(base(input_ids=torch.tensor([context])).logits[0, -1].float(), -1)
    assert [float(lsm[t]) for t in options] == pytest.approx(
        [
            v - torch.logsumexp(base(input_ids=torch.tensor([context])).logits[0, -1].float(), -1).item()
            for v in got["base"]
        ],
        abs=1e-4,
    )
