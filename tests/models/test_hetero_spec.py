"""effeval-hetero-spec: bad model_args fail with one clear ConfigError before any model loads;
the stock lm_eval CLI runs SLEM with verify=true and reports acceptance stats and equality 1.0."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from effeval.errors import ConfigError


def make(**kwargs):
    from effeval.models.hetero_spec import HeteroSpecLM

    return HeteroSpecLM(**kwargs)


def test_missing_drafter_is_a_config_error(zoo_path):
    with pytest.raises(ConfigError, match="drafter"):
        make(pretrained=zoo_path("llama-sp"), device="cpu")


def test_drafter_directory_must_exist(zoo_path, tmp_path):
    with pytest.raises(ConfigError, match="'drafter'.*Fix"):
        make(pretrained=zoo_path("llama-sp"), drafter=str(tmp_path / "nowhere"), device="cpu")


def test_unknown_algorithm_is_a_config_error(zoo_path):
    with pytest.raises(ConfigError, match="algorithm.*Fix: use one of ar, slem, tli, slrs, hf"):
        make(
            pretrained=zoo_path("llama-sp"), drafter=zoo_path("qwen-tekken"), algorithm="medusa", device="cpu"
        )


@pytest.mark.parametrize("k", [0, -3])
def test_num_draft_tokens_must_be_positive(zoo_path, k):
    with pytest.raises(ConfigError, match="num_draft_tokens.*> 0"):
        make(
            pretrained=zoo_path("llama-sp"), drafter=zoo_path("qwen-tekken"), num_draft_tokens=k, device="cpu"
        )


def test_drafter_equal_to_target_is_allowed_and_noted(zoo_path, caplog):
    import torch

    torch.set_num_threads(1)
    path = zoo_path("llama-sp")
    with caplog.at_level("WARNING"):
        lm = make(pretrained=path, drafter=path, algorithm="tli", device="cpu", max_length=256)
    info = lm.get_model_info()["effeval"]["efficiency"]
    assert info["drafter_is_target"] is True
    assert info["shared_tokens"] > 30000  # a vocabulary shares (almost) everything with itself
    assert any("drafter is the target itself" in r.message for r in caplog.records)


def test_stock_cli_slem_verify(zoo_path, tmp_path, repo_root):
    target, drafter = zoo_path("llama-sp"), zoo_path("qwen-tekken")
    lm_eval = Path(sys.executable).with_name("lm_eval")
    cmd = [
        str(lm_eval),
        "--model",
        "effeval-hetero-spec",
        "--model_args",
        f"pretrained={target},drafter={drafter},algorithm=slem,verify=true,num_draft_tokens=3",
        "--tasks",
        "hetero_spec_cnndm_mini",
        "--include_path",
        str(repo_root / "task_configs"),
        "--device",
        "cpu",
        "--limit",
        "3",
        "--output_path",
        str(tmp_path / "out"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(next((tmp_path / "out").rglob("results*.json")).read_text())
    eff = results["config"]["effeval"]["efficiency"]
    assert results["config"]["effeval"]["method"]["args"]["algorithm"] == "slem"
    assert eff["verified_greedy_requests"] == 3
    assert eff["equality_rate"] == 1.0
    assert (
        eff["drafted"] > 0 and eff["acceptance_rate"] is not None and eff["mean_accepted_length"] is not None
    )
    assert (
        eff["target_vocab_size"] == 32000 and eff["drafter_vocab_size"] == 131072 and eff["shared_tokens"] > 0
    )
    assert (
        eff["target_calls"] <= eff["generated_tokens"] + 3
    )  # at most one target pass per token, +1 per request
    assert "rougeL,none" in results["results"]["hetero_spec_cnndm_mini"]


@pytest.mark.parametrize("algorithm", ["slem", "tli", "hf"])  # ar is the reference itself
def test_generate_until_in_process_equals_target_alone(zoo_path, algorithm):
    """Every speculative algorithm through the wrapper: greedy outputs equal target-only decoding
    (verify=true reruns each request with ``ar``, the target alone; ``ar`` itself is not a case:
    it would compare AR with AR), stop strings cut the text, and the efficiency block carries the
    counts. A drafter token accepted without the target's check fails the equality."""
    import torch
    from lm_eval.api.instance import Instance

    torch.set_num_threads(1)
    lm = make(
        pretrained=zoo_path("llama-sp"),
        drafter=zoo_path("qwen-tekken"),
        algorithm=algorithm,
        num_draft_tokens=3,
        verify=True,
        device="cpu",
        max_length=512,
    )
    kwargs = {"until": ["\n\n"], "max_gen_toks": 12, "do_sample": False}
    requests = [
        Instance("generate_until", {}, (ctx, kwargs), i)
        for i, ctx in enumerate(["def add(a, b):\n    return", "Grüße aus München, 12345"])
    ]
    texts = lm.generate_until(requests)
    assert len(texts) == 2 and all("\n\n" not in t for t in texts)
    eff = lm.get_model_info()["effeval"]["efficiency"]
    assert eff["equality_rate"] == 1.0 and eff["verified_greedy_requests"] == 2
    assert eff["algorithm"] == algorithm and eff["generated_tokens"] > 0
    assert eff["target_calls"] > 0 and eff["speedup_vs_ar"] is not None
    if algorithm in ("slem", "tli"):
        assert eff["drafted"] > 0 and eff["drafter_calls"] > 0


