"""Alphabet and tokenizer mapping: coverage, round trip of every token, long tokens, bad input."""

import pytest

from effeval.errors import ConfigError
from effeval.methods.spellm.alphabet import END, EOS, CharCodec, check_k


@pytest.fixture(scope="module", params=["llama-sp", "qwen-tekken"])
def tokenizer(request, zoo_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(zoo_path(request.param))


def test_every_token_that_fits_round_trips(tokenizer):
    """chars -> string -> input tokens gives back the token (same bytes always; same id except
    byte-fallback <0xNN> tokens whose byte also has an ordinary token, which maps to that one)."""
    codec = CharCodec(tokenizer, 16)
    report = codec.round_trip()
    assert report["tokens_tried"] == codec.coverage()["tokens_fitting_k"]
    assert report["same_bytes_fraction"] == 1.0
    mismatched = [
        i
        for i, b in enumerate(codec.token_bytes)
        if b is not None
        and len(b) <= 16
        and codec.string_to_tokens(codec.row_to_string(codec.token_row(i))) != [i]
    ]
    assert all(
        i in codec._fallback and codec.bytes_to_id[codec.token_bytes[i]] not in codec._fallback
        for i in mismatched
    )
    assert report["same_token_fraction"] > 0.99


def test_coverage_counts_tokens_that_fit(tokenizer):
    lengths = [len(b) for b in CharCodec(tokenizer, 1).token_bytes if b is not None]
    previous = -1.0
    for k in (4, 8, 16, 32):
        cov = CharCodec(tokenizer, k).coverage()
        assert cov["tokens_fitting_k"] == sum(1 for n in lengths if n <= k)
        assert cov["coverage"] >= previous
        previous = cov["coverage"]
    assert CharCodec(tokenizer, max(lengths)).coverage()["coverage"] == 1.0


def test_rows_are_padded_bytes_and_eos(tokenizer):
    codec = CharCodec(tokenizer, 8)
    rows = codec.rows()
    tid = tokenizer.encode("the", add_special_tokens=False)[-1]
    b = codec.token_bytes[tid]
    assert rows[tid].tolist() == list(b) + [END] * (8 - len(b))
    assert rows[tokenizer.eos_token_id].tolist() == [EOS] + [END] * 7
    assert codec.row_to_string(rows[tokenizer.eos_token_id]) is None


def test_long_token_becomes_k_byte_chunks_that_spell_it(tokenizer):
    codec = CharCodec(tokenizer, 3)
    long_ids = [i for i, b in enumerate(codec.token_bytes) if b is not None and len(b) > 7][:50]
    assert long_ids
    for tid in long_ids:
        steps = codec.token_steps(tid)
        assert len(steps) == -(-len(codec.token_bytes[tid]) // 3)
        spelled = b"".join(codec.row_to_string(s.row) for s in steps)
        assert spelled == codec.token_bytes[tid]
        for s in steps:  # the appended input tokens spell exactly the chunk
            assert b"".join(codec.token_bytes[t] for t in s.tokens) == codec.row_to_string(s.row)


def test_strings_that_are_not_one_token_use_the_tokenizer_or_exact_split(tokenizer):
    codec = CharCodec(tokenizer, 16)
    for text in (b"hello world", "na\u00efve caf\u00e9".encode(), "\u20ac".encode()[:2], b"\x00\xff ab"):
        ids = codec.string_to_tokens(text)
        assert b"".join(codec.token_bytes[i] for i in ids) == text


@pytest.mark.parametrize("bad", [0, -3, 2.5, "4", True, None, 129, 10000])
def test_k_below_one_above_the_bound_or_not_int_is_a_clear_error(bad):
    """Above 128 (issue 21: k=10000 filled the machine's memory) as below 1."""
    with pytest.raises(ConfigError, match=r"^k: .*Fix: pass an integer k in \[1, 128\]"):
        check_k(bad)


def test_tokenizer_without_string_form_is_a_clear_error():
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    inner = Tokenizer(WordLevel({"[UNK]": 0, "hello": 1, "world": 2}, unk_token="[UNK]"))
    inner.pre_tokenizer = Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=inner, unk_token="[UNK]")
    with pytest.raises(ConfigError, match=r"^base tokenizer: .*no byte string.*Fix: "):
        CharCodec(tok, 4, argument="base tokenizer")


def _byte_level_bpe(vocab: dict, merges: list):
    from tokenizers import Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    inner = Tokenizer(BPE(vocab=vocab, merges=merges))
    inner.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    inner.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=inner, eos_token="<|end|>")


def test_alphabet_the_vocabulary_cannot_spell_is_one_line_before_model_work():
    """A byte-level BPE whose vocabulary holds only 'a', 'b', ' ' and 'ab': the heads' 256-byte
    alphabet could write 'c' (0x63), which no input token spells -> one line naming the count,
    not a failure in the middle of generation."""
    tok = _byte_level_bpe({"a": 0, "b": 1, "\u0120": 2, "ab": 3, "<|end|>": 4}, [("a", "b")])
    with pytest.raises(
        ConfigError,
        match=r"^base tokenizer: SpeLLM's byte alphabet cannot be spelled.*253 of 256 single bytes have no token \(e\.g\. 0x00.*Fix: ",
    ) as e:
        CharCodec(tok, 4, argument="base tokenizer")
    assert "\n" not in str(e.value)


def test_a_vocabulary_with_every_byte_is_accepted():
    """The same tokenizer completed with all 256 single bytes (byte-level BPE's base alphabet)."""
    from tokenizers import pre_tokenizers

    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab.update({"ab": len(vocab), "<|end|>": len(vocab) + 1})
    codec = CharCodec(_byte_level_bpe(vocab, [("a", "b")]), 4)
    assert codec.string_to_tokens(b"abc") == [vocab["ab"], vocab["c"]]
