"""Vocabulary alignment across SentencePiece (Mistral) and byte-level BPE (tekken), and the
TLI shared-vocabulary check."""

import pytest
from spec_fakes import TinyTokenizer

from effeval.errors import ConfigError
from effeval.methods.hetero_spec.tli import shared_vocabulary
from effeval.methods.hetero_spec.vocab import Intersection, Vocab, split_utf8_tail

TEXTS = ["hello world", "  two  spaces", "naïve café 日本語 🙂", "x\n\tdef f():\n    return 1", "1,234.5e-6"]


@pytest.fixture(scope="module")
def toks(zoo_path):
    from transformers import AutoTokenizer

    return {
        name: AutoTokenizer.from_pretrained(zoo_path(name))
        for name in ("llama-sp", "qwen-tekken", "llama-sp-v3")
    }


@pytest.mark.parametrize("name", ["llama-sp", "qwen-tekken", "llama-sp-v3"])
def test_token_bytes_reassemble_text_in_context(toks, name):
    vocab = Vocab.of(toks[name])
    for text in TEXTS:
        ids = vocab.encode_text("Context: " + text, add_special_tokens=False)
        data = vocab.ids_bytes(ids)
        # SentencePiece may add one dummy-prefix space; the rest must be the exact UTF-8 bytes.
        assert data in (("Context: " + text).encode(), (" Context: " + text).encode())


@pytest.mark.parametrize("name", ["llama-sp", "qwen-tekken"])
def test_continuation_in_context_matches_tokenizer(toks, name):
    vocab = Vocab.of(toks[name])
    for text in TEXTS:
        context = vocab.encode_text("Answer:", add_special_tokens=False)
        new = vocab.continuation_ids(context, (" " + text).encode())
        assert vocab.ids_bytes(new) == (" " + text).encode()
        whole = vocab.encode_text("Answer: " + text, add_special_tokens=False)
        assert whole[len(context) :] == new or vocab.ids_bytes(whole[len(context) :]) == vocab.ids_bytes(new)


def test_continuation_ending_mid_character_keeps_complete_prefix(toks):
    vocab = Vocab.of(toks["llama-sp"])
    data = "é日".encode()[:-1]  # cut inside 日
    new = vocab.continuation_ids(vocab.encode_text("x", add_special_tokens=False), data)
    assert data.startswith(vocab.ids_bytes(new)) and vocab.ids_bytes(new).startswith("é".encode())


def test_split_utf8_tail():
    assert split_utf8_tail("ab日".encode()) == ("ab日".encode(), b"")
    assert split_utf8_tail("ab日".encode()[:-1]) == (b"ab", "日".encode()[:2])
    assert split_utf8_tail("🙂".encode()[:1]) == (b"", "🙂".encode()[:1])


def test_intersection_pairs_have_equal_bytes(toks):
    target, drafter = Vocab.of(toks["llama-sp"]), Vocab.of(toks["qwen-tekken"])
    inter = Intersection.of(toks["llama-sp"], toks["qwen-tekken"])
    assert 1000 < len(inter) < len(target)
    for d, t in list(zip(inter.drafter_ids, inter.target_ids))[::997]:
        assert drafter.bytes[d] == target.bytes[t]
    # "▁the" (SentencePiece) and "Ġthe" (byte level) are the same token.
    assert target.by_bytes[b" the"] in inter.target_ids
    assert (
        target.token_string(target.by_bytes[b" the"])
        == drafter.token_string(drafter.by_bytes[b" the"])
        == " the"
    )


def test_tli_refuses_disjoint_vocabularies():
    with pytest.raises(ConfigError, match="share no token.*Fix: use algorithm=slem"):
        shared_vocabulary(TinyTokenizer(["a", "b"]), TinyTokenizer(["x", "yz"]))


def test_tli_generate_refuses_disjoint_vocabularies():
    from spec_fakes import HashLM

    from effeval.methods.hetero_spec import get_algorithm
    from effeval.methods.hetero_spec.common import SamplingConfig

    target_tok, drafter_tok = TinyTokenizer(["a", "b"]), TinyTokenizer(["x", "yz"])
    with pytest.raises(ConfigError, match="algorithm=tli"):
        get_algorithm("tli")(
            HashLM(3, 1), target_tok, HashLM(3, 2), drafter_tok, [1], SamplingConfig(max_new_tokens=2)
        )


def test_unknown_algorithm_in_registry():
    from effeval.methods.hetero_spec import get_algorithm

    with pytest.raises(ConfigError, match="unknown.*Fix: use one of ar, slem, tli, slrs, hf"):
        get_algorithm("eagle")