# Every tokenizer pairing the method tests use: SentencePiece target (dummy prefix, byte
# fallback) with a byte-level drafter, the reverse, and two SentencePiece versions.
TOKENIZER_PAIRS = [("llama-sp", "qwen-tekken"), ("qwen-tekken", "llama-sp"), ("llama-sp-v3", "llama-sp")]
PARITY_CONTEXTS = [
    "def add(a, b):\n    return",
    "Grüße aus München, 12345",
    "Question: what is 2+2?\nAnswer:",
]


@pytest.mark.parametrize(("target", "drafter"), TOKENIZER_PAIRS)
def test_greedy_text_equals_lm_eval_hf(zoo_path, target, drafter):
    """Score parity: for the same requests, the wrapper's greedy texts equal lm-eval's own ``hf``
    model's texts character for character (new tokens decoded alone, cut at the stop strings).
    Shown able to fail: ``text_mode=in_context`` (the bytes as they read after the prompt) differs
    from ``hf`` on the SentencePiece target when a continuation starts with a space."""
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    torch.set_num_threads(1)
    kwargs = {"until": ["\n\n", "Question:"], "max_gen_toks": 16, "do_sample": False}
    requests = [Instance("generate_until", {}, (ctx, kwargs), i) for i, ctx in enumerate(PARITY_CONTEXTS)]
    hf = HFLM(pretrained=zoo_path(target), device="cpu", batch_size=1, max_length=512, dtype="float32")
    expected = hf.generate_until(requests)
    del hf
    lm = make(
        pretrained=zoo_path(target),
        drafter=zoo_path(drafter),
        algorithm="slem",
        num_draft_tokens=3,
        device="cpu",
        max_length=512,
    )
    assert lm.generate_until(requests) == expected
    if target == "llama-sp":
        # The comparison can fail: a continuation that starts with "▁Paris" reads " Paris" in
        # context, while hf decodes the new tokens alone to "Paris" (the old default's 13/32).
        from effeval.methods.hetero_spec.common import GenerationResult, SpecStats

        ids = lm.tokenizer(" Paris is", add_special_tokens=False)["input_ids"]
        result = GenerationResult(ids, " Paris is", SpecStats())
        assert lm._output_text(result, []) == lm.tok_decode(ids) == "Paris is"
        lm.text_mode = "in_context"
        assert lm._output_text(result, []) != lm.tok_decode(ids)


