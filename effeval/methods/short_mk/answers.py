"""Answer extraction and normalisation for voting.

Extractors (the ``answer`` argument):

- ``boxed``: the content of the LAST ``\\boxed{...}`` (nested braces balanced, so
  ``\\boxed{\\frac{1}{2}}`` gives ``\\frac{1}{2}``); ``\\fbox{...}`` counts too.
- ``number``: the last number in the text (``-3``, ``1,234``, ``0.5``, ``3/4``).
- ``mc``: a multiple-choice letter A-J: ``answer is (C)``, ``Answer: C``, ``\\boxed{C}``, or the
  last stand-alone capital letter in parentheses.
- ``regex:<pattern>``: the last match of ``<pattern>``; its first group when it has groups.

Normalisation (the ``normalize`` argument) decides which answers count as the same vote:

- ``exact``: strip surrounding whitespace, ``$``, a trailing ``.``; collapse inner spaces. ``1/2``
  and ``0.5`` stay DIFFERENT answers.
- ``math`` (default): ``exact`` plus light LaTeX clean-up (``\\left``/``\\right``, ``\\!``,
  ``\\text{..}`` unwrapped, ``dfrac``/``tfrac`` -> ``frac``, ``^\\circ`` dropped), thousands
  separators removed, and plain numbers put in one form (``10.0`` -> ``10``, ``+3`` -> ``3``,
  ``007`` -> ``7``). ``1/2`` vs ``0.5`` and ``\\frac{1}{2}`` vs ``0.5`` still stay distinct:
  for the vote (the judge below, math-verify, does count them equal when scoring).
- ``numeric``: ``math``, then any answer that parses as a number or a simple fraction (``a/b``,
  ``\\frac{a}{b}``) becomes its exact rational value, so ``1/2``, ``0.5`` and ``\\frac{1}{2}`` vote
  together.

Judging (``is_correct``, the task hooks): an answer is correct when ``math-verify`` (Hugging Face's
parser + verifier, the one lm-eval and lighteval use) finds it mathematically equal to the target
(``\\frac{1}{2}`` = ``0.5`` = ``1/2``; ``x=3`` = ``3``; sets and intervals compared as such), OR when
the two are equal after the normaliser. The normaliser is the fallback for answers that are not
mathematics (a word, a letter) or that math-verify cannot parse; it never turns a math-verify
"equal" into "different". The vote still groups answers by the normaliser.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from effeval.errors import ConfigError

EXTRACTORS = ("boxed", "number", "mc", "regex:<pattern>")
NORMALIZERS = ("exact", "math", "numeric")

# a thousands comma sits between digits: "27," in "is 27, but" is the number 27
_NUMBER_RE = re.compile(r"-?\d(?:[\d,]*\d)?(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_MC_PATTERNS = [
    re.compile(r"answer\s*(?:is|:)?\s*[:\s]*\(?\s*([A-J])\s*\)?(?![A-Za-z])", re.IGNORECASE),
    re.compile(r"\\boxed\{\s*\(?([A-J])\)?\s*\}"),
    re.compile(r"\(([A-J])\)"),
    re.compile(r"(?<![A-Za-z])([A-J])(?![A-Za-z])"),
]


def find_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` with balanced braces, or None."""
    best = None
    for match in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, start = 1, match.end()
        i = start
        while i < len(text) and depth:
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
            i += 1
        if depth == 0:
            best = text[start : i - 1]
    return best


def last_number(text: str) -> str | None:
    found = _NUMBER_RE.findall(text)
    return found[-1] if found else None


def mc_letter(text: str) -> str | None:
    for pattern in _MC_PATTERNS:
        found = pattern.findall(text)
        if found:
            return found[-1].upper()
    return None


@dataclass(frozen=True)
class Extractor:
    """``spec`` as given; ``__call__(text)`` -> the raw answer string or None."""

    spec: str
    fn: Callable[[str], str | None]

    def __call__(self, text: str) -> str | None:
        return self.fn(text)


def make_extractor(spec: str, argument: str = "answer") -> Extractor:
    """Build an extractor from ``boxed`` / ``number`` / ``mc`` / ``regex:<pattern>``."""
    spec = str(spec).strip()
    if spec == "boxed":
        return Extractor(spec, find_boxed)
    if spec in ("number", "last_number"):
        return Extractor(spec, last_number)
    if spec in ("mc", "letter"):
        return Extractor(spec, mc_letter)
    if spec.startswith("regex:"):
        pattern = spec[len("regex:") :]
        if not pattern:
            raise ConfigError(
                f"{argument}: 'regex:' has an empty pattern. Fix: write regex:<pattern>, e.g. regex:ANSWER=(\\d+)"
            )
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ConfigError(
                f"{argument}: the regex {pattern!r} does not compile ({exc}). Fix: pass a valid Python "
                "regular expression after 'regex:' (escape braces/brackets; ',' inside model_args needs quoting)"
            ) from None

        def by_regex(text: str) -> str | None:
            last = None
            for match in compiled.finditer(text):
                last = match.group(1) if compiled.groups else match.group(0)
            return last

        return Extractor(spec, by_regex)
    raise ConfigError(f"{argument}: unknown extractor {spec!r}. Fix: use one of {', '.join(EXTRACTORS)}")


