"""Greedy SLEM and TLI are token-identical to AR on 31 prompts (code, prose, unicode, numbers,
long words) for two pairs of real tokenizers (Mistral SentencePiece vs tekken byte-level BPE,
both directions, and Mistral's v3 SentencePiece vs v1), with a drafter that always agrees (an oracle that spells the target's own
greedy continuation), one that never agrees, and a briefly trained zoo drafter that partly agrees."""

import pytest
import torch
from prompts import PROMPTS
from spec_fakes import ScriptedDrafter

from effeval.methods.hetero_spec import get_algorithm
from effeval.methods.hetero_spec.common import SamplingConfig
from effeval.methods.hetero_spec.decoding import prompt_text
from effeval.methods.hetero_spec.vocab import Vocab

PAIRS = {
    "llama-sp_from_qwen-tekken": ("llama-sp", "qwen-tekken"),
    "qwen-tekken_from_llama-sp": ("qwen-tekken", "llama-sp"),
    # a second tokenizer pairing: Mistral's v3 SentencePiece (32,768) target, v1 (32,000) drafter
    "llama-sp-v3_from_llama-sp": ("llama-sp-v3", "llama-sp"),
}
# The trained drafter exists for the main pair only (the zoo trains llama-sp and qwen-tekken).
CASES = [
    (pair, kind)
    for pair in PAIRS
    for kind in ("oracle", "never", "trained")
    if kind != "trained" or "tekken" in pair
]
MAX_NEW = 16
K = 4


def load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="module")
def pair_models(zoo_path):
    cache = {}

    def get(pair, trained):
        key = (pair, trained)
        if key not in cache:
            target_name, drafter_name = PAIRS[pair]
            cache[key] = (
                *load(zoo_path(target_name, trained=trained)),
                *load(zoo_path(drafter_name, trained=trained)),
            )
        return cache[key]

    return get


@pytest.fixture(scope="module")
def ar_outputs():
    return {}


def config_for(tok, prompt_index):
    # Every third prompt also stops at a blank line, so stop strings are exercised mid-draft.
    stops = ("\n\n",) if prompt_index % 3 == 0 else ()
    return SamplingConfig(max_new_tokens=MAX_NEW, stop_strings=stops, eos_token_ids=(tok.eos_token_id,))


def ar_result(ar_outputs, pair, trained, models, index):
    key = (pair, trained, index)
    if key not in ar_outputs:
        target, t_tok = models[0], models[1]
        ids = t_tok(PROMPTS[index])["input_ids"]
        ar_outputs[key] = get_algorithm("ar")(target, t_tok, None, None, ids, config_for(t_tok, index))
    return ar_outputs[key]


def scripted(models, ar, index, agree):
    _, t_tok, _, d_tok = models
    t_vocab = Vocab.of(t_tok)
    ends, pos = [], 0
    for token in ar.token_ids:
        pos += len(t_vocab.bytes[token] or b"")
        ends.append(pos)
    prompt = prompt_text(t_tok, t_tok(PROMPTS[index])["input_ids"])
    return ScriptedDrafter(d_tok, prompt, t_vocab.ids_bytes(ar.token_ids), ends, agree=agree)


@pytest.mark.parametrize("algorithm", ["slem", "tli"])
@pytest.mark.parametrize("pair, drafter_kind", CASES)
def test_greedy_equals_ar(pair, drafter_kind, algorithm, pair_models, ar_outputs):
    trained = drafter_kind == "trained"
    models = pair_models(pair, trained)
    target, t_tok, drafter, d_tok = models
    generate = get_algorithm(algorithm)
    drafted = accepted = 0
    mismatches = []
    for index, prompt in enumerate(PROMPTS):
        ar = ar_result(ar_outputs, pair, trained, models, index)
        ids = t_tok(prompt)["input_ids"]
        draft_model = drafter if trained else scripted(models, ar, index, agree=drafter_kind == "oracle")
        out = generate(
            target,
            t_tok,
            draft_model,
            d_tok,
            ids,
            config_for(t_tok, index),
            num_draft_tokens=K,
            generator=torch.Generator().manual_seed(index),
        )
        if out.token_ids != ar.token_ids or out.text != ar.text or out.stopped_by != ar.stopped_by:
            mismatches.append((prompt, ar.text, out.text))
        drafted += out.stats.drafted
        accepted += out.stats.accepted
        assert out.stats.target_calls <= len(ar.token_ids) + 1
    assert not mismatches, mismatches[:3]
    rate = accepted / max(drafted, 1)
    if drafter_kind == "never":
        assert drafted > 0 and accepted == 0
    elif drafter_kind == "oracle":
        # Every draft spells the target's own continuation; only non-canonical target tokens
        # (or tokens outside the shared vocabulary, for TLI) can be rejected; a broken
        # re-tokenization or proposal mapping would accept next to nothing.
        assert rate > 0.3, (rate, accepted, drafted)
    else:
        assert 0 < accepted < drafted, (accepted, drafted)
