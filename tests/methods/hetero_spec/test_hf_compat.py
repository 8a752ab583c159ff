"""transformers' own different-tokenizer assisted generation (``algorithm=hf``, the baseline every
hetero-spec bench compares with) on the installed transformers, in particular 5.25, which rolls the
assistant's KV cache back by a count of *target* tokens and so crashes whenever the target's
tokenizer needs fewer tokens than the drafter's (``effeval.methods.hetero_spec.hf_compat``).

Shown able to fail: without the work-around, the first test's pair crashes on 5.25 (checked in the
test itself); an equality check against the target alone fails for any wrong draft handling that
lets a drafted token through."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# tekken (131k) cuts text into fewer tokens than Mistral's 32k SentencePiece: the crashing direction
TARGET, DRAFTER = "qwen-tekken", "llama-sp"
PROMPTS = ["def add(a, b):\n    return", "Summarize the following article:\nThe city council met on Monday."]


@pytest.fixture(scope="module")
def pair(zoo_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    load = lambda name: AutoModelForCausalLM.from_pretrained(zoo_path(name), dtype=torch.float32).eval()  # noqa: E731
    return load(TARGET), AutoTokenizer.from_pretrained(zoo_path(TARGET)), load, zoo_path


def test_hf_algorithm_equals_the_target_alone_where_transformers_525_crashes(pair):
    import torch
    from transformers import AutoTokenizer

    from effeval.methods.hetero_spec.common import SamplingConfig
    from effeval.methods.hetero_spec.hf_compat import has_target_length_rollback
    from effeval.methods.hetero_spec.registry import get_algorithm

    target, target_tok, load, zoo_path = pair
    drafter_tok = AutoTokenizer.from_pretrained(zoo_path(DRAFTER))
    config = SamplingConfig(max_new_tokens=40, do_sample=False)
    for prompt in PROMPTS:
        ids = target_tok(prompt)["input_ids"]
        reference = get_algorithm("ar")(target, target_tok, None, None, ids, config).token_ids
        # a fresh drafter per call: transformers may rewrite the assistant in place
        got = get_algorithm("hf")(
            target, target_tok, load(DRAFTER), drafter_tok, ids, config, num_draft_tokens=3
        )
        assert got.token_ids == reference, prompt
        assert got.stats.drafter_calls > 0
    if has_target_length_rollback():  # the bug is real on this version: transformers alone crashes
        ids = torch.tensor([target_tok(PROMPTS[0])["input_ids"]])
        with pytest.raises(RuntimeError, match="0 elements"), torch.no_grad():
            target.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=40,
                do_sample=False,
                assistant_model=load(DRAFTER),
                tokenizer=target_tok,
                assistant_tokenizer=drafter_tok,
                num_assistant_tokens=3,
                num_assistant_tokens_schedule="constant",
                pad_token_id=target_tok.eos_token_id,
            )


def test_hf_algorithm_end_to_end_through_the_stock_lm_eval_cli(tmp_path, zoo_path):
    """``lm_eval --model effeval-hetero-spec ... algorithm=hf,verify=true`` on the crashing pair:
    exit 0, every greedy request equal to the target alone."""
    lm_eval = Path(sys.executable).with_name("lm_eval")
    args = f"pretrained={zoo_path(TARGET)},drafter={zoo_path(DRAFTER)},algorithm=hf,num_draft_tokens=3,verify=true"
    cmd = [
        str(lm_eval),
        "--model",
        "effeval-hetero-spec",
        "--model_args",
        args,
        "--tasks",
        "hetero_spec_cnndm_mini",
    ]
    cmd += [
        "--include_path",
        str(Path(__file__).parents[3] / "task_configs"),
        "--device",
        "cpu",
        "--limit",
        "3",
    ]
    cmd += ["--gen_kwargs", "max_gen_toks=32", "--output_path", str(tmp_path / "out")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(next((tmp_path / "out").rglob("results*.json")).read_text())
    eff = results["config"]["effeval"]["efficiency"]
    assert eff["algorithm"] == "hf" and eff["verified_greedy_requests"] == 3 and eff["equality_rate"] == 1.0
