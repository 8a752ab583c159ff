"""Hooks for the lm-eval task YAMLs in ``task_configs/short_mk/`` (plain functions, no lm_eval import).

Scoring: the response is the chosen chain's full text; its LAST ``\\boxed{...}`` (nested braces)
is judged against the target by ``answers.is_correct``: math-verify (``\\frac{1}{2}`` = ``0.5``),
with the ``math`` normaliser as fallback for non-math answers. Multiple-choice tasks compare the letter.
"""

from __future__ import annotations

import hashlib
import random

from effeval.methods.short_mk.answers import find_boxed, is_correct, mc_letter


def _score(pred: str | None, target: str | None) -> float:
    return float(is_correct(pred, target, normalize="math", extract_target=False))


def process_results_boxed(doc: dict, results: list[str]) -> dict:
    """exact_match of the last ``\\boxed{}`` against ``doc["answer"]``."""
    return {"exact_match": _score(find_boxed(results[0]), doc.get("answer"))}


def process_results_mc(doc: dict, results: list[str]) -> dict:
    """exact_match of the multiple-choice letter (boxed or 'answer is (X)') against ``doc["answer"]``."""
    text = results[0]
    boxed = find_boxed(text)
    letter = mc_letter(boxed) if boxed is not None else mc_letter(text.split("</think>")[-1])
    return {"exact_match": float(letter is not None and letter == str(doc.get("answer", "")).strip().upper())}


def gpqa_process_docs(dataset):
    """GPQA rows -> ``question`` with four lettered choices and ``answer`` (the letter).

    Choice order is shuffled with a seed derived from the question text, so it is the same on
    every run and machine (lm-eval's own GPQA task shuffles with Python's global RNG)."""

    def one(doc: dict) -> dict:
        choices = [
            doc["Correct Answer"],
            doc["Incorrect Answer 1"],
            doc["Incorrect Answer 2"],
            doc["Incorrect Answer 3"],
        ]
        choices = [str(c).strip() for c in choices]
        rng = random.Random(int(hashlib.sha256(doc["Question"].encode()).hexdigest()[:16], 16))
        order = list(range(4))
        rng.shuffle(order)
        letters = "ABCD"
        lines = [f"({letters[i]}) {choices[j]}" for i, j in enumerate(order)]
        return {
            "question": doc["Question"].strip() + "\n\n" + "\n".join(lines),
            "answer": letters[order.index(0)],
        }

    return dataset.map(one, remove_columns=list(dataset.column_names))
