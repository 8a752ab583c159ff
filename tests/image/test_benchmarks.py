"""Benchmarks: the shipped JSONL files, clear errors, and loaders for peers' native formats."""

import json
import re

import pytest

from effeval.errors import ConfigError
from effeval.image.benchmarks import BUILTIN, QUESTION_KINDS, load_benchmark


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_benchmarks_are_complete_and_consistent(name):
    records = load_benchmark(name)
    assert len(records) >= 40
    assert len({r["id"] for r in records}) == len(records)
    assert len({r["prompt"] for r in records}) == len(records)
    for r in records:
        assert r["benchmark"] == name and r["questions"]
        for q in r["questions"]:
            assert q["expected"] in ("yes", "no") and q["kind"] in QUESTION_KINDS and q["text"].endswith("?")
        for item in r["items"]:
            assert item.lower() in r["prompt"].lower()
        kinds = {q["kind"] for q in r["questions"]}
        if name == "leakage":
            # a leak question about the target (expected no) and presence questions for both items
            assert r["leak"]["source"] in r["items"] and r["leak"]["target"] in r["items"]
            leak_qs = [q for q in r["questions"] if q["kind"] == "leak"]
            assert leak_qs and all(
                q["expected"] == "no" and q["item"] == r["leak"]["target"] for q in leak_qs
            )
            present = {
                q["item"] for q in r["questions"] if q["kind"] == "presence" and q["expected"] == "yes"
            }
            assert present == set(r["items"])
        elif name == "omission":
            assert len(r["items"]) >= 3 and kinds == {"presence"}
            assert {q["item"] for q in r["questions"]} == set(r["items"])
        elif name == "binding":
            assert "binding" in kinds
            for pair in r["pairs"]:
                assert f"{pair['attribute']} {pair['object']}" in r["prompt"]
                assert any(
                    q["text"] == f"Is the {pair['object']} {pair['attribute']}?" and q["expected"] == "yes"
                    for q in r["questions"]
                )
        elif name == "mwe":
            (e,) = r["expressions"]
            start, end = e["words"]
            assert end - start >= 2
            assert " ".join(r["prompt"].split()[start:end]) == e["text"]
            assert r["prompt"][e["char_start"] : e["char_end"]] == e["text"]


def _write(path, text, newline="\n"):
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


GOOD = {
    "id": "x1",
    "prompt": "a red cup and a zebra",
    "items": ["cup", "zebra"],
    "questions": [{"id": "q", "text": "Is there a cup?", "kind": "presence", "expected": "yes"}],
}


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ('{"id": "x2", "prompt": "a cat"', r"invalid JSON"),
        ('{"id": "x2"}', r"missing or empty 'prompt'"),
        ('["not", "an", "object"]', r"not an object"),
        (
            '{"id": "x2", "prompt": "a cat", "questions": [{"text": "Is there a cat?", "expected": "maybe"}]}',
            r"questions\[0\]\.expected is 'maybe'",
        ),
        (
            '{"id": "x2", "prompt": "a cat", "questions": [{"text": "Cat?", "expected": "yes", "kind": "vibes"}]}',
            r"questions\[0\]\.kind is 'vibes'",
        ),
        ('{"id": "x2", "prompt": "a cat", "items": ["dog"]}', r"item 'dog' does not occur in the prompt"),
        (
            '{"id": "x2", "prompt": "the Golden Gate Bridge", "expressions": [{"text": "Golden Gate", "words": [1, 4]}]}',
            r"expression text 'Golden Gate' != words \[1, 4\]",
        ),
        (
            '{"id": "x2", "prompt": "a cat", "expressions": [{"text": "cat", "words": [1, 9]}]}',
            r"no valid 'words'",
        ),
        (
            '{"id": "x2", "prompt": "a cat", "items": ["cat"], "leak": {"source": "cat", "target": "dog"}}',
            r"leak.target 'dog' is not one of the items",
        ),
        ('{"id": "x1", "prompt": "a cat"}', r"id 'x1' repeats line 1"),
    ],
)
def test_malformed_benchmark_line_names_file_and_line(tmp_path, bad_line, message):
    path = _write(tmp_path / "mine.jsonl", json.dumps(GOOD) + "\n\n" + bad_line + "\n")
    with pytest.raises(ConfigError) as err:
        load_benchmark(str(path))
    text = str(err.value)
    assert text.startswith(f"--benchmark: {path}:3: ")  # line 3: blank lines count
    assert re.search(message, text) and "Fix:" in text


