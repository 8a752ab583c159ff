"""Image benchmarks as data: effeval's own JSONL files and loaders for peers' native prompt files.

Every loader returns records in one format (the VQA scorer asks ``questions``)::

    {"id": "leakage-001", "prompt": "a zebra and a cup on a table", "benchmark": "leakage",
     "category": "pattern", "items": ["zebra", "cup"],
     "questions": [{"id": "leak", "text": "Does the cup have black and white stripes?",
                    "kind": "leak", "expected": "no", "item": "cup"}, ...],
     # optional, by benchmark:
     "leak": {"source": "zebra", "target": "cup", "property": "black and white stripes"},
     "pairs": [{"attribute": "red", "object": "car"}, ...],
     "expressions": [{"text": "Golden Gate Bridge", "words": [2, 5], "char_start": 21, "char_end": 39}],
     "source": {"format": "geneval", "file": "...", "line": 7}}

Question kinds: ``presence`` (an object is there), ``leak`` (a property of one item shows on
another; expected "no"), ``binding`` (an attribute sits on the right object), ``count``,
``relation``, ``other``. ``expected`` is always "yes" or "no". Words of ``expressions`` are
whitespace-separated words of the prompt: ``prompt.split()[start:end]``.

Built-in benchmarks (``effeval/image/data/*.jsonl``, written for effeval): ``leakage``,
``omission``, ``binding``, ``mwe``; generated from a seed in the shapes world
(``effeval/image/shapes/benchmarks.py``): ``shapes-leakage``, ``shapes-omission``,
``shapes-binding`` (``NAME@SEED`` for another seed). Peer formats (auto-detected from the file, or forced with a
``FORMAT:`` prefix such as ``geneval:PATH``):

- ``geneval``: GenEval ``evaluation_metadata.jsonl`` (``tag``, ``include``, ``exclude``).
- ``t2i-compbench``: a T2I-CompBench category ``.txt`` file (one prompt per line; category = stem).
- ``tifa``: TIFA question-answer JSON (or a text-inputs JSON: prompts without questions).
- ``dsg``: DSG annotations CSV (``item_id,text,keywords,proposition_id,dependency,...``).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from pathlib import Path
from typing import Any

from effeval.errors import ConfigError
from effeval.image.peer_questions import compbench_questions, generic_questions

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).parent / "data"
BUILTIN = ("leakage", "omission", "binding", "mwe")
FORMATS = ("effeval", "geneval", "t2i-compbench", "tifa", "dsg")
QUESTION_KINDS = ("presence", "leak", "binding", "count", "relation", "other")
ARG = "--benchmark"


def _err(where: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"{ARG}: {where}: {problem}. Fix: {fix}")


def jsonl_lines(path: Path, what: str):
    """``(line number, "path:line", line)`` for every non-empty line of a UTF-8 text file."""
    for lineno, line in enumerate(io.StringIO(read_utf8(path, what)), 1):
        if line.strip():
            yield lineno, f"{path}:{lineno}", line


def _grouped_record(fmt: str, rid: str, prompt: str, where: dict, path: Path, **extra) -> dict:
    """An empty record of a peer file whose rows are questions grouped by item id (TIFA, DSG):
    category = the id without its trailing ``_N``; questions are appended by the caller."""
    return {
        "id": rid,
        "prompt": prompt,
        "benchmark": fmt,
        "category": rid.rsplit("_", 1)[0],
        "items": [],
        "questions": [],
        **extra,
        "expressions": [],
        "source": {"format": fmt, "file": path.name, **where},
    }


def read_utf8(path: Path, what: str) -> str:
    """The file's text; a file that is not UTF-8 (latin-1, binary) is one clear error naming the
    byte offset, never a traceback or text silently decoded with replacement characters."""
    try:
        return Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _err(
            str(path),
            f"not UTF-8 text (byte {exc.start}: {exc.reason})",
            f"pass {what} saved as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
        ) from None
    except OSError as exc:
        raise _err(str(path), f"cannot be read ({exc.strerror})", "pass a readable file") from None


def list_benchmarks() -> list[str]:
    from effeval.image.shapes.benchmarks import SHAPES_BENCHMARKS

    return list(BUILTIN) + list(SHAPES_BENCHMARKS)


def load_benchmark(name_or_path: str, limit: int | None = None) -> list[dict]:
    """Records of a built-in benchmark name, or of a file in any supported format."""
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise ConfigError(f"{ARG}: empty benchmark. Fix: use one of {', '.join(BUILTIN)} or a file path")
    spec = name_or_path.strip()
    fmt = None
    m = re.match(r"^([a-z0-9-]+):(.+)$", spec)
    if m and m.group(1) in FORMATS:
        fmt, spec = m.group(1), m.group(2)
    if fmt is None and spec in BUILTIN:
        records = load_effeval_jsonl(DATA_DIR / f"{spec}.jsonl", benchmark=spec)
    elif fmt is None and spec.startswith("shapes-") and not Path(spec).exists():
        from effeval.image.shapes.benchmarks import load_shapes_benchmark

        name = spec.partition("@")[0]
        records = [validate_record(r, f"{name}:{r['id']}", name) for r in load_shapes_benchmark(spec)]
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"{ARG}: {name_or_path!r} is neither a built-in benchmark nor an existing file. "
                f"Fix: use one of {', '.join(BUILTIN)}, or a path to a JSONL / GeneEval / T2I-CompBench / TIFA / DSG file "
                f"(optionally prefixed with one of {', '.join(f + ':' for f in FORMATS)})"
            )
        fmt = fmt or detect_format(path)
        loader = {
            "effeval": load_effeval_jsonl,
            "geneval": load_geneval,
            "t2i-compbench": load_t2i_compbench,
            "tifa": load_tifa,
            "dsg": load_dsg,
        }[fmt]
        records = loader(path)
    if not records:
        raise ConfigError(f"{ARG}: {name_or_path} holds no prompts. Fix: use a file with at least one record")
    if limit is not None:
        if int(limit) < 1:
            raise ConfigError(f"--limit: {limit} is not positive. Fix: pass a count >= 1")
        records = records[: int(limit)]
    return records


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return "t2i-compbench"
    if suffix == ".csv":
        return "dsg"
    if suffix == ".json":
        return "tifa"
    if suffix == ".jsonl":
        for line in read_utf8(path, "a JSONL benchmark").splitlines():
            if True:
                if line.strip():
                    try:
                        first = json.loads(line)
                    except json.JSONDecodeError:
                        return "effeval"  # the effeval loader reports the line
                    return (
                        "geneval"
                        if isinstance(first, dict) and "tag" in first and "include" in first
                        else "effeval"
                    )
        return "effeval"
    raise ConfigError(
        f"{ARG}: cannot tell the format of {path} from its suffix {suffix or '(none)'}. "
        f"Fix: prefix the path with the format, one of {', '.join(f + ':' for f in FORMATS)}"
    )


# --------------------------------------------------------------------------------------------
# effeval JSONL


def _check_question(q: Any, j: int, where: str) -> dict:
    if not isinstance(q, dict):
        raise _err(
            where,
            f"questions[{j}] is {type(q).__name__}, not an object",
            'write {"text": ..., "expected": "yes"}',
        )
    text = q.get("text")
    if not isinstance(text, str) or not text.strip():
        raise _err(where, f"questions[{j}] has no 'text'", "give every question its text")
    expected = q.get("expected")
    if expected not in ("yes", "no"):
        raise _err(where, f"questions[{j}].expected is {expected!r}", 'use "yes" or "no"')
    kind = q.get("kind", "other")
    if kind not in QUESTION_KINDS:
        raise _err(where, f"questions[{j}].kind is {kind!r}", f"use one of {', '.join(QUESTION_KINDS)}")
    out = dict(q)
    out.update(id=str(q.get("id", f"q{j}")), text=text.strip(), kind=kind, expected=expected)
    return out


def validate_record(rec: Any, where: str, benchmark: str) -> dict:
    """Check one effeval record (``where`` = "file:line") and fill in defaults and char spans."""
    if not isinstance(rec, dict):
        raise _err(
            where, f"the line is a JSON {type(rec).__name__}, not an object", "write one JSON object per line"
        )
    for key in ("id", "prompt"):
        if not isinstance(rec.get(key), str) or not rec[key].strip():
            raise _err(where, f"missing or empty '{key}'", f'add "{key}": "<text>"')
    rec = dict(rec)
    prompt = rec["prompt"]
    questions = rec.get("questions", [])
    if not isinstance(questions, list):
        raise _err(where, "'questions' is not a list", "write questions as a JSON list")
    rec["questions"] = [_check_question(q, j, where) for j, q in enumerate(questions)]
    ids = [q["id"] for q in rec["questions"]]
    if len(set(ids)) != len(ids):
        raise _err(where, f"question ids repeat: {ids}", "give each question of a record a distinct id")
    items = rec.get("items", [])
    if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
        raise _err(where, "'items' is not a list of strings", 'write "items": ["cat", "cup"]')
    for item in items:
        if item.lower() not in prompt.lower():
            raise _err(
                where,
                f"item {item!r} does not occur in the prompt {prompt!r}",
                "use items spelled as in the prompt",
            )
    leak = rec.get("leak")
    if leak is not None:
        if not isinstance(leak, dict) or not {"source", "target"} <= set(leak):
            raise _err(
                where, "'leak' needs 'source' and 'target'", 'write "leak": {"source": ..., "target": ...}'
            )
        for role in ("source", "target"):
            if leak[role] not in items:
                raise _err(
                    where, f"leak.{role} {leak[role]!r} is not one of the items {items}", "list it in 'items'"
                )
    expressions = rec.get("expressions", [])
    if not isinstance(expressions, list):
        raise _err(
            where,
            "'expressions' is not a list",
            'write "expressions": [{"text": ..., "words": [start, end]}]',
        )
    words = prompt.split()
    starts, pos = [], 0
    for w in words:  # character offset of each whitespace-separated word
        pos = prompt.index(w, pos)
        starts.append(pos)
        pos += len(w)
    spans = []
    for e in expressions:
        span = e.get("words") if isinstance(e, dict) else None
        if (
            not isinstance(span, list)
            or len(span) != 2
            or not all(isinstance(x, int) for x in span)
            or not 0 <= span[0] < span[1] <= len(words)
        ):
            raise _err(
                where,
                f"expression {e!r} has no valid 'words': [start, end] within the prompt's {len(words)} words",
                "give the expression's word span as prompt.split()[start:end]",
            )
        text = " ".join(words[span[0] : span[1]])
        if e.get("text") != text:
            raise _err(
                where,
                f"expression text {e.get('text')!r} != words {span} of the prompt ({text!r})",
                "make 'text' equal the words in the span",
            )
        end_word = span[1] - 1
        spans.append(
            {**e, "char_start": starts[span[0]], "char_end": starts[end_word] + len(words[end_word])}
        )
    rec["expressions"] = spans
    rec.setdefault("benchmark", benchmark)
    rec.setdefault("category", benchmark)
    rec["items"] = items
    return rec


def load_effeval_jsonl(path: Path, benchmark: str | None = None) -> list[dict]:
    path = Path(path)
    benchmark = benchmark or path.stem
    records, seen = [], {}
    for lineno, where, line in jsonl_lines(path, "an effeval JSONL benchmark"):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _err(
                where, f"invalid JSON ({exc.msg} at column {exc.colno})", "write one JSON object per line"
            ) from None
        rec = validate_record(rec, where, benchmark)
        if rec["id"] in seen:
            raise _err(
                where,
                f"id {rec['id']!r} repeats line {seen[rec['id']]}",
                "give every record a distinct id",
            )
        seen[rec["id"]] = lineno
        rec.setdefault("source", {"format": "effeval", "file": path.name, "line": lineno})
        records.append(rec)
    return records


# --------------------------------------------------------------------------------------------
# GenEval


_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}
_IRREGULAR_PLURALS = {
    "person": "people",
    "mouse": "mice",
    "sheep": "sheep",
    "skis": "skis",
    "scissors": "scissors",
    "knife": "knives",
    "bus": "buses",
}
_GENEVAL_RELATIONS = {
    "left of": "to the left of",
    "right of": "to the right of",
    "above": "above",
    "below": "below",
}


def plural(noun: str) -> str:
    head, _, last = noun.rpartition(" ")
    if last in _IRREGULAR_PLURALS:
        p = _IRREGULAR_PLURALS[last]
    elif re.search(r"(s|x|z|ch|sh)$", last):
        p = last + "es"
    elif re.search(r"[^aeiou]y$", last):
        p = last[:-1] + "ies"
    else:
        p = last + "s"
    return f"{head} {p}".strip()


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def geneval_questions(rec: dict) -> list[dict]:
    """GenEval's checks (object presence, count, colour, position; excluded counts) as yes/no questions."""
    include = rec["include"]
    qs = []
    for k, obj in enumerate(include):
        cls, count = obj["class"], int(obj.get("count", 1))
        qs.append(
            {
                "id": f"o{k}.present",
                "text": f"Is there {_article(cls)} {cls}?",
                "kind": "presence",
                "expected": "yes",
                "item": cls,
            }
        )
        if count > 1:
            n = _NUMBER_WORDS.get(count, str(count))
            qs.append(
                {
                    "id": f"o{k}.count",
                    "text": f"Are there {n} {plural(cls)}?",
                    "kind": "count",
                    "expected": "yes",
                    "item": cls,
                }
            )
        if obj.get("color"):
            qs.append(
                {
                    "id": f"o{k}.color",
                    "text": f"Is the {cls} {obj['color']}?",
                    "kind": "binding",
                    "expected": "yes",
                    "item": cls,
                }
            )
        if obj.get("position"):
            relation, ref = obj["position"]
            ref_cls = include[int(ref)]["class"]
            rel = _GENEVAL_RELATIONS.get(relation, relation)
            qs.append(
                {
                    "id": f"o{k}.position",
                    "text": f"Is the {cls} {rel} the {ref_cls}?",
                    "kind": "relation",
                    "expected": "yes",
                    "item": cls,
                }
            )
    for k, obj in enumerate(rec.get("exclude", [])):
        cls, count = obj["class"], int(obj["count"])
        n = _NUMBER_WORDS.get(count, str(count))
        qs.append(
            {
                "id": f"x{k}.count",
                "text": f"Are there {n} or more {plural(cls)}?",
                "kind": "count",
                "expected": "no",
                "item": cls,
            }
        )
    return qs


