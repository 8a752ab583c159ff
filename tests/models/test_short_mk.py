"""effeval-short-mk on real tiny transformers models: KV-cache sharing is exact, runs repeat under
a seed, short-1@k generates fewer tokens than majority@k, the stock lm_eval CLI works and its
samples carry the per-chain log, bad input is one clear error."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from effeval.errors import ConfigError

# A random model rarely writes "</think>"; a two-letter marker that many of its tokens contain makes
# chains finish at varied steps, which is what the early stop needs to be observable.
EASY_MARK = "in"


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def tiny(zoo_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = zoo_path("reasoner-sp")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    return path, tok, model


def sample(tiny, prompt, **cfg):
    from effeval.methods.short_mk.hf_backend import HFStepBackend
    from effeval.methods.short_mk.sampler import ShortMKConfig, sample_short_mk

    _, tok, model = tiny
    backend = HFStepBackend(model)
    result = sample_short_mk(
        backend,
        tok.encode(prompt),
        ShortMKConfig(**cfg),
        decode=lambda ids: tok.decode(ids, skip_special_tokens=True),
        encode=lambda s: tok.encode(s, add_special_tokens=False),
        eos_ids=[tok.eos_token_id],
    )
    return result, backend


def test_shared_prompt_cache_matches_plain_greedy_generation(tiny):
    import torch

    _, tok, model = tiny
    prompt = "Q: 3 + 4 = ?\nA: <think>"
    result, backend = sample(
        tiny,
        prompt,
        k=3,
        m=1,
        strategy="majority",
        do_sample=False,
        max_think_tokens=10,
        answer_phase="in_chain",
    )
    ids = tok(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        ref = model.generate(ids, max_new_tokens=10, do_sample=False, eos_token_id=None)
    expected = tok.decode(ref[0, ids.shape[1] :], skip_special_tokens=True)
    assert [c.text for c in result.chains] == [expected] * 3
    assert backend.forward_calls == 10  # one prompt pass for all 3 rows + 9 decode steps


def test_k8_same_seed_identical_and_short1_cheaper_than_majority(tiny):
    prompts = ["Q: 2 + 5 = ?\nA: <think>", "Q: 9 - 4 + 1 = ?\nA: <think>"]
    common = dict(k=8, think_end=EASY_MARK, max_think_tokens=24, answer_tokens=3, seed=7)
    totals = {}
    for strategy, m in (("short", 1), ("short", 3), ("majority", 1)):
        runs = [[sample(tiny, p, strategy=strategy, m=m, **common)[0] for p in prompts] for _ in range(2)]
        first, second = ([(r.text, [c.log() for c in r.chains], r.vote.log()) for r in run] for run in runs)
        assert first == second, f"{strategy} m={m} differs between two runs with the same seed"
        totals[(strategy, m)] = sum(r.total_tokens for r in runs[0])
        if strategy == "short":
            for r in runs[0]:
                assert sum(c.selected for c in r.chains) == m
                assert r.forward_passes <= r.stop_step + common["answer_tokens"]
    assert totals[("short", 1)] < totals[("short", 3)] <= totals[("majority", 1)]
    texts = {
        seed: [
            c.text
            for c in sample(tiny, prompts[0], strategy="majority", **{**common, "seed": seed})[0].chains
        ]
        for seed in (7, 8)
    }
    assert texts[7] != texts[8]  # the seed drives the sampling


def test_wrapper_bad_input_is_one_clear_error(tiny):
    from effeval.models.short_mk import ShortMKLM

    path = tiny[0]
    cases = [
        ({"k": 2, "m": 3}, "m="),
        ({"k": 0}, "model_args 'k':"),
        ({"strategy": "fastest"}, "strategy"),
        ({"answer": "regex:([0-9]"}, "does not compile"),
        ({"think_end": "</s>"}, "think_end: the tokenizer cannot represent"),  # EOS: never visible as text
    ]
    for kwargs, needle in cases:
        with pytest.raises(ConfigError) as err:
            ShortMKLM(pretrained=path, device="cpu", **kwargs)
        assert needle in str(err.value) and "Fix:" in str(err.value), str(err.value)


def test_wrapper_generate_until_logs_every_chain(tiny):
    from lm_eval.api.instance import Instance

    from effeval.models.short_mk import ShortMKLM

    lm = ShortMKLM(
        pretrained=tiny[0],
        device="cpu",
        k=4,
        m=2,
        think_end=EASY_MARK,
        answer_tokens=2,
        seed=3,
        log_text=True,
    )
    gen_kwargs = {"until": [], "do_sample": True, "temperature": 0.7, "top_p": 0.95, "max_gen_toks": 16}
    req = Instance("generate_until", {}, ("Q: 1 + 1 = ?\nA: <think>", gen_kwargs), 0)
    (text,) = lm.generate_until([req])
    log = req.args[1]["effeval_short_mk"]
    assert len(log["chains"]) == 4 and {"think_tokens", "status", "answer", "selected"} <= set(
        log["chains"][0]
    )
    chosen = log["chains"][log["chosen"]]
    assert chosen["selected"] and chosen["status"] in ("finished", "eos", "truncated")
    eff = lm.get_model_info()["effeval"]["efficiency"]
    assert eff["total_generated_tokens"] == sum(c["think_tokens"] + c["answer_tokens"] for c in log["chains"])
    assert eff["generated_tokens"] == eff["total_generated_tokens"] and eff["chains_sampled"] == 4
    # the answer lm-eval scores is the voted chain's full text (not another chain's, not a cut)
    assert text == chosen["text"]


def test_stock_lm_eval_cli_samples_show_the_chain_log(tiny, tmp_path, repo_root):
    lm_eval = Path(sys.executable).with_name("lm_eval")
    out = tmp_path / "run"
    cmd = [
        str(lm_eval),
        "--model",
        "effeval-short-mk",
        "--model_args",
        f"pretrained={tiny[0]},k=4,m=2,max_think_tokens=12,answer_tokens=3,think_end={EASY_MARK}",
        "--tasks",
        "short_mk_arith_mini",
        "--include_path",
        str(repo_root / "task_configs"),
        "--limit",
        "2",
        "--device",
        "cpu",
        "--output_path",
        str(out),
        "--log_samples",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    samples = [
        json.loads(line) for f in out.rglob("samples_short_mk_arith_mini_*.jsonl") for line in f.open()
    ]
    assert len(samples) == 2
    for s in samples:
        log = s["arguments"]["gen_args_0"]["arg_1"]["effeval_short_mk"]
        assert len(log["chains"]) == 4
        assert sum(c["selected"] for c in log["chains"]) <= 2 or log["stop_step"] is None
        assert s["resps"][0][0] is not None
    (results_file,) = list(out.rglob("results_*.json"))
    eff = json.loads(results_file.read_text())["config"]["effeval"]["efficiency"]
    assert eff["chains_sampled"] == 8 and eff["k"] == 4 and eff["m"] == 2