def test_own_jsonl_file_loads_with_defaults_and_spans(tmp_path):
    rec = {
        "id": "m1",
        "prompt": "San Francisco's Golden Gate Bridge at dusk",
        "expressions": [{"text": "Golden Gate Bridge", "words": [2, 5]}],
        "questions": [{"text": "Is the Golden Gate Bridge visible?", "expected": "yes"}],
    }
    path = _write(tmp_path / "custom.jsonl", json.dumps(rec) + "\n")
    (r,) = load_benchmark(f"effeval:{path}")
    assert (
        r["benchmark"] == "custom"
        and r["questions"][0]["id"] == "q0"
        and r["questions"][0]["kind"] == "other"
    )
    e = r["expressions"][0]
    assert (e["char_start"], e["char_end"]) == (16, 34) and r["prompt"][16:34] == "Golden Gate Bridge"
    assert load_benchmark(str(path), limit=1) == [r]


def test_unknown_benchmark_and_bad_limit_are_clear_errors(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"--benchmark: 'leakge' is neither a built-in benchmark nor an existing "
        r"file\. Fix: use one of leakage, omission, binding, mwe",
    ):
        load_benchmark("leakge")
    with pytest.raises(ConfigError, match="--limit"):
        load_benchmark("leakage", limit=0)
    odd = _write(tmp_path / "prompts.xml", "<x/>")
    with pytest.raises(ConfigError, match=r"cannot tell the format .*Fix: prefix the path with the format"):
        load_benchmark(str(odd))
    empty = _write(tmp_path / "empty.jsonl", "\n")
    with pytest.raises(ConfigError, match="holds no prompts"):
        load_benchmark(str(empty))


# --- peer formats, samples written from their documentation ------------------------------

GENEVAL_SAMPLE = """\
{"tag": "single_object", "include": [{"class": "bench", "count": 1}], "prompt": "a photo of a bench"}
{"tag": "two_object", "include": [{"class": "bench", "count": 1}, {"class": "sports ball", "count": 1}], "prompt": "a photo of a bench and a sports ball"}
{"tag": "counting", "include": [{"class": "clock", "count": 2}], "exclude": [{"class": "clock", "count": 3}], "prompt": "a photo of two clocks"}
{"tag": "colors", "include": [{"class": "fire hydrant", "count": 1, "color": "blue"}], "prompt": "a photo of a blue fire hydrant"}
{"tag": "position", "include": [{"class": "teddy bear", "count": 1}, {"class": "dog", "count": 1, "position": ["right of", 0]}], "prompt": "a photo of a dog right of a teddy bear"}
{"tag": "color_attr", "include": [{"class": "wine glass", "count": 1, "color": "purple"}, {"class": "apple", "count": 1, "color": "black"}], "prompt": "a photo of a purple wine glass and a black apple"}
"""


def _qa(record):
    return [(q["text"], q["kind"], q["expected"]) for q in record["questions"]]


def test_geneval_metadata_sample(tmp_path):
    path = _write(tmp_path / "evaluation_metadata.jsonl", GENEVAL_SAMPLE)
    recs = load_benchmark(str(path))
    assert [r["category"] for r in recs] == [
        "single_object",
        "two_object",
        "counting",
        "colors",
        "position",
        "color_attr",
    ]
    assert [r["id"] for r in recs] == [f"geneval-{i:05d}" for i in range(6)]
    assert _qa(recs[0]) == [("Is there a bench?", "presence", "yes")]
    assert _qa(recs[2]) == [
        ("Is there a clock?", "presence", "yes"),
        ("Are there two clocks?", "count", "yes"),
        ("Are there three or more clocks?", "count", "no"),
    ]
    assert ("Is the fire hydrant blue?", "binding", "yes") in _qa(recs[3])
    assert ("Is the dog to the right of the teddy bear?", "relation", "yes") in _qa(recs[4])
    assert recs[5]["items"] == ["wine glass", "apple"]
    assert ("Is the apple black?", "binding", "yes") in _qa(recs[5])
    bad = _write(
        tmp_path / "bad.jsonl",
        GENEVAL_SAMPLE + '{"tag": "colors", "include": [{"count": 1}], "prompt": "x"}\n',
    )
    with pytest.raises(ConfigError, match=rf"{re.escape(str(bad))}:7: not a GenEval metadata record"):
        load_benchmark(f"geneval:{bad}")