def load_geneval(path: Path) -> list[dict]:
    path = Path(path)
    records = []
    for lineno, where, line in jsonl_lines(path, "GenEval's evaluation_metadata.jsonl"):
        try:
            rec = json.loads(line)
            if (
                not isinstance(rec, dict)
                or not isinstance(rec.get("prompt"), str)
                or not isinstance(rec.get("include"), list)
            ):
                raise ValueError("needs 'prompt' (string) and 'include' (list)")
            questions = geneval_questions(rec)
        except json.JSONDecodeError as exc:
            raise _err(
                where,
                f"invalid JSON ({exc.msg} at column {exc.colno})",
                "pass GenEval's evaluation_metadata.jsonl",
            ) from None
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise _err(
                where,
                f"not a GenEval metadata record ({exc})",
                "each line needs tag, include [{class, count, color?, position?}], prompt",
            ) from None
        # GenEval numbers its output folders by 0-based line index (00000, 00001, ...).
        index = len(records)
        records.append(
            {
                "id": f"geneval-{index:05d}",
                "prompt": rec["prompt"],
                "benchmark": "geneval",
                "category": rec.get("tag", "geneval"),
                "items": [o["class"] for o in rec["include"]],
                "questions": questions,
                "expressions": [],
                "source": {"format": "geneval", "file": path.name, "line": lineno, "record": rec},
            }
        )
    return records


