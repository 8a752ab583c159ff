"""Metrics for the hetero-spec tasks: ROUGE-L F1 for summaries, SQuAD-style
token F1 for Qasper answers, and pass@1 for programming (the completion runs with the task's
tests in effeval's guarded runner, effeval.code_runner; lm-eval asks for --confirm_run_unsafe_code)."""

import collections
import re

from effeval.code_runner import Limits, humaneval_program, run_program


def _tokens(text):
    return re.findall(r"\w+", text.lower())


def _lcs(a, b):
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(prediction, reference):
    p, r = _tokens(prediction), _tokens(reference)
    if not p or not r:
        return 0.0
    lcs = _lcs(p, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction, reference):
    p, r = _tokens(prediction), _tokens(reference)
    common = sum((collections.Counter(p) & collections.Counter(r)).values())
    if not p or not r or common == 0:
        return float(p == r)
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def process_summary(doc, results):
    return {"rougeL": rouge_l(results[0], doc["highlights"])}


def process_qa(doc, results):
    answers = doc["output"] if isinstance(doc["output"], list) else [doc["output"]]
    return {"f1": max(token_f1(results[0], a) for a in answers)}


def process_code(doc, results):
    # confirmed: lm-eval calls this scorer of an `unsafe_code: true` task only after
    # --confirm_run_unsafe_code (tests/foundation/test_code_runner.py checks every YAML using it)
    outcome = run_program(humaneval_program(doc, results[0]), confirmed=True, limits=Limits(timeout_s=10.0))
    return {"pass@1": float(outcome.passed)}