def test_t2i_compbench_txt_sample_crlf_no_final_newline(tmp_path):
    # CRLF, no trailing newline, a non-ASCII line and a duplicate prompt, as in the real files
    text = (
        "a green bench and a blue bowl\na conical birthday hat and a spherical pi\u00f1ata\n"
        "a green bench and a blue bowl\nrubber gloves, a fluffy teddy bear and a glass bottle"
    )
    path = _write(tmp_path / "color_val.txt", text, newline="\r\n")
    recs = load_benchmark(str(path))
    # one record per distinct prompt, no "\r" left; ids keep T2I-CompBench's image index
    assert [r["prompt"] for r in recs] == [text.split("\n")[i] for i in (0, 1, 3)]
    assert [r["id"] for r in recs] == [f"color_val-{i:06d}" for i in (0, 1, 3)]
    assert recs[0]["source"]["lines"] == [1, 3]
    assert recs[0]["category"] == "color_val"
    assert _qa(recs[0]) == [
        ("a green bench?", "binding", "yes"),
        ("a blue bowl?", "binding", "yes"),
        ("Is there a bench?", "presence", "yes"),
        ("Is there a bowl?", "presence", "yes"),
    ]
    assert [q["text"] for q in recs[2]["questions"]][:3] == [
        "rubber gloves?",
        "a fluffy teddy bear?",
        "a glass bottle?",
    ]
    spatial = _write(tmp_path / "spatial_val.txt", "a giraffe next to a lamp\r\n")
    (r,) = load_benchmark(str(spatial))
    assert r["category"] == "spatial_val"
    assert _qa(r) == [
        ("Is there a giraffe?", "presence", "yes"),
        ("Is there a lamp?", "presence", "yes"),
        ("Is the giraffe next to the lamp?", "relation", "yes"),
    ]
    nouns = _write(tmp_path / "new_objects.txt", "bottle - bottles\r\nbox - boxes")
    with pytest.raises(ConfigError, match="noun list"):
        load_benchmark(str(nouns))


TIFA_SAMPLE = [
    {
        "id": "coco_301091",
        "caption": "On a gray day a surfer carrying a white board walks on a beach.",
        "question": "is this a surfer?",
        "choices": ["yes", "no"],
        "answer": "yes",
        "element_type": "animal/human",
        "element": "surfer",
        "coco_val_id": "380711",
    },
    {
        "id": "coco_301091",
        "caption": "On a gray day a surfer carrying a white board walks on a beach.",
        "question": "what is the surfer carrying?",
        "choices": ["board", "umbrella", "bag", "dog"],
        "answer": "board",
        "element_type": "object",
        "element": "board",
        "coco_val_id": "380711",
    },
    {
        "id": "coco_301091",
        "caption": "On a gray day a surfer carrying a white board walks on a beach.",
        "question": "is the board white?",
        "choices": ["yes", "no"],
        "answer": "yes",
        "element_type": "color",
        "element": "white",
        "coco_val_id": "380711",
    },
    {
        "id": "drawbench_52",
        "caption": "A red colored car.",
        "question": "is the car blue?",
        "choices": ["yes", "no"],
        "answer": "no",
        "element_type": "color",
        "element": "red",
    },
]