# --------------------------------------------------------------------------------------------
# T2I-CompBench

# longest first: "spatial" is a prefix of neither, but "3d_spatial"/"non_spatial" must win over it
_COMPBENCH_CATEGORIES = (
    "3d_spatial",
    "non_spatial",
    "color",
    "shape",
    "texture",
    "spatial",
    "numeracy",
    "complex",
)


def load_t2i_compbench(path: Path) -> list[dict]:
    """One prompt per line (CRLF or LF, with or without a final newline); category = file stem.

    For the attribute-binding categories (color/shape/texture) the prompt is split into its noun
    phrases at " and " / ", " and each phrase is asked as T2I-CompBench's BLIP-VQA does, as
    ``"<phrase>?"`` (expected yes). T2I-CompBench finds the phrases with spaCy noun chunks; this
    split needs no parser but keeps a sentence without " and " / ", " as one phrase. Every
    category also gets presence questions for its objects, numeracy count questions, spatial /
    3d_spatial relation questions, complex / non_spatial what their phrases allow
    (``effeval/image/peer_questions.py``).

    One record per distinct prompt: a repeated line (some files repeat prompts) joins the first
    occurrence's record (``source.lines``); the id keeps the first occurrence's 0-based index,
    which is T2I-CompBench's image index.
    """
    path = Path(path)
    stem = path.stem
    text = read_utf8(path, "a T2I-CompBench prompt .txt file")
    lines = text.splitlines()
    if stem == "new_objects" or (
        lines and all(re.fullmatch(r"[\w ]+ - [\w ]+", ln.strip()) for ln in lines[:5] if ln.strip())
    ):
        raise _err(
            str(path),
            "this is T2I-CompBench's noun list ('singular - plural'), not prompts",
            "pass a category file such as color_val.txt",
        )
    category = stem
    base = next((b for b in _COMPBENCH_CATEGORIES if stem == b or stem.startswith(b + "_")), stem)
    records: dict[str, dict] = {}
    index = -1
    for lineno, line in enumerate(lines, 1):
        prompt = line.strip()
        if not prompt:
            continue
        # T2I-CompBench names images <prompt>_<6-digit index> (index over non-empty lines)
        index += 1
        if prompt in records:
            records[prompt]["source"]["lines"].append(lineno)
            continue
        records[prompt] = {
            "id": f"{category}-{index:06d}",
            "prompt": prompt,
            "benchmark": "t2i-compbench",
            "category": category,
            "items": [],
            "questions": compbench_questions(prompt, base),
            "expressions": [],
            "source": {"format": "t2i-compbench", "file": path.name, "line": lineno, "lines": [lineno]},
        }
    return list(records.values())