@pytest.mark.parametrize(
    ("arg", "value", "needle"),
    [("max_dp_states", 0, "max_dp_states.*> 0"), ("drafter_top_k", -1, "drafter_top_k.*>= 0")],
)
def test_slrs_model_args_bad_values(zoo_path, arg, value, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        make(
            pretrained=zoo_path("llama-sp"),
            drafter=zoo_path("qwen-tekken"),
            algorithm="slrs",
            device="cpu",
            **{arg: value},
        )
    assert "\n" not in str(info.value) and "Fix:" in str(info.value)


def test_slrs_model_args_reach_the_algorithm(zoo_path):
    """drafter_top_k / canonical_pairs / max_dp_states from model_args change SLRS's run: with
    max_dp_states=1 every sampled step goes over budget, so target-only fallbacks are counted."""
    import torch
    from lm_eval.api.instance import Instance

    torch.set_num_threads(1)
    lm = make(
        pretrained=zoo_path("llama-sp"),
        drafter=zoo_path("qwen-tekken"),
        algorithm="slrs",
        drafter_top_k=0,
        canonical_pairs=False,
        max_dp_states=1,
        device="cpu",
        max_length=512,
    )
    kwargs = {"until": ["\n\n"], "max_gen_toks": 6, "do_sample": True, "temperature": 1.0}
    lm.generate_until([Instance("generate_until", {}, ("The cat", kwargs), 0)])
    eff = lm.get_model_info()["effeval"]["efficiency"]
    assert eff["drafter_top_k"] == 0 and eff["canonical_pairs"] is False and eff["max_dp_states"] == 1
    assert eff["slrs_dp_budget_fallbacks"] > 0


@pytest.mark.parametrize(("target", "drafter"), TOKENIZER_PAIRS)
def test_fast_path_mkldnn_greedy_equals_plain_path(zoo_path, target, drafter):
    """fast_path=mkldnn (oneDNN-prepacked fp32 linears on the target and the drafter) gives the
    same greedy texts as the plain path, for AR (the target alone, verify=true) and for SLEM with
    adaptive drafting, on every tokenizer pair; and it really replaced the layers (no plain
    ``torch.nn.Linear`` left; each forward then runs oneDNN's kernel)."""
    import torch
    from lm_eval.api.instance import Instance

    torch.set_num_threads(1)
    kwargs = {"until": ["\n\n"], "max_gen_toks": 16, "do_sample": False}
    requests = [Instance("generate_until", {}, (ctx, kwargs), i) for i, ctx in enumerate(PARITY_CONTEXTS)]
    common = dict(
        pretrained=zoo_path(target),
        drafter=zoo_path(drafter),
        algorithm="slem",
        num_draft_tokens=3,
        draft_confidence=0.4,
        verify=True,
        device="cpu",
        max_length=512,
    )
    plain = make(**common)
    expected = plain.generate_until(requests)
    fast = make(**common, fast_path="mkldnn")
    assert fast.generate_until(requests) == expected
    eff = fast.get_model_info()["effeval"]["efficiency"]
    assert eff["fast_path"] == "mkldnn" and eff["equality_rate"] == 1.0  # SLEM = AR on the fast path
    assert fast.model.effeval_fast_path["linear_layers"] > 0
    assert not any(type(m) is torch.nn.Linear for m in fast.model.modules())
    ids = torch.tensor([plain.tokenizer(PARITY_CONTEXTS[0])["input_ids"]])
    with torch.no_grad():
        a, b = plain.model(ids).logits, fast.model(ids).logits
    assert torch.equal(a.argmax(-1), b.argmax(-1)) and torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize(
    ("arg", "value", "needle"),
    [
        ("draft_confidence", 1.5, r"draft_confidence.*must be in \[0, 1\), got 1.5"),
        ("draft_schedule", "linear", "draft_schedule"),
        ("fast_path", "int8", "fast_path"),
    ],
)
def test_draft_and_fast_path_model_args_bad_values(zoo_path, arg, value, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        make(pretrained=zoo_path("llama-sp"), drafter=zoo_path("qwen-tekken"), device="cpu", **{arg: value})
    assert "\n" not in str(info.value) and "Fix:" in str(info.value)


def test_fast_path_needs_fp32_cpu(zoo_path):
    with pytest.raises(ConfigError, match="fast_path=mkldnn.*dtype=float32.*Fix:"):
        make(
            pretrained=zoo_path("llama-sp"),
            drafter=zoo_path("qwen-tekken"),
            device="cpu",
            dtype="bfloat16",
            fast_path="mkldnn",
        )


def test_draft_model_args_reach_the_algorithm(zoo_path):
    """draft_schedule=heuristic and draft_confidence from model_args change SLEM's drafting: with a
    random-weight drafter (unsure of every token) every round stops after one drafted token."""
    import torch
    from lm_eval.api.instance import Instance

    torch.set_num_threads(1)
    kwargs = {"until": ["\n\n"], "max_gen_toks": 12, "do_sample": False}
    request = [Instance("generate_until", {}, ("def add(a, b):\n    return", kwargs), 0)]
    counts = {}
    for label, extra in (
        ("fixed", {}),
        ("adaptive", {"draft_confidence": 0.4, "draft_schedule": "heuristic"}),
    ):
        lm = make(
            pretrained=zoo_path("llama-sp"),
            drafter=zoo_path("qwen-tekken"),
            algorithm="slem",
            num_draft_tokens=4,
            device="cpu",
            max_length=512,
            **extra,
        )
        lm.generate_until(request)
        eff = lm.get_model_info()["effeval"]["efficiency"]
        counts[label] = eff["drafter_calls"] / eff["verification_steps"]
    assert eff["draft_confidence"] == 0.4 and eff["draft_schedule"] == "heuristic"
    assert counts["fixed"] == pytest.approx(4) and counts["adaptive"] < 1.5, counts


def test_hf_with_a_same_tokenizer_drafter_equals_target_alone(zoo_path):
    """transformers refuses tokenizers for a drafter of the target's vocabulary size (its plain
    assisted generation): algorithm=hf then omits them and still equals the target alone (the
    Qwen2.5-Coder 1.5B <- 0.5B control pair failed this way before)."""
    import torch
    from lm_eval.api.instance import Instance

    torch.set_num_threads(1)
    path = zoo_path("llama-sp")
    lm = make(pretrained=path, drafter=path, algorithm="hf", verify=True, device="cpu", max_length=256)
    kwargs = {"until": ["\n\n"], "max_gen_toks": 8, "do_sample": False}
    lm.generate_until([Instance("generate_until", {}, ("def add(a, b):\n    return", kwargs), 0)])
    eff = lm.get_model_info()["effeval"]["efficiency"]
    assert eff["equality_rate"] == 1.0 and eff["generated_tokens"] > 0