def test_tifa_question_json_sample(tmp_path):
    path = tmp_path / "qa.json"
    path.write_text(json.dumps(TIFA_SAMPLE, indent=4))  # pretty-printed, no trailing newline
    recs = load_benchmark(str(path))
    assert [r["id"] for r in recs] == ["coco_301091", "drawbench_52"]
    surf, car = recs
    assert surf["prompt"].startswith("On a gray day") and surf["category"] == "coco"
    assert _qa(surf) == [("is this a surfer?", "presence", "yes"), ("is the board white?", "binding", "yes")]
    assert surf["other_questions"][0]["choices"] == ["board", "umbrella", "bag", "dog"]
    assert _qa(car) == [("is the car blue?", "binding", "no")]
    inputs = tmp_path / "text_inputs.json"
    inputs.write_text(json.dumps([{"id": "partiprompt_0", "caption": "a hot air balloon"}]))
    (r,) = load_benchmark(f"tifa:{inputs}")
    assert r["prompt"] == "a hot air balloon" and _qa(r) == [
        ("Is there a hot air balloon?", "presence", "yes")
    ]
    null_question = [{**TIFA_SAMPLE[0], "question": None}]
    bad = tmp_path / "null.json"
    bad.write_text(json.dumps(null_question))
    # a null question was once asked as "None" and scored as answered correctly
    with pytest.raises(ConfigError, match=r"record 0: 'question' is None, not a question text\. Fix:"):
        load_benchmark(f"tifa:{bad}")


DSG_SAMPLE = (
    "item_id,text,keywords,proposition_id,dependency,category_broad,category_detailed,tuple,question_natural_language\n"
    "whoops_5,A rubix cube with ten squares of purple,rubix cube,1,0,entity,whole,entity - whole (rubix cube),Is there a rubix cube?\n"
    'whoops_5,A rubix cube with ten squares of purple,"rubix cube, purple",2,1,attribute,color,"attribute - color (rubix cube, purple)",Is the rubix cube purple?\n'
    'vrd_1,"a dog, left of a cat",dog,1,0,entity,whole,entity - whole (dog),Is there a dog?\n'
    'vrd_1,"a dog, left of a cat","dog, cat",3,"1,2",relation,spatial,"relation - spatial (dog, cat, left of)",Is the dog left of the cat?'
)


def test_dsg_csv_sample(tmp_path):
    path = _write(tmp_path / "dsg-anns.csv", DSG_SAMPLE, newline="\r\n")  # CRLF, no final newline
    recs = load_benchmark(str(path))
    assert [r["id"] for r in recs] == ["whoops_5", "vrd_1"]
    cube, dog = recs
    assert (
        cube["prompt"] == "A rubix cube with ten squares of purple"
        and dog["prompt"] == "a dog, left of a cat"
    )
    assert _qa(cube) == [
        ("Is there a rubix cube?", "presence", "yes"),
        ("Is the rubix cube purple?", "binding", "yes"),
    ]
    assert [q["depends_on"] for q in cube["questions"]] == [[], [1]]
    assert dog["questions"][1]["id"] == "p3" and dog["questions"][1]["depends_on"] == [1, 2]
    assert dog["questions"][1]["kind"] == "relation"
    bad = _write(tmp_path / "bad.csv", "item_id,text\nx,y")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(bad))}:1: header lacks DSG column"):
        load_benchmark(str(bad))


# --- the real peer files in ../shared (read there, never copied) ---------------------------


def test_real_peer_files(shared_dir):
    root = shared_dir / "peer-prompts"
    if not root.is_dir():
        pytest.skip("../shared/peer-prompts is not present")
    gen = load_benchmark(str(root / "geneval" / "evaluation_metadata.jsonl"))
    assert len(gen) == 553
    assert sum(r["category"] == "counting" for r in gen) == 80
    assert all(r["questions"] for r in gen)
    color = load_benchmark(str(root / "t2i_compbench" / "color_val.txt"))
    assert len(color) == 300 and all(r["questions"] and "\r" not in r["prompt"] for r in color)
    # most are "a <colour> <noun> and a <colour> <noun>"; sentences without " and " / "," stay one question
    assert sum(len(r["questions"]) >= 2 for r in color) >= 270
    shape = load_benchmark(str(root / "t2i_compbench" / "shape.txt"))
    assert shape[186]["prompt"] == "a conical birthday hat and a spherical pi\u00f1ata"
    dsg = load_benchmark(str(root / "dsg" / "dsg-1k-anns.csv"))
    assert len(dsg) == 1060 and sum(len(r["questions"]) for r in dsg) == 8182
    tifa = load_benchmark(str(root / "tifa" / "sample_question_answers.json"))
    assert [r["id"] for r in tifa] == ["coco_301091", "drawbench_52"]
    assert sum(len(r["questions"]) + len(r["other_questions"]) for r in tifa) == 19
    assert len(load_benchmark(str(root / "tifa" / "tifa_v1.0_text_inputs.json"))) == 4081