# --------------------------------------------------------------------------------------------
# TIFA

_TIFA_KINDS = {
    "animal/human": "presence",
    "object": "presence",
    "food": "presence",
    "color": "binding",
    "material": "binding",
    "shape": "binding",
    "attribute": "binding",
    "counting": "count",
    "spatial": "relation",
}


def load_tifa(path: Path) -> list[dict]:
    """TIFA question-answer JSON (records ``id, caption, question, choices, answer, element_type,
    element``), grouped by text id in file order. Yes/no questions (choices = ["yes", "no"])
    become ``questions``; multiple-choice ones are kept under ``other_questions`` (not scored by
    the yes/no VQA scorer). A TIFA text-inputs JSON (``id, caption`` only) has no questions of
    its own; its records get presence/attribute/relation questions from the caption
    (``peer_questions.generic_questions``, ``origin: "effeval"``)."""
    path = Path(path)
    try:
        data = json.loads(read_utf8(path, "TIFA's question-answer JSON"))
    except json.JSONDecodeError as exc:
        raise _err(f"{path}:{exc.lineno}", f"invalid JSON ({exc.msg})", "pass a TIFA JSON file") from None
    if not isinstance(data, list):
        raise _err(
            str(path), "top level is not a JSON array", "pass TIFA's question-answer or text-inputs JSON"
        )
    by_id: dict[str, dict] = {}
    previous_id = None
    for k, qa in enumerate(data):
        if (
            not isinstance(qa, dict)
            or not isinstance(qa.get("id"), str)
            or not isinstance(qa.get("caption"), str)
        ):
            raise _err(
                f"{path}: record {k}",
                "lacks 'id' or 'caption'",
                "pass TIFA's question-answer or text-inputs JSON",
            )
        if qa["id"] not in by_id:
            by_id[qa["id"]] = _grouped_record(
                "tifa", qa["id"], qa["caption"], {"record": k}, path, other_questions=[]
            )
        else:
            _check_tifa_repeat(path, k, qa, by_id[qa["id"]], previous_id)
        previous_id = qa["id"]
        rec = by_id[qa["id"]]
        if "question" not in qa:
            continue
        if any(q["text"] == qa["question"] for q in rec["questions"] + rec["other_questions"]):
            raise _err(
                f"{path}: record {k}",
                f"id {qa['id']!r} asks {qa['question']!r} twice (the answer would be counted twice)",
                "keep one record per question",
            )
        if not isinstance(qa["question"], str) or not qa["question"].strip():
            # a null question would be asked as "None" and its answer counted: refuse it
            raise _err(
                f"{path}: record {k}",
                f"'question' is {qa['question']!r}, not a question text",
                "give every question record its question, or drop the record",
            )
        try:
            choices = [str(c).strip().lower() for c in qa["choices"]]
            answer = str(qa["answer"]).strip().lower()
        except (KeyError, TypeError):
            raise _err(
                f"{path}: record {k}",
                "a question record lacks 'choices' or 'answer'",
                "pass TIFA's question-answer JSON (id, caption, question, choices, answer, element_type, element)",
            ) from None
        j = len(rec["questions"]) + len(rec["other_questions"])
        element_type = qa.get("element_type", qa.get("answer_type", "other"))
        q = {"id": f"q{j}", "text": qa["question"], "item": qa.get("element"), "element_type": element_type}
        if answer not in choices:
            raise _err(
                f"{path}: record {k}",
                f"answer {qa['answer']!r} is not one of the choices {qa['choices']}",
                "give an answer from the choices",
            )
        if sorted(choices) == ["no", "yes"]:
            rec["questions"].append({**q, "kind": _TIFA_KINDS.get(element_type, "other"), "expected": answer})
        else:
            rec["other_questions"].append({**q, "choices": qa["choices"], "answer": qa["answer"]})
    for rec in by_id.values():
        if not rec["questions"] and not rec["other_questions"]:
            # a text-inputs record: presence/attribute/relation questions from its caption
            rec["questions"] = generic_questions(rec["prompt"])
    return list(by_id.values())


