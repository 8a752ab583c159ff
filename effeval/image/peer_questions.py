"""Yes/no questions for peer prompts that ship without any (T2I-CompBench, TIFA text inputs).

No parser: a small lexicon (T2I-CompBench's colour / material / shape / size words, its spatial
relations, number words) and determiner-led noun phrases. What each prompt allows:

- every record: a ``presence`` question per object it names;
- attribute words in front of an object (``a red bench``): a ``binding`` question;
- ``<number> <noun>`` (numeracy): a ``count`` question ("Are there exactly four tents?");
- ``X <relation> Y`` (spatial, 3d_spatial, complex): a ``relation`` question.

Every question of a faithful image is answered "yes".
"""

from __future__ import annotations

import re

COLOURS = "red brown blue green yellow white black gold pink silver purple orange gray grey beige".split()
MATERIALS = "metallic metal wooden fabric leather fluffy glass plastic rubber".split()
SHAPES = (
    "rectangular spherical round teardrop pyramidal triangular diamond pentagonal conical "
    "cylindrical oblong cubic oval square circular crescent"
).split()
SIZES = "small short big tall long large tiny".split()
ATTRIBUTES = set(COLOURS) | set(MATERIALS) | set(SHAPES) | set(SIZES)
NUMBERS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
# T2I-CompBench's spatial and 3d_spatial relations (and common variants), longest first.
RELATIONS = sorted(
    [
        "on the top of",
        "on the bottom of",
        "on the left of",
        "on the right of",
        "on the side of",
        "on side of",
        "on top of",
        "to the left of",
        "to the right of",
        "next to",
        "in front of",
        "hidden by",
        "behind",
        "near",
        "above",
        "below",
        "under",
        "beside",
        "on",
    ],
    key=len,
    reverse=True,
)
DETERMINERS = {"a", "an", "the", "some", "many"}
# words that end a noun phrase (auxiliaries, prepositions, conjunctions, pronouns)
_STOP = set(
    """is was are were be been being has have had do does did will would can could to of in on at
    with for from by into onto over under near next behind above below beside and or but while as
    that which who whom whose it its their his her they them he she this these those there here
    up down off out around through across between among against during before after than then
    so very also not no""".split()
)
_AUX = {"is", "was", "are", "were", "lying", "sitting", "standing", "placed", "resting", "being"}
_WORD = re.compile(r"[A-Za-z\u00c0-\u024f][\w\u00c0-\u024f'-]*|[.,;:!?]")


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def _looks_plural(noun: str) -> bool:
    last = noun.split()[-1]
    return last.endswith("s") and not last.endswith(("ss", "us", "is")) or last in ("people", "sheep", "fish")


def presence(noun: str, plural: bool | None = None) -> str:
    plural = _looks_plural(noun) if plural is None else plural
    return f"Are there {noun}?" if plural else f"Is there {_article(noun)} {noun}?"


class _Builder:
    """Collects questions for one prompt without repeats; ids q0, q1, ..."""

    def __init__(self) -> None:
        self.questions: list[dict] = []

    def add(self, text: str, kind: str, item: str, origin: str = "effeval") -> None:
        if any(q["text"].lower() == text.lower() for q in self.questions):
            return
        self.questions.append(
            {
                "id": f"q{len(self.questions)}",
                "text": text,
                "kind": kind,
                "expected": "yes",
                "item": item,
                "origin": origin,  # "t2i-compbench": the peer's own question; "effeval": derived here
            }
        )

    def phrase(self, attributes: list[str], noun: str, plural: bool | None = None) -> None:
        if not noun:
            return
        self.add(presence(noun, plural), "presence", noun)
        for attr in attributes:
            verb = "are" if (_looks_plural(noun) if plural is None else plural) else "is"
            self.add(f"{verb.capitalize()} the {noun} {attr}?", "binding", noun)


def noun_phrases(text: str) -> list[tuple[int, int, list[str], str]]:
    """Determiner- or number-led noun phrases: (first word index, end index, attributes, noun).

    A phrase runs from the word after ``a/an/the/<number>`` to the first stop word, punctuation,
    past-tense or -ing verb (``eight cats lounged``), at most four words; leading lexicon
    attributes are split off the noun."""
    words = _WORD.findall(text)
    low = [w.lower() for w in words]
    out = []
    i = 0
    while i < len(low):
        if low[i] in DETERMINERS or low[i] in NUMBERS:
            j = i + 1
            body: list[str] = []
            while j < len(low) and len(body) < 4:
                w = low[j]
                if not w[0].isalpha() or w in _STOP or w in DETERMINERS or w in NUMBERS:
                    break
                if body and (w.endswith("ed") or w.endswith("ing")) and w not in ATTRIBUTES:
                    break
                body.append(w)
                j += 1
            attrs = []
            while len(body) > 1 and body[0] in ATTRIBUTES:
                attrs.append(body.pop(0))
            if body and not (len(body) == 1 and body[0] in ATTRIBUTES):
                out.append((i, j, attrs, " ".join(body)))
            i = max(j, i + 1)
        else:
            i += 1
    return out


