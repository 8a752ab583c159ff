"""SpeLLMForCausalLM: one-directory save/load, exact teacher-forced scores, decoding, bad input."""

import json

import pytest
import torch

from effeval.errors import ConfigError
from effeval.methods.spellm.heads import string_logprob
from effeval.methods.spellm.model import CONFIG_NAME, ScoreItem, SpeLLMForCausalLM


@pytest.fixture(scope="module")
def spellm(zoo_path, tmp_path_factory):
    model = SpeLLMForCausalLM.from_base(zoo_path("llama-sp"), k=8, seed=5).eval()
    out = tmp_path_factory.mktemp("spellm") / "model"
    model.save_pretrained(out)
    return model, out


def test_directory_holds_everything_and_reloads_identically(spellm):
    model, out = spellm
    config = json.loads((out / CONFIG_NAME).read_text())
    assert config["k"] == 8 and config["format"] == "effeval-spellm/v1"
    assert (out / "backbone" / "config.json").exists() and (out / "tokenizer_config.json").exists()
    again = SpeLLMForCausalLM.from_pretrained(out)
    ids = torch.tensor([model.tokenizer.encode("def main():\n    return 1", add_special_tokens=False)])
    with torch.no_grad():
        assert torch.equal(model(ids)[0], again(ids)[0])
    ctx = ids[0].tolist()
    assert model.generate(ctx, max_new_tokens=12) == again.generate(ctx, max_new_tokens=12)


def test_no_vocabulary_projection_is_loaded(spellm):
    _, out = spellm
    model = SpeLLMForCausalLM.from_pretrained(out)
    vocab = model.spellm_config["vocab_size"]
    outputs = [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert vocab not in outputs and max(outputs) == 8 * 258
    facts = model.output_layer_facts()
    assert facts["head_params"] == 8 * 258 * (64 + 1) and facts["projection_params"] == vocab * 64


def test_score_is_the_sum_of_string_logprobs_along_the_sequence(spellm):
    model, _ = spellm
    tok = model.tokenizer
    ctx = tok.encode("x = 1", add_special_tokens=False)
    cont = tok.encode(" + internationalization", add_special_tokens=False)
    steps = model.steps_for(cont)
    assert len(steps) > len(cont)  # a token longer than k=8 bytes is scored as chunks
    seq = list(ctx)
    expected = 0.0
    for step in steps:
        with torch.no_grad():
            lp, _ = model(torch.tensor([seq]))
        expected += string_logprob(lp[0, -1], torch.tensor(step.row), "padded").item()
        seq += step.tokens
    ((got, _),) = model.score([ScoreItem(ctx, steps)])
    assert got == pytest.approx(expected, abs=1e-3)
    ((single, _),) = model.score([ScoreItem(ctx, steps)], max_length=len(seq))
    assert single == pytest.approx(expected, abs=1e-3)


def test_long_sequences_are_scored_in_windows_each_step_once(spellm):
    """max_length=m: consecutive windows; a window's steps sit at positions [first, first + m)
    and each sees the m tokens up to its last step (lm-eval's rolling-window convention)."""
    model, _ = spellm
    tok = model.tokenizer
    ctx = [tok.eos_token_id]
    steps = model.steps_for(
        tok.encode("for key, value in sorted(table.items()): print(key)", add_special_tokens=False)
    )
    seq, targets = list(ctx), []
    for step in steps:
        targets.append((len(seq) - 1, step.row))
        seq += step.tokens
    m = 5
    expected, start = 0.0, 0
    while start < len(targets):
        first = targets[start][0]
        group = [t for t in targets[start:] if t[0] < first + m]
        lo = max(0, group[-1][0] + 1 - m)
        with torch.no_grad():
            lp, _ = model(torch.tensor([seq[lo : group[-1][0] + 1]]))
        for pos, row in group:
            expected += string_logprob(lp[0, pos - lo], torch.tensor(row)).item()
        start += len(group)
    ((got, _),) = model.score([ScoreItem(ctx, steps)], max_length=m)
    assert got == pytest.approx(expected, abs=1e-3)
    ((full, _),) = model.score([ScoreItem(ctx, steps)], max_length=len(seq))
    assert got != pytest.approx(full, abs=1e-3)  # the windows really cut the context


def test_greedy_flag_marks_exactly_the_best_string(spellm):
    from effeval.methods.spellm.alphabet import Step
    from effeval.methods.spellm.heads import best_rows

    model, _ = spellm
    ctx = model.tokenizer.encode("import os", add_special_tokens=False)
    with torch.no_grad():
        lp, _ = model(torch.tensor([ctx]))
    row = best_rows(lp[:, -1])[0][0].tolist()
    string = model.codec.row_to_string(row)
    best = Step(tuple(row), model.codec.string_to_tokens(string))
    ((_, greedy),) = model.score([ScoreItem(ctx, [best])])
    assert greedy
    other = list(row)
    other[0] = (other[0] + 1) % 256
    ((_, greedy),) = model.score([ScoreItem(ctx, [Step(tuple(other), best.tokens)])])
    assert not greedy


def test_cached_and_uncached_decoding_agree(spellm):
    model, _ = spellm
    ctx = model.tokenizer.encode("for i in range(3):", add_special_tokens=False)
    cached = model.generate(ctx, max_new_tokens=10)
    model.use_cache = False
    try:
        assert model.generate(ctx, max_new_tokens=10) == cached
    finally:
        model.use_cache = True


def test_stop_strings_cut_the_output(spellm):
    model, _ = spellm
    ctx = model.tokenizer.encode("a", add_special_tokens=False)
    text, _ = model.generate(ctx, max_new_tokens=6)
    assert text
    stop = text[len(text) // 2 :] or text
    cut, info = model.generate(ctx, max_new_tokens=6, stop_strings=[stop])
    assert info["stopped"] == "stop_string" and stop not in cut and text.startswith(cut)


def test_non_spellm_dir_is_a_clear_error(zoo_path, tmp_path):
    with pytest.raises(
        ConfigError, match=r"^pretrained: .*not a SpeLLM directory.*Fix: .*effeval spellm distill"
    ):
        SpeLLMForCausalLM.from_pretrained(zoo_path("llama-sp"))
    with pytest.raises(ConfigError, match=r"^pretrained: no directory"):
        SpeLLMForCausalLM.from_pretrained(tmp_path / "missing")


def test_k_below_one_is_a_clear_error(zoo_path):
    with pytest.raises(ConfigError, match=r"^k: "):
        SpeLLMForCausalLM.from_base(zoo_path("llama-sp"), k=0)