def _check_tifa_repeat(path: Path, k: int, qa: dict, rec: dict, previous_id: str | None) -> None:
    """A TIFA file lists one text's question records together, under one id and one caption (as
    TIFA v1.0 does for all 4,081 texts). Any other repeat of an id is two texts that would be
    merged into one prompt: refused, naming both records."""
    first = rec["source"]["record"]
    if qa["caption"] != rec["prompt"]:
        problem = f"id {qa['id']!r} is also record {first}'s, whose caption differs ({rec['prompt']!r})"
    elif "question" not in qa or (not rec["questions"] and not rec["other_questions"]):
        problem = f"text id {qa['id']!r} is listed again (first as record {first})"
    elif previous_id != qa["id"]:
        problem = f"id {qa['id']!r} comes back after other ids (first as record {first})"
    else:
        return
    raise _err(f"{path}: record {k}", f"{problem}, so two texts would be merged", "give each text its own id")


# --------------------------------------------------------------------------------------------
# DSG

DSG_COLUMNS = [
    "item_id",
    "text",
    "keywords",
    "proposition_id",
    "dependency",
    "category_broad",
    "category_detailed",
    "tuple",
    "question_natural_language",
]
_DSG_KINDS = {"entity": "presence", "attribute": "binding", "relation": "relation"}