# ----------------------------------------------------------------------------- normalisation


def _normalize_exact(ans: str) -> str:
    previous = None
    while previous != ans:  # "$12$." -> "12": peel dollars, trailing dots and spaces in any order
        previous = ans
        ans = ans.strip().strip("$").rstrip(".")
    return re.sub(r"\s+", " ", ans)


def _unwrap_text(ans: str) -> str:
    return re.sub(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}", r"\1", ans)


def _canonical_number(ans: str) -> str | None:
    """``+3`` / ``007`` / ``10.0`` / ``1,234`` -> ``3`` / ``7`` / ``10`` / ``1234``; None if not a number."""
    plain = ans.replace(",", "") if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?", ans) else ans
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", plain):
        return None
    value = Fraction(plain)
    if value.denominator == 1:
        return str(value.numerator)
    text = plain.lstrip("+")
    sign = "-" if text.startswith("-") else ""
    text = text.lstrip("-").lstrip("0") or "0"
    if text.startswith("."):
        text = "0" + text
    return sign + text.rstrip("0").rstrip(".")


def _normalize_math(ans: str) -> str:
    ans = _normalize_exact(ans)
    ans = ans.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace("\\,", "")
    ans = ans.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    ans = re.sub(r"\^\s*\{?\\circ\}?", "", ans)
    ans = _unwrap_text(ans)
    ans = _normalize_exact(ans)
    number = _canonical_number(ans)
    return number if number is not None else ans


def _as_fraction(ans: str) -> Fraction | None:
    m = re.fullmatch(r"\\frac\{?\s*(-?\d+)\s*\}?\{?\s*(-?\d+)\s*\}?", ans) or re.fullmatch(
        r"(-?\d+)\s*/\s*(-?\d+)", ans
    )
    try:
        if m:
            return Fraction(int(m.group(1)), int(m.group(2)))
        if re.fullmatch(r"-?(\d+(\.\d*)?|\.\d+)", ans):
            return Fraction(ans)
    except (ValueError, ZeroDivisionError):
        return None
    return None


def _normalize_numeric(ans: str) -> str:
    ans = _normalize_math(ans)
    value = _as_fraction(ans)
    if value is None:
        return ans
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


_NORMALIZERS = {"exact": _normalize_exact, "math": _normalize_math, "numeric": _normalize_numeric}


def make_normalizer(name: str, argument: str = "normalize") -> Callable[[str | None], str | None]:
    if name not in _NORMALIZERS:
        raise ConfigError(
            f"{argument}: unknown normaliser {name!r}. Fix: use one of {', '.join(NORMALIZERS)}"
        )
    fn = _NORMALIZERS[name]

    def normalize(ans: str | None) -> str | None:
        if ans is None:
            return None
        out = fn(str(ans))
        return out if out != "" else None

    return normalize


# ----------------------------------------------------------------------------- math-verify judge

MATH_VERIFY_INSTALL = "pip install 'math-verify>=0.7'"


def _math_verify():
    try:
        import math_verify
    except ImportError:
        raise ConfigError(
            f"math answers: the math-verify package is not installed. Fix: {MATH_VERIFY_INSTALL} (or make setup)"
        ) from None
    return math_verify


def _timeout_seconds() -> int | None:
    # math-verify's timeouts use SIGALRM, which only the main thread may set.
    return 5 if threading.current_thread() is threading.main_thread() else None


def parse_math(text: str, whole_response: bool = False) -> list:
    """math-verify's parse of an answer (``$..$`` added around a bare answer so LaTeX is read as
    LaTeX) or, with ``whole_response``, of a full response (its extraction: last ``\\boxed{}``
    first, then "final answer is", then the last expression). Empty list = nothing parsed."""
    mv = _math_verify()
    timeout = _timeout_seconds()
    candidates = [text] if whole_response else [f"${text}$", text]
    for candidate in candidates:
        parsed = mv.parse(candidate, parsing_timeout=timeout)
        if parsed:
            return parsed
    return []


def math_verify_equal(answer: str, target: str, whole_response: bool = False) -> bool:
    """math-verify's verdict: ``target`` (gold) against ``answer``; False when either does not parse."""
    gold = parse_math(target)
    pred = parse_math(answer, whole_response=whole_response)
    if not gold or not pred:
        return False
    return bool(_math_verify().verify(gold, pred, timeout_seconds=_timeout_seconds()))


def is_correct(
    answer: str | None, target: str | None, normalize: str = "math", extract_target: bool = True
) -> bool:
    """Whether ``answer`` equals ``target``: math-verify says they are equal, or they are equal after
    the same normalisation (the fallback for non-math answers).

    A target that itself contains ``\\boxed{}`` (MATH solutions) is reduced to its boxed content.
    """
    if answer is None or target is None:
        return False
    norm = make_normalizer(normalize)
    target = str(target)
    if extract_target:
        boxed = find_boxed(target)
        if boxed is not None:
            target = boxed
    if norm(answer) is not None and norm(answer) == norm(target):
        return True
    return math_verify_equal(str(answer), target)
