"""The shared Stopper: EOS is not emitted, a stop string spanning tokens cuts the text before it,
max_new_tokens caps the count; and a speculative step that could accept several tokens stops
exactly where AR stops."""

import torch
from spec_fakes import FakeLM, TinyTokenizer

from effeval.methods.hetero_spec import get_algorithm
from effeval.methods.hetero_spec.common import SamplingConfig, SpecStats
from effeval.methods.hetero_spec.decoding import Stopper
from effeval.methods.hetero_spec.vocab import Vocab

TOK = TinyTokenizer(["a", "b", "\n", "c", "é"])  # ids 1..5, 0 = EOS


def push_all(config, tokens):
    stopper = Stopper(config, Vocab.of(TOK))
    for t in tokens:
        if stopper.push(t):
            break
    return stopper


def test_eos_is_not_emitted():
    s = push_all(SamplingConfig(max_new_tokens=10, eos_token_ids=(0,)), [1, 2, 0, 1])
    assert s.tokens == [1, 2] and s.stopped_by == "eos"


def test_stop_string_across_tokens_cuts_text():
    cfg = SamplingConfig(max_new_tokens=10, stop_strings=("\n\n",), eos_token_ids=(0,))
    s = push_all(cfg, [1, 3, 3, 4])
    assert s.stopped_by == "stop_string" and s.tokens == [1, 3, 3]
    assert s.result(SpecStats(), 0.0).text == "a"


def test_max_new_tokens():
    s = push_all(SamplingConfig(max_new_tokens=3), [1, 2, 1, 2, 1])
    assert s.tokens == [1, 2, 1] and s.stopped_by == "length"


class Scripted(FakeLM):
    """Argmax follows a fixed cycle of tokens indexed by the context length."""

    def __init__(self, sequence):
        super().__init__(len(TOK))
        self.sequence = sequence

    def score(self, ids):
        logits = torch.zeros(len(TOK), dtype=torch.float64)
        logits[self.sequence[(len(ids) - 1) % len(self.sequence)]] = 5.0
        return logits


def test_speculative_step_stops_where_ar_stops():
    target = Scripted([1, 2, 3, 3, 4, 4])  # "ab\n\ncc": stop string inside a fully accepted draft
    drafter = Scripted([1, 2, 3, 3, 4, 4])  # agrees with the target everywhere
    cfg = SamplingConfig(max_new_tokens=20, stop_strings=("\n\n",), eos_token_ids=(0,))
    prompt = [5]
    ar = get_algorithm("ar")(target, TOK, None, None, prompt, cfg)
    for name in ("slem", "tli"):
        out = get_algorithm(name)(target, TOK, drafter, TOK, prompt, cfg, num_draft_tokens=6)
        assert out.token_ids == ar.token_ids and out.text == ar.text and out.stopped_by == "stop_string"
        assert out.stats.accepted > 0
