"""Answer extraction, normalisation and the vote's tie rule."""

import pytest

from effeval.errors import ConfigError
from effeval.methods.short_mk.answers import is_correct, make_extractor, make_normalizer
from effeval.methods.short_mk.voting import Chain, make_generator, vote


@pytest.mark.parametrize(
    "spec, text, expected",
    [
        ("boxed", "so \\boxed{\\frac{1}{2}} and later \\boxed{x^{2}+1}", "x^{2}+1"),
        ("boxed", "\\boxed{\\sqrt{\\frac{a}{b}}}", "\\sqrt{\\frac{a}{b}}"),
        ("boxed", "unclosed \\boxed{12", None),
        ("number", "3 + 4 = 7, so -12.5 then 1,234", "1,234"),
        ("number", "no digits", None),
        ("number", "it is 27, but not 3", "3"),
        ("number", "the sum is 27, but", "27"),  # SmolLM2 wrote this: not "27,"
        ("mc", "I think the answer is (C).", "C"),
        ("mc", "Answer: b", "B"),
        ("mc", "\\boxed{D}", "D"),
        ("regex:ANSWER=(\\d+)", "ANSWER=3 ... ANSWER=41", "41"),
        ("regex:\\d+", "a 5 b 6", "6"),
    ],
)
def test_extractors(spec, text, expected):
    assert make_extractor(spec)(text) == expected


def test_normalisers_keep_or_merge_equivalent_forms():
    exact, math, numeric = (make_normalizer(n) for n in ("exact", "math", "numeric"))
    assert exact(" $12$. ") == "12"
    assert exact("10.0") != exact("10")
    assert math("10.0") == math("10") == math("+10") == math("010") == "10"
    assert math("1,234") == "1234"
    assert math("\\dfrac{1}{2}") == "\\frac{1}{2}" and math("90^\\circ") == "90"
    assert math("1/2") != math("0.5")  # documented: stays distinct without the numeric normaliser
    assert numeric("1/2") == numeric("0.5") == numeric("\\frac{1}{2}") == "1/2"
    assert is_correct("7", "The total is \\boxed{7}") and not is_correct(None, "7")


def test_bad_extractor_specs():
    with pytest.raises(ConfigError, match="does not compile"):
        make_extractor("regex:([0-9]")
    with pytest.raises(ConfigError, match="unknown extractor"):
        make_extractor("first_word")
    with pytest.raises(ConfigError, match="unknown normaliser"):
        make_normalizer("fuzzy")


def chains(*spec):
    return [Chain(index=i, think_tokens=n, status="finished", vote_key=a) for i, (n, a) in enumerate(spec)]


def test_vote_majority_then_shortest_then_seeded():
    gen = make_generator(0)
    v = vote(chains((9, "a"), (3, "b"), (8, "a")), gen)
    assert v.answer == "a" and v.chosen == 2 and v.margin == 1 and v.tie_break == "none"
    v = vote(chains((9, "a"), (3, "b"), (8, "a"), (5, "b")), gen)
    assert v.answer == "b" and v.chosen == 1 and v.tie_break == "shortest"
    v = vote(chains((9, None), (3, None), (8, "c")), gen)  # answers of None do not vote
    assert v.answer == "c" and v.voters == [2]
    v = vote(chains((9, None), (3, None)), gen)
    assert v.answer is None and v.chosen == 1
    winners = {vote(chains((4, "a"), (4, "b")), make_generator(s)).answer for s in range(16)}
    assert winners == {"a", "b"}  # full tie: seeded, both outcomes reachable
    assert (
        vote(chains((4, "a"), (4, "b")), make_generator(3)).answer
        == vote(chains((4, "a"), (4, "b")), make_generator(3)).answer
    )


def test_task_hooks_score_boxed_and_letters_and_shuffle_deterministically():
    import datasets

    from effeval.methods.short_mk.tasks import gpqa_process_docs, process_results_boxed, process_results_mc
    from effeval.task_data import data_dir, read_jsonl

    assert process_results_boxed({"answer": "12"}, ["<think> 5+7 </think> \\boxed{12.0}"]) == {
        "exact_match": 1.0
    }
    assert process_results_boxed({"answer": "12"}, ["\\boxed{12} wait \\boxed{13}"]) == {"exact_match": 0.0}
    rows = read_jsonl(data_dir() / "short_mk" / "mc_mini.jsonl")
    docs = gpqa_process_docs(datasets.Dataset.from_list(rows))
    again = gpqa_process_docs(datasets.Dataset.from_list(rows))
    assert list(docs) == list(again)
    assert len({d["answer"] for d in docs}) > 1  # the correct answer is not always in the same slot
    for doc, row in zip(docs, rows):
        letter = doc["answer"]
        assert f"({letter}) {row['Correct Answer']}" in doc["question"]
        assert process_results_mc(doc, [f"<think>hmm (A)</think> so \\boxed{{{letter}}}"]) == {
            "exact_match": 1.0
        }