@pytest.mark.parametrize(
    ("prompt", "category", "expected"),
    [
        (
            "four tents, two boats and one pig",
            "numeracy",
            [
                ("Are there tents?", "presence"),
                ("Are there exactly four tents?", "count"),
                ("Are there boats?", "presence"),
                ("Are there exactly two boats?", "count"),
                ("Is there a pig?", "presence"),
                ("Is there exactly one pig?", "count"),
            ],
        ),
        (
            "a car hidden by a plate",
            "3d_spatial",
            [
                ("Is there a car?", "presence"),
                ("Is there a plate?", "presence"),
                ("Is the car hidden by the plate?", "relation"),
            ],
        ),
        (
            "The red hat was on top of the brown coat rack.",
            "complex",
            [
                ("Is there a hat?", "presence"),
                ("Is the hat red?", "binding"),
                ("Is there a coat rack?", "presence"),
                ("Is the coat rack brown?", "binding"),
                ("Is the hat on top of the coat rack?", "relation"),
            ],
        ),
        (
            "A man is holding a book and reading on a park bench.",
            "non_spatial",
            [
                ("Is there a man?", "presence"),
                ("Is there a book?", "presence"),
                ("Is there a park bench?", "presence"),
            ],
        ),
    ],
)
def test_compbench_questions_by_category(tmp_path, prompt, category, expected):
    """Each category gets what its prompt allows. Able to fail: with the old loader (no questions
    outside color/shape/texture) every case here gave []."""
    (r,) = load_benchmark(str(_write(tmp_path / f"{category}_val.txt", prompt + "\r\n")))
    assert [(q["text"], q["kind"]) for q in r["questions"]] == expected
    assert all(q["expected"] == "yes" for q in r["questions"])


def test_full_compbench_val_files_give_questions_to_every_record(shared_dir):
    """Acceptance (issue 15): every record of every T2I-CompBench val file has >= 1 question, and
    the loader stays faithful: the distinct prompts of the file, in order, one record each."""
    root = shared_dir / "peer-prompts" / "t2i_compbench"
    if not root.is_dir():
        pytest.skip("../shared/peer-prompts is not present")
    files = sorted(root.glob("*_val.txt"))
    assert len(files) == 8
    for f in files:
        recs = load_benchmark(str(f))
        lines = [ln.strip() for ln in f.read_bytes().decode("utf-8").splitlines() if ln.strip()]
        assert [r["prompt"] for r in recs] == list(dict.fromkeys(lines)), f.name
        assert all(r["questions"] for r in recs), f.name
        base = f.stem[: -len("_val")]
        kinds = {q["kind"] for r in recs for q in r["questions"]}
        assert "presence" in kinds, f.name
        if base == "numeracy":
            assert sum(any(q["kind"] == "count" for q in r["questions"]) for r in recs) >= 290
        if base in ("spatial", "3d_spatial"):
            assert all(any(q["kind"] == "relation" for q in r["questions"]) for r in recs), f.name


@pytest.mark.parametrize("fmt", ["geneval", "tifa", "dsg", "t2i-compbench", "effeval"])
def test_non_utf8_peer_file_is_one_line_error(tmp_path, fmt):
    """latin-1 bytes (0xe9) once gave a UnicodeDecodeError traceback for GenEval / TIFA / DSG."""
    path = tmp_path / "bad.bin"
    path.write_bytes("a caf\u00e9 and a dog\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"^--benchmark: .*bad\.bin: not UTF-8 text \(byte 5: .*\. Fix: "):
        load_benchmark(f"{fmt}:{path}")
