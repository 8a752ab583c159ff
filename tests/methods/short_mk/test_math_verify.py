"""short-m@k answers are judged by math-verify: forms that are equal as mathematics are equal
(``\\frac{1}{2}``, ``0.5``, ``1/2``), different values are not, and non-math answers fall back to
the normaliser. ``judge_contract`` is shown able to fail: string equality and a judge that accepts
everything are both rejected by it."""

import pytest

from effeval.methods.short_mk.answers import is_correct, math_verify_equal
from effeval.methods.short_mk.tasks import process_results_boxed

EQUAL = [
    ("\\frac{1}{2}", "0.5"),
    ("0.5", "1/2"),
    ("1/2", "\\frac{1}{2}"),
    ("\\dfrac{3}{4}", "0.75"),
    ("\\frac{2}{4}", "\\frac{1}{2}"),
    ("2\\sqrt{2}", "\\sqrt{8}"),
    ("x = 3", "3"),
    ("10.0", "10"),
]
DIFFERENT = [
    ("0.25", "\\frac{1}{2}"),
    ("1/3", "0.33"),
    ("205", "204"),
    ("\\sqrt{2}", "2"),
    ("-\\frac{1}{2}", "0.5"),
]


def judge_contract(judge):
    for answer, target in EQUAL:
        assert judge(answer, target), f"{answer!r} should equal {target!r}"
    for answer, target in DIFFERENT:
        assert not judge(answer, target), f"{answer!r} should differ from {target!r}"


def test_math_verify_judge_meets_the_contract():
    judge_contract(is_correct)
    judge_contract(math_verify_equal)


@pytest.mark.parametrize(
    "wrong_judge",
    [lambda a, t: a.strip() == t.strip(), lambda a, t: True],
    ids=["string-equality", "accepts-everything"],
)
def test_the_contract_rejects_wrong_judges(wrong_judge):
    with pytest.raises(AssertionError):
        judge_contract(wrong_judge)


def test_non_math_answers_fall_back_to_the_normaliser():
    assert is_correct("$12$.", "12")
    assert is_correct("\\text{Evelyn}", "Evelyn")
    assert not is_correct("Evelyn", "Bob")
    assert not is_correct(None, "1/2")


def test_task_hook_scores_the_last_boxed_answer_by_math_verify():
    assert process_results_boxed({"answer": "0.5"}, ["so \\boxed{\\frac{1}{2}}"]) == {"exact_match": 1.0}
    assert process_results_boxed({"answer": "\\frac{1}{2}"}, ["\\boxed{1/2}"]) == {"exact_match": 1.0}
    assert process_results_boxed({"answer": "0.5"}, ["\\boxed{\\frac{1}{2}} no, \\boxed{3}"]) == {
        "exact_match": 0.0
    }
    assert process_results_boxed({"answer": "0.5"}, ["one half, unboxed"]) == {"exact_match": 0.0}


def test_whole_response_parsing_takes_the_boxed_answer():
    response = "First 1 + 1 = 2, then halve: the answer is \\boxed{\\frac{1}{2}}."
    assert math_verify_equal(response, "0.5", whole_response=True)
    assert not math_verify_equal(response, "2", whole_response=True)


def test_offline_paper_tasks_load_mmath_and_judge_by_math_verify(repo_root):
    from lm_eval.tasks import TaskManager, get_task_dict

    manager = TaskManager(include_path=str(repo_root / "task_configs"), include_defaults=False)
    (tasks,) = get_task_dict(["short_mk_offline"], manager).values()  # the group's tasks
    assert {name: len(task.test_docs()) for name, task in tasks.items()} == {
        "short_mk_aime24_offline": 30,
        "short_mk_aime25_offline": 15,
        "short_mk_math500_offline": 311,
    }
    aime = tasks["short_mk_aime24_offline"]
    doc = aime.test_docs()[0]  # AIME 2024 I problem 1 (Aya's walk): 204 minutes
    assert aime.doc_to_text(doc).startswith("Every morning Aya goes for a $9$-kilometer-long walk")
    assert aime.doc_to_text(doc).endswith(
        "\nPlease reason step by step, and put your final answer within \\boxed{}."
    )
    assert aime.process_results(doc, ["... so \\boxed{204.0}"]) == {"exact_match": 1.0}
    assert aime.process_results(doc, ["... so \\boxed{\\frac{408}{2}}"]) == {"exact_match": 1.0}
    assert aime.process_results(doc, ["... so \\boxed{240}"]) == {"exact_match": 0.0}


@pytest.mark.parametrize(
    "task", ["short_mk_aime24", "short_mk_aime25", "short_mk_hmmt_feb25", "short_mk_math500"]
)
def test_hub_backed_paper_tasks_judge_by_math_verify(repo_root, task):
    """The paper suite's hub tasks (no data needed to read their YAML) resolve their scoring hook to
    the math-verify judge: an equivalent LaTeX answer scores 1, a different value 0. A hook that
    compared strings would score the first pair 0 and fail."""
    from lm_eval.tasks._yaml_loader import load_yaml

    config = load_yaml(repo_root / "task_configs" / "short_mk" / f"{task}.yaml")
    hook = config["process_results"]
    assert hook({"answer": "0.5"}, ["so \\boxed{\\frac{1}{2}}"]) == {"exact_match": 1.0}
    assert hook({"answer": "\\frac{3}{4}"}, ["\\boxed{0.75}"]) == {"exact_match": 1.0}
    assert hook({"answer": "0.5"}, ["\\boxed{0.25}"]) == {"exact_match": 0.0}