def load_dsg(path: Path) -> list[dict]:
    """DSG annotation CSV, one row per question; rows grouped by ``item_id`` in file order. Every
    DSG question is a yes-question for a faithful image. ``depends_on`` lists parent proposition
    ids (DSG scores a child 0 when a parent is answered "no"; the scorer reports raw answers)."""
    path = Path(path)
    with io.StringIO(read_utf8(path, "a DSG annotations CSV"), newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise _err(f"{path}:1", "empty file", "pass a DSG annotations CSV") from None
        missing = [c for c in DSG_COLUMNS if c not in header]
        if missing:
            raise _err(
                f"{path}:1",
                f"header lacks DSG column(s) {', '.join(missing)}",
                f"pass a DSG annotations CSV with header {','.join(DSG_COLUMNS)}",
            )
        col = {c: header.index(c) for c in DSG_COLUMNS}
        by_id: dict[str, dict] = {}
        for row in reader:
            lineno = reader.line_num
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise _err(
                    f"{path}:{lineno}",
                    f"{len(row)} fields, header has {len(header)}",
                    "quote fields that contain commas (RFC 4180)",
                )
            get = {c: row[i] for c, i in col.items()}
            try:
                pid = int(get["proposition_id"])
            except ValueError:
                raise _err(
                    f"{path}:{lineno}",
                    f"proposition_id {get['proposition_id']!r} is not an integer",
                    "use DSG's integer proposition ids",
                ) from None
            # DSG-1k has a few dependency cells with a stray word ("5, right", "air"); keep the ids.
            tokens = [d for d in re.split(r"\s*,\s*", get["dependency"].strip()) if d]
            deps = [int(d) for d in tokens if d.isdigit() and d != "0"]
            if any(not d.isdigit() for d in tokens):
                logger.debug("%s:%d: non-integer dependency %r ignored", path, lineno, get["dependency"])
            if get["item_id"] not in by_id:
                by_id[get["item_id"]] = _grouped_record(
                    "dsg", get["item_id"], get["text"], {"line": lineno}, path
                )
            elif by_id[get["item_id"]]["prompt"] != get["text"]:  # two texts under one id: not merged
                raise _err(
                    f"{path}:{lineno}",
                    f"item_id {get['item_id']!r} is also line {by_id[get['item_id']]['source']['line']}'s, "
                    "whose text differs, so two texts would be merged",
                    "give each text its own item_id",
                )
            rec = by_id[get["item_id"]]
            rec["questions"].append(
                {
                    "id": f"p{pid}",
                    "text": get["question_natural_language"],
                    "kind": _DSG_KINDS.get(get["category_broad"], "other"),
                    "expected": "yes",
                    "item": get["keywords"],
                    "depends_on": deps,
                    "tuple": get["tuple"],
                    "category_detailed": get["category_detailed"],
                }
            )
    return list(by_id.values())


def dump_jsonl(records: list[dict]) -> str:
    """Records as JSONL text (e.g. to save a converted peer benchmark)."""
    buf = io.StringIO()
    for r in records:
        buf.write(json.dumps(r, ensure_ascii=False) + "\n")
    return buf.getvalue()