def _relation_between(gap: list[str]) -> str | None:
    words = [w for w in gap if w not in _AUX]
    text = " ".join(words)
    for rel in RELATIONS:
        if text == rel:
            return rel
    return None


def generic_questions(prompt: str) -> list[dict]:
    """Presence and attribute questions for each noun phrase; relation questions where a known
    relation sits between two consecutive phrases (``The red hat was on top of the coat rack``)."""
    b = _Builder()
    low = [w.lower() for w in _WORD.findall(prompt)]
    phrases = noun_phrases(prompt)
    for start, _end, attrs, noun in phrases:
        count = NUMBERS.get(low[start])
        b.phrase(attrs, noun, plural=None if count is None else count > 1)
        if count is not None:
            _count_question(b, count, noun)
    for (_s1, e1, _a1, n1), (s2, _e2, _a2, n2) in zip(phrases, phrases[1:]):
        rel = _relation_between(low[e1:s2])
        if rel and n1 != n2:
            b.add(f"Is the {n1} {rel} the {n2}?", "relation", n1)
    return b.questions


def _count_question(b: _Builder, count: int, noun: str) -> None:
    word = next(w for w, n in NUMBERS.items() if n == count)
    text = f"Is there exactly one {noun}?" if count == 1 else f"Are there exactly {word} {noun}?"
    b.add(text, "count", noun)


def _split_attribute_phrase(phrase: str, category: str) -> tuple[list[str], str, bool]:
    """``a green bench`` -> (["green"], "bench", False); the first word is the category's
    attribute for shape/texture phrases even when it is not in the lexicon."""
    words = phrase.split()
    had_article = bool(words) and words[0].lower() in ("a", "an", "the")
    if had_article:
        words = words[1:]
    # cut at the first stop word: "bathroom with green tile" -> "bathroom"
    for k, w in enumerate(words):
        if k and (w.lower() in _STOP or w.lower() in DETERMINERS):
            words = words[:k]
            break
    attrs = []
    while len(words) > 1 and (
        words[0].lower() in ATTRIBUTES or (not attrs and category in ("shape", "texture"))
    ):
        attrs.append(words.pop(0).lower())
    noun = " ".join(words).lower()
    plural = not had_article and _looks_plural(noun)
    return attrs, noun, plural


def compbench_questions(prompt: str, category: str) -> list[dict]:
    """Questions for a T2I-CompBench prompt of category base ``color``, ``shape``, ``texture``,
    ``spatial``, ``3d_spatial``, ``numeracy``, ``complex`` or ``non_spatial``.

    color/shape/texture keep T2I-CompBench's own BLIP-VQA questions first (each noun phrase
    asked as ``"<phrase>?"``, kind binding), then presence per object."""
    b = _Builder()
    if category in ("color", "shape", "texture"):
        phrases = [p.strip() for p in re.split(r",\s*|\s+and\s+", prompt.rstrip(".")) if p.strip()]
        for p in phrases:
            b.add(f"{p}?", "binding", p, origin="t2i-compbench")
        nouns = set()
        for p in phrases:
            attrs, noun, plural = _split_attribute_phrase(p, category)
            if noun:
                nouns.add(noun)
                b.add(presence(noun, plural), "presence", noun)
        # sentences ("A bathroom with green tile and ...") may name more objects
        for q in generic_questions(prompt):
            if q["kind"] == "presence" and q["item"] not in nouns:
                b.add(q["text"], q["kind"], q["item"])
        return b.questions
    m = re.fullmatch(
        r"(?:a|an|the)\s+(.+?)\s+(" + "|".join(map(re.escape, RELATIONS)) + r")\s+(?:a|an|the)\s+(.+?)\.?",
        prompt.strip(),
        flags=re.IGNORECASE,
    )
    if category in ("spatial", "3d_spatial") and m:
        x, rel, y = m.group(1).lower(), m.group(2).lower(), m.group(3).lower()
        b.add(presence(x, False), "presence", x)
        b.add(presence(y, False), "presence", y)
        b.add(f"Is the {x} {rel} the {y}?", "relation", x)
        return b.questions
    for q in generic_questions(prompt):
        b.add(q["text"], q["kind"], q["item"], q["origin"])
    if not b.questions:
        # a prompt with no determiner-led phrase ("rubber sole shoes and fluffy clouds"):
        # its " and "/"," parts are the objects
        for p in re.split(r",\s*|\s+and\s+", prompt.strip().rstrip(".")):
            attrs, noun, plural = _split_attribute_phrase(p, category)
            b.phrase(attrs, noun, plural)
    return b.questions
