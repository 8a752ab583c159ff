"""effeval-spellm: exact scores through lm-eval's request API, stock CLI on the twins, bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from effeval.errors import ConfigError


@pytest.fixture(scope="module")
def spellm_dir(zoo_path, tmp_path_factory):
    from effeval.methods.spellm.model import SpeLLMForCausalLM

    out = tmp_path_factory.mktemp("spellm-lm") / "model"
    SpeLLMForCausalLM.from_base(zoo_path("llama-sp"), k=12, seed=7).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def wrapper(spellm_dir):
    from effeval.models.spellm import SpeLLMLM

    return SpeLLMLM(pretrained=spellm_dir, device="cuda:0", batch_size=2)


def _instance(kind, args):
    from lm_eval.api.instance import Instance

    return Instance(request_type=kind, doc={}, arguments=args, idx=0)


def test_loglikelihood_is_exact_under_the_heads(wrapper):
    """lm-eval's loglikelihood = sum over the continuation's steps of the padded-row log-probs."""
    from effeval.methods.spellm.heads import string_logprob

    model = wrapper.model
    context, continuation = "Question: which keyword defines a function?\nAnswer:", " def"
    ((got, _),) = wrapper.loglikelihood([_instance("loglikelihood", (context, continuation))])
    whole = wrapper.tok_encode(context + continuation)
    ctx = wrapper.tok_encode(context)
    seq, expected = list(ctx), 0.0
    for step in model.steps_for(whole[len(ctx) :]):
        with torch.no_grad():
            lp, _ = model(torch.tensor([seq]))
        expected += string_logprob(lp[0, -1], torch.tensor(step.row)).item()
        seq += step.tokens
    assert got == pytest.approx(expected, abs=1e-3)


def test_rolling_loglikelihood_scores_every_token_once(wrapper):
    text = "An internationalization_and_localization_helper is one identifier."
    (rolling,) = wrapper.loglikelihood_rolling([_instance("loglikelihood_rolling", (text,))])
    tokens = wrapper.tok_encode(text)[1:]  # the prefix token (BOS) is the context
    from effeval.methods.spellm.model import ScoreItem

    ((direct, _),) = wrapper.model.score(
        [ScoreItem([wrapper.prefix_token_id], wrapper.model.steps_for(tokens))]
    )
    assert rolling == pytest.approx(direct, abs=1e-3) and rolling < 0


def test_generate_until_stops_and_reports_cost(wrapper):
    (text,) = wrapper.generate_until(
        [_instance("generate_until", ("def f():\n", {"until": ["\n"], "max_gen_toks": 8}))]
    )
    assert "\n" not in text
    info = wrapper.get_model_info()["effeval"]
    eff = info["efficiency"]
    assert eff["head_params"] == 12 * 258 * 65 and eff["projection_params"] == 32000 * 64
    assert eff["head_vs_projection_params"] == pytest.approx(eff["head_params"] / eff["projection_params"])
    assert eff["output_flops_per_token"] == 2 * 64 * 12 * 258
    assert eff["decode_steps"] >= 1 and eff["wall_time_s"] > 0
    assert info["method"]["name"] == "spellm"


def test_stock_cli_runs_the_twins(spellm_dir, tmp_path, repo_root):
    out = tmp_path / "out"
    lm_eval = Path(sys.executable).with_name("lm_eval")
    cmd = [
        str(lm_eval),
        "--model",
        "effeval-spellm",
        "--model_args",
        f"pretrained={spellm_dir}",
        "--tasks",
        "effeval_spellm_mc,effeval_spellm_ppl,effeval_spellm_gen",
        "--include_path",
        str(repo_root / "task_configs"),
        "--device",
        "cpu",
        "--batch_size",
        "4",
        "--limit",
        "3",
        "--output_path",
        str(out),
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    res = results["results"]
    assert {"acc,none", "acc_norm,none"} <= set(res["effeval_spellm_mc"])
    assert {"bits_per_byte,none", "exact_match,none"} <= set(res["effeval_spellm_ppl"]) | set(
        res["effeval_spellm_gen"]
    )
    # every request lm-eval made went through the wrapper: one loglikelihood per choice of the
    # 3 documents, one rolling loglikelihood and one generation per document
    from effeval.task_data import data_dir, iter_jsonl

    choices = sum(len(doc["choices"]) for _, doc in list(iter_jsonl(data_dir() / "spellm" / "mc.jsonl"))[:3])
    per_type = results["config"]["effeval"]["efficiency"]["per_request_type"]
    assert {kind: slot["requests"] for kind, slot in per_type.items()} == {
        "loglikelihood": choices,
        "loglikelihood_rolling": 3,
        "generate_until": 3,
    }


def test_stock_cli_rejects_a_non_spellm_dir_in_one_line(zoo_path, tmp_path, repo_root):
    lm_eval = Path(sys.executable).with_name("lm_eval")
    cmd = [
        str(lm_eval),
        "--model",
        "effeval-spellm",
        "--model_args",
        f"pretrained={zoo_path('llama-sp')}",
        "--tasks",
        "effeval_spellm_mc",
        "--include_path",
        str(repo_root / "task_configs"),
        "--device",
        "cpu",
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    assert proc.returncode != 0
    assert "effeval error: pretrained:" in proc.stderr and "not a SpeLLM directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_model_args_are_clear_errors(spellm_dir, tmp_path):
    from effeval.models.spellm import SpeLLMLM

    with pytest.raises(ConfigError, match="missing model_args 'pretrained'"):
        SpeLLMLM()
    with pytest.raises(ConfigError, match=r"unknown model_args k\b"):
        SpeLLMLM(pretrained=spellm_dir, k=4)
    with pytest.raises(ConfigError, match="scoring"):
        SpeLLMLM(pretrained=spellm_dir, scoring="sum")
    with pytest.raises(ConfigError, match="no model directory"):
        SpeLLMLM(pretrained=str(tmp_path / "nope"))


def test_vocab_scoring_through_lm_eval_is_the_vocabulary_softmax_of_the_heads(spellm_dir):
    """``scoring=vocab``: lm-eval's loglikelihood of a continuation = the sum, token by token, of
    a log-softmax over every vocabulary token's padded score (recomputed here with a plain loop
    over heads). Fails if the wrapper scores with the raw padded score or chunks long tokens."""
    from effeval.models.spellm import SpeLLMLM

    wrapper = SpeLLMLM(pretrained=spellm_dir, scoring="vocab", batch_size=2)
    model = wrapper.model
    context, continuation = "x = 1", " + internationalization"
    ((got, _),) = wrapper.loglikelihood([_instance("loglikelihood", (context, continuation))])
    whole = wrapper.tok_encode(context + continuation)
    ctx = wrapper.tok_encode(context)
    rows = model.codec.rows()
    assert any(len(model.codec.token_bytes[t] or b"") > model.k for t in whole[len(ctx) :])
    with torch.no_grad():
        lp, _ = model(torch.tensor([whole]))
    expected = 0.0
    for pos in range(len(ctx), len(whole)):
        head = lp[0, pos - 1].double()
        scores = sum(head[j][rows[:, j]] for j in range(model.k))
        expected += torch.log_softmax(scores, -1)[whole[pos]].item()
    assert got == pytest.approx(expected, abs=1e-3)
