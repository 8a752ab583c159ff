"""The bad-input table (issues 17 and 21): each row is one mistake a user makes, run through the
entry point they would use, as a separate process: ``effeval ...`` (the console script),
``python -m effeval.bench ...``, and for the lm-eval wrappers ``effeval lm`` (lm-eval's own CLI
in-process; the stock ``lm_eval`` CLI indexes its ~14k tasks first, ~30 s a run, so it has one
test here, ``test_stock_lm_eval_exits_2_and_runs_atexit_handlers``, plus those in
tests/foundation/test_plugin.py; the wrapper rows also build the wrapper in-process as
``lm_eval`` does, for what it raises there).

Every row asserts: exit status 2; exactly one ``effeval error: <argument>: <problem>. Fix: <fix>``
line, the last one on stderr, naming the argument the row claims; no traceback anywhere; and
nothing written anywhere: not in the folder of inputs and outputs, not in the zoo cache
(``EFFEVAL_ZOO_DIR`` points at an empty folder, and the zoo folders the rows read are snapshotted),
not in the working folder (each command runs in an empty one). Our own commands print nothing
else; where the mistake can only be seen after lm-eval or a pipeline has started (a row marked
``LOUD``), the lines before it may only be log records and progress bars. A wrong output path and
the other up-front checks are found before any work starts: the work function is replaced in the
child process (``sitecustomize`` below) by one that exits 97 with a message, so a row whose check
comes too late fails. Inputs that are odd but valid give a warning naming what is odd, and succeed.

One parametrised test per entry point; add a row when a new mistake is found. Rows whose id
starts with ``#17`` / ``#21`` are the cases those issues found mishandled, named as the issue
words them; the others walk every argument of every entry point (missing, wrong type, out of
range, empty, non-UTF-8, an output that is a file / a folder / unwritable, unknown choice,
NaN / inf, negative counts, absurd sizes). Able to fail: the #17 / #21 rows failed before their
fixes (traceback, exit 1 or 0, output written after the work or half-written, a silently wrong
result), and so did the rows listed in docs/decisions.md ("bad-input table"); removing a check
makes its row fail.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from effeval.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"  # effeval result JSON of two real demo runs
BIN = Path(sys.executable).parent
EFFEVAL = str(BIN / "effeval")
ONE_LINE = re.compile(r"^effeval error: [^\n]+: [^\n]+\. Fix: [^\n]+$")
# what may precede the error line of a LOUD row: log records (effeval's and lm-eval's formats),
# warnings, and progress bars (tqdm)
NOISE = re.compile(
    r"^(\d{4}-\d\d-\d\d[ :]\d\d:\d\d:\d\d\S*\s+(INFO|WARNING)\b.*"
    r"|.*\d+%\|.*\|.*"
    r"|.*Warning: .*|  warnings\.warn\(.*)$"
)
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d[ :]\d\d:\d\d:\d\d")
# placeholders of output paths that cannot be used; a row writing to one must fail before work
BAD_OUTPUTS = ("{file}", "{under_file}", "{unwritable}", "{folder}", "{llama}", "{mamba}", "{root}/stem")
WORK_REACHED = 97  # exit status of a child whose work function ran before the checks

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

LATIN1 = "Grüße aus München, déjà vu, señor. "

# Put first on the child's PYTHONPATH. With EFFEVAL_REFUSE_WORK="module:attr.path,...", each named
# function is replaced, as soon as its module has been executed, by one that reports and exits 97.
SITECUSTOMIZE = """
import os, sys

_wanted = {}
for _target in filter(None, os.environ.get("EFFEVAL_REFUSE_WORK", "").split(",")):
    _module, _, _attr = _target.partition(":")
    _wanted.setdefault(_module, []).append(_attr)

if _wanted:
    import importlib.abc
    import importlib.util

    def _trap(name):
        def started(*args, **kwargs):
            sys.stderr.write(f"WORK REACHED: {name} ran before the arguments were checked\\n")
            sys.stderr.flush()
            os._exit(97)

        return started

    def _patch(module):
        for path in _wanted[module.__name__]:
            *owners, last = path.split(".")
            owner = module
            for part in owners:
                owner = getattr(owner, part)
            setattr(owner, last, _trap(f"{module.__name__}:{path}"))

    class _Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name not in _wanted:
                return None
            sys.meta_path.remove(self)
            try:
                spec = importlib.util.find_spec(name)
            finally:
                sys.meta_path.insert(0, self)
            if spec is not None and spec.loader is not None:
                run = spec.loader.exec_module

                def exec_module(module, _run=run):
                    _run(module)
                    _patch(module)

                spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _Finder())
"""


@dataclass
class Sandbox:
    """Where the child processes run: an empty working folder, an empty zoo cache, the
    ``sitecustomize`` above, and an environment that is offline."""

    cwd: Path
    zoo: Path
    env: dict


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Sandbox:
    root = tmp_path_factory.mktemp("bad_inputs_sandbox")
    hook, cwd, zoo = root / "hook", root / "cwd", root / "zoo"
    for folder in (hook, cwd, zoo):
        folder.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {k: v for k, v in os.environ.items() if k not in ("EFFEVAL_TRACEBACK", "EFFEVAL_REFUSE_WORK")}
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p),
        EFFEVAL_ZOO_DIR=str(zoo),
        EFFEVAL_BENCH_DIR=str(root / "bench"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1",
    )
    return Sandbox(cwd=cwd, zoo=zoo, env=env)


@pytest.fixture(scope="module")
def bad(tmp_path_factory, zoo_path):
    """Broken inputs, built once: corrupt / truncated model folders, non-text files, paths that
    cannot be written, benchmark and pool files with one defect each."""
    root = tmp_path_factory.mktemp("bad_inputs")
    llama, mamba = Path(zoo_path("llama-sp")), Path(zoo_path("mamba-sp"))
    paths = {"llama": str(llama), "mamba": str(mamba), "root": root, "sd": zoo_path("sd-tiny")}

    def copy(src: Path, name: str) -> Path:
        dst = root / name
        shutil.copytree(src, dst)
        return dst

    for base, tag in ((llama, "llama"), (mamba, "mamba")):
        d = copy(base, f"{tag}_bad_config")
        (d / "config.json").write_text('{"model_type": "llama", "hidden_size": ')  # cut mid-file
        paths[f"{tag}_bad_config"] = str(d)
        d = copy(base, f"{tag}_truncated")
        weights = d / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
        paths[f"{tag}_truncated"] = str(d)

    def write(name: str, data: str | bytes) -> str:
        path = root / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        paths[name.replace(".", "_").replace("-", "_")] = str(path)
        return str(path)

    write("a_file", "x")
    paths["file"] = paths.pop("a_file")
    paths["under_file"] = str(root / "a_file" / "out")
    paths["unwritable"] = "/proc/effeval-out"  # not writable even for root
    (root / "stem.json").mkdir()  # `short-mk analyze --out {root}/stem` would write stem.json
    for folder in ("folder", "empty"):
        (root / folder).mkdir()
        paths[folder] = str(root / folder)
    write("binary.txt", bytes(range(256)) * 64)
    write("latin1.txt", (LATIN1 * 200).encode("latin-1"))
    write("empty.txt", "")
    write("not_json.json", '{"schema": "effeval/result/v1", "run_id": ')
    write("result_latin1.json", json.dumps({"run_id": LATIN1}, ensure_ascii=False).encode("latin-1"))
    write("array.json", "[1, 2, 3]")
    # image benchmarks: GenEval / TIFA / DSG files that are not UTF-8, a TIFA null question, ...
    geneval = {
        "tag": "single_object",
        "include": [{"class": "señal", "count": 1}],
        "prompt": "a photo of a señal",
    }
    write("geneval_latin1.jsonl", (json.dumps(geneval, ensure_ascii=False) + "\n").encode("latin-1"))
    tifa = [
        {
            "id": "coco_1",
            "caption": "a café with a red door",
            "question": "is there a café?",
            "choices": ["yes", "no"],
            "answer": "yes",
            "element_type": "object",
            "element": "café",
        }
    ]
    write("tifa_latin1.json", json.dumps(tifa, ensure_ascii=False).encode("latin-1"))
    write("tifa_null_question.json", json.dumps([{**tifa[0], "question": None}]))
    door = {**tifa[0], "question": "is the door red?", "element_type": "color", "element": "red"}
    other_text = {**tifa[0], "caption": "a dog on a beach", "question": "is there a dog?", "element": "dog"}
    write("tifa_two_texts_one_id.json", json.dumps([tifa[0], door, other_text]))
    write("tifa_id_comes_back.json", json.dumps([tifa[0], {**other_text, "id": "coco_2"}, door]))
    write("tifa_question_twice.json", json.dumps([tifa[0], door, door]))
    text_input = {"id": "coco_1", "caption": "a café with a red door"}
    write("tifa_text_twice.json", json.dumps([text_input, text_input]))
    dsg = (
        "item_id,text,keywords,proposition_id,dependency,category_broad,category_detailed,tuple,"
        "question_natural_language\nx_1,a café,café,1,0,entity,whole,entity - whole (café),Is there a café?\n"
    )
    write("dsg_latin1.csv", dsg.encode("latin-1"))
    write(
        "dsg_two_texts_one_id.csv",
        dsg + "x_1,a dog,dog,1,0,entity,whole,entity - whole (dog),Is there a dog?\n",
    )
    write("bench_empty.jsonl", "\n")
    write("bench.yaml", "prompt: a cat\n")
    long_prompt = {"id": "long1", "prompt": " ".join(["a red circle"] * 40)}
    write("bench_long.jsonl", json.dumps(long_prompt) + "\n")
    write("bench_ok.jsonl", json.dumps({"id": "p1", "prompt": "a red circle", "items": ["circle"]}) + "\n")
    # short-m@k pools: one good native pool, and broken ones
    pool = [
        {
            "id": "q1",
            "target": "5",
            "chains": [{"think_tokens": 3, "answer": "5"}, {"think_tokens": 7, "answer": "7"}],
        }
    ]
    write("pool.jsonl", "".join(json.dumps(q) + "\n" for q in pool))
    write(
        "pool_latin1.jsonl",
        (json.dumps({"id": LATIN1, "chains": []}, ensure_ascii=False) + "\n").encode("latin-1"),
    )
    write("pool_array.jsonl", "[1, 2]\n")
    write("pool_no_log.jsonl", json.dumps({"doc_id": 0, "arguments": {}}) + "\n")
    write(
        "pool_aborted.jsonl",
        json.dumps({"id": "q", "chains": [{"think_tokens": 3, "status": "aborted"}]}) + "\n",
    )

    def pool_with(**chain) -> str:
        return json.dumps(
            {"id": "q1", "target": "5", "chains": [{"think_tokens": 3, "answer": "5", **chain}]}
        )

    write("pool_string_tokens.jsonl", pool_with(think_tokens="12") + "\n")
    write("pool_negative_tokens.jsonl", pool_with(think_tokens=-40) + "\n")
    write("pool_negative_answer_tokens.jsonl", pool_with(answer_tokens=-1) + "\n")
    write("pool_fraction_tokens.jsonl", pool_with(think_tokens=2.5) + "\n")
    write("pool_chain_not_object.jsonl", json.dumps({"id": "q1", "chains": [7]}) + "\n")
    write("pool_chains_not_list.jsonl", json.dumps({"id": "q1", "chains": "abc"}) + "\n")
    # a task of ours whose generation_kwargs the user edited badly (read by the wrapper itself)
    tasks = root / "bad_tasks"
    tasks.mkdir()
    gen = (REPO / "task_configs" / "smoke" / "smoke_gen.yaml").read_text()
    gen = gen.replace("task: effeval_smoke_gen", "task: effeval_bad_gen_kwargs")
    # (lm-eval itself casts a task's temperature with float(); top_p reaches the wrapper as written)
    (tasks / "bad_gen_kwargs.yaml").write_text(
        gen.replace("do_sample: false", "do_sample: false\n  top_p: abc")
    )
    paths["bad_tasks"] = str(tasks)
    return paths


def listing(folder: Path) -> dict[str, tuple]:
    """Every file (size, mtime) and folder under ``folder``: what "nothing written" compares.
    A folder's own mtime is left out: an output check creates and removes a probe file there."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames:
            out[os.path.relpath(os.path.join(dirpath, name), folder)] = ("dir",)
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), folder)] = (st.st_size, st.st_mtime_ns)
    return out


def watched(bad: dict, sandbox: Sandbox) -> list[Path]:
    """The folders nothing may be written to: inputs and outputs, the zoo cache the child sees,
    the zoo folders the rows read, and the working folder."""
    return [Path(bad["root"]), sandbox.zoo, sandbox.cwd] + [Path(bad[k]) for k in ("llama", "mamba", "sd")]


def run_entry(cmd: list[str], sandbox: Sandbox, refuse: tuple[str, ...] = (), timeout: int = 300):
    env = dict(sandbox.env, EFFEVAL_REFUSE_WORK=",".join(refuse))
    return subprocess.run(cmd, cwd=sandbox.cwd, env=env, capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc, argument: str, loud: bool = False) -> str:
    """Exit 2; the last line on stderr is the only ``effeval error:`` line, one line naming
    ``argument`` (its start) and the fix; no traceback; nothing else on stderr unless ``loud``
    (then only log records and progress bars). Returns the message."""
    both = proc.stderr + proc.stdout
    assert "Traceback" not in both and "WORK REACHED" not in both, both[-3000:]
    lines = [line for line in re.split(r"[\r\n]+", proc.stderr) if line.strip()]
    errors = [line for line in lines if "effeval error:" in line]
    assert proc.returncode == 2 and len(errors) == 1 and lines[-1] == errors[0], (
        proc.returncode,
        proc.stderr[-3000:],
    )
    assert ONE_LINE.match(errors[0]), errors[0]
    others, in_record = [], False
    for line in lines[:-1]:
        if loud and LOG_RECORD.match(line):  # an INFO / WARNING record, maybe over several lines
            in_record = NOISE.match(line) is not None
            if in_record:
                continue
        elif loud and (NOISE.match(line) or (in_record and "rror" not in line)):
            continue
        others.append(line)
    assert not others, f"stderr has more than the one error line: {others[:5]}"
    message = errors[0][len("effeval error: ") :]
    assert argument, "a row must name the argument its message starts with"
    assert message.startswith(argument), message
    return message


def fill(argv: list[str], bad: dict, **extra) -> list[str]:
    return [a.format(**bad, **extra) for a in argv]


def bad_output(argv: list[str]) -> bool:
    """The row's --out is one of the unusable output paths."""
    return any(flag == "--out" and value.startswith(BAD_OUTPUTS) for flag, value in zip(argv, argv[1:]))


def run_row(cmd, argument, bad, sandbox, refuse=(), loud=False) -> str:
    """Run one row's command; check the error form and that nothing was written anywhere."""
    folders = watched(bad, sandbox)
    before = [listing(f) for f in folders]
    proc = run_entry(cmd, sandbox, refuse)
    message = assert_one_line_error(proc, argument, loud)
    for folder, was in zip(folders, before):
        assert listing(folder) == was, f"{folder} changed: nothing may be written"
    return message


def effeval_cmd(*argv: str) -> list[str]:
    return [EFFEVAL, *argv]


# --------------------------------------------------------------------------- lm-eval wrappers


WRAPPER_CASES = [
    # (id, model name, model_args (formatted with the `bad` paths), start of the error message)
    (
        "#17 unknown model_args key for hetero-spec",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={llama},foo=1",
        "effeval-hetero-spec",
    ),
    (
        "#17 unknown model_args key for short-mk",
        "effeval-short-mk",
        "pretrained={llama},temprature=0.7",
        "effeval-short-mk",
    ),
    (
        "#17 unknown model_args key for pruned-ssm",
        "effeval-pruned-ssm",
        "pretrained={mamba},method=magnitude,sparsity=0.5,spars=1",
        "effeval-pruned-ssm",
    ),
    ("spellm unknown key", "effeval-spellm", "pretrained={llama},foo=1", "effeval-spellm"),
    (
        "#17 corrupt config.json as drafter",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={llama_bad_config}",
        "effeval-hetero-spec model_args 'drafter'",
    ),
    (
        "#17 truncated safetensors as drafter",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={llama_truncated}",
        "effeval-hetero-spec model_args 'drafter'",
    ),
    (
        "hetero-spec target corrupt config.json",
        "effeval-hetero-spec",
        "pretrained={llama_bad_config},drafter={llama}",
        "effeval-hetero-spec model_args 'pretrained'",
    ),
    (
        "hetero-spec target truncated safetensors",
        "effeval-hetero-spec",
        "pretrained={llama_truncated},drafter={llama}",
        "effeval-hetero-spec model_args 'pretrained'",
    ),
    (
        "hetero-spec pretrained missing folder",
        "effeval-hetero-spec",
        "pretrained={root}/nowhere,drafter={llama}",
        "effeval-hetero-spec model_args 'pretrained'",
    ),
    (
        "hetero-spec drafter missing folder",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={root}/nowhere",
        "effeval-hetero-spec model_args 'drafter'",
    ),
    (
        "hetero-spec drafter empty folder",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={empty}",
        "effeval-hetero-spec model_args 'drafter'",
    ),
    (
        "hetero-spec num_draft_tokens=0",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={llama},num_draft_tokens=0",
        "effeval-hetero-spec model_args 'num_draft_tokens'",
    ),
    (
        "hetero-spec num_draft_tokens=-3",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={llama},num_draft_tokens=-3",
        "effeval-hetero-spec model_args 'num_draft_tokens'",
    ),
    (
        "hetero-spec num_draft_tokens not an integer",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={llama},num_draft_tokens=2.5",
        "effeval-hetero-spec model_args 'num_draft_tokens'",
    ),
    (
        "hetero-spec unknown algorithm",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={llama},algorithm=medusa",
        "effeval-hetero-spec model_args 'algorithm'",
    ),
    (
        "hetero-spec verify not a bool",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={llama},verify=maybe",
        "effeval-hetero-spec model_args 'verify'",
    ),
    (
        "hetero-spec drafter_top_k=-1",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={llama},drafter_top_k=-1",
        "effeval-hetero-spec model_args 'drafter_top_k'",
    ),
    (
        "hetero-spec max_dp_states=0",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={llama},max_dp_states=0",
        "effeval-hetero-spec model_args 'max_dp_states'",
    ),
    (
        "hetero-spec unknown text_mode",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={llama},text_mode=raw",
        "effeval-hetero-spec model_args 'text_mode'",
    ),
    (
        "hetero-spec seed not an integer",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={llama},seed=x",
        "effeval-hetero-spec model_args 'seed'",
    ),
    ("short-mk m > k", "effeval-short-mk", "pretrained={llama},k=2,m=3", "effeval-short-mk model_args 'm'"),
    ("short-mk k=0", "effeval-short-mk", "pretrained={llama},k=0", "effeval-short-mk model_args 'k'"),
    ("short-mk k=-4", "effeval-short-mk", "pretrained={llama},k=-4", "effeval-short-mk model_args 'k'"),
    ("short-mk m=0", "effeval-short-mk", "pretrained={llama},m=0", "effeval-short-mk model_args 'm'"),
    (
        "short-mk k not an integer",
        "effeval-short-mk",
        "pretrained={llama},k=eight",
        "effeval-short-mk model_args 'k'",
    ),
    (
        "short-mk unknown strategy",
        "effeval-short-mk",
        "pretrained={llama},strategy=fastest",
        "effeval-short-mk model_args 'strategy'",
    ),
    (
        "short-mk max_think_tokens=0",
        "effeval-short-mk",
        "pretrained={llama},max_think_tokens=0",
        "effeval-short-mk model_args 'max_think_tokens'",
    ),
    ("short-mk unknown answer extractor", "effeval-short-mk", "pretrained={llama},answer=guess", "answer"),
    (
        "short-mk answer regex does not compile",
        "effeval-short-mk",
        "pretrained={llama},answer=regex:(",
        "answer",
    ),
    (
        "short-mk truncated safetensors",
        "effeval-short-mk",
        "pretrained={llama_truncated}",
        "effeval-short-mk model_args 'pretrained'",
    ),
    (
        "short-mk corrupt config.json",
        "effeval-short-mk",
        "pretrained={llama_bad_config}",
        "effeval-short-mk model_args 'pretrained'",
    ),
    (
        "short-mk pretrained missing folder",
        "effeval-short-mk",
        "pretrained={root}/nowhere",
        "effeval-short-mk model_args 'pretrained'",
    ),
    (
        "short-mk chain_log is a folder",
        "effeval-short-mk",
        "pretrained={llama},chain_log={folder}",
        "effeval-short-mk model_args 'chain_log'",
    ),
    (
        "short-mk chain_log unwritable",
        "effeval-short-mk",
        "pretrained={llama},chain_log={unwritable}/log.jsonl",
        "effeval-short-mk model_args 'chain_log'",
    ),
    (
        "pruned-ssm corrupt config.json",
        "effeval-pruned-ssm",
        "pretrained={mamba_bad_config},method=magnitude,sparsity=0.5",
        "effeval-pruned-ssm model_args 'pretrained'",
    ),
    (
        "pruned-ssm truncated safetensors",
        "effeval-pruned-ssm",
        "pretrained={mamba_truncated},method=magnitude,sparsity=0.5",
        "effeval-pruned-ssm model_args 'pretrained'",
    ),
    (
        "pruned-ssm sparsity=1.5",
        "effeval-pruned-ssm",
        "pretrained={mamba},method=magnitude,sparsity=1.5",
        "effeval-pruned-ssm model_args 'sparsity'",
    ),
    (
        "pruned-ssm sparsity=-0.1",
        "effeval-pruned-ssm",
        "pretrained={mamba},method=magnitude,sparsity=-0.1",
        "effeval-pruned-ssm model_args 'sparsity'",
    ),
    (
        "pruned-ssm sparsity=nan",
        "effeval-pruned-ssm",
        "pretrained={mamba},method=magnitude,sparsity=nan",
        "effeval-pruned-ssm model_args 'sparsity'",
    ),
    (
        "pruned-ssm unknown method",
        "effeval-pruned-ssm",
        "pretrained={mamba},method=snip,sparsity=0.5",
        "effeval-pruned-ssm model_args 'method'",
    ),
    (
        "pruned-ssm unknown pattern",
        "effeval-pruned-ssm",
        "pretrained={mamba},method=magnitude,pattern=3:2",
        "effeval-pruned-ssm model_args 'pattern'",
    ),
    (
        "pruned-ssm nsamples=0",
        "effeval-pruned-ssm",
        "pretrained={mamba},method=wanda,sparsity=0.5,nsamples=0",
        "effeval-pruned-ssm model_args 'nsamples'",
    ),
    (
        "pruned-ssm calibration binary",
        "effeval-pruned-ssm",
        "pretrained={mamba},method=wanda,sparsity=0.5,calibration={binary_txt}",
        "effeval-pruned-ssm model_args 'calibration'",
    ),
    (
        "pruned-ssm calibration missing file",
        "effeval-pruned-ssm",
        "pretrained={mamba},method=wanda,sparsity=0.5,calibration={root}/none.txt",
        "effeval-pruned-ssm model_args 'calibration'",
    ),
    (
        "pruned-ssm save_to is a file",
        "effeval-pruned-ssm",
        "pretrained={mamba},method=magnitude,sparsity=0.5,save_to={file}",
        "effeval-pruned-ssm model_args 'save_to'",
    ),
    (
        "pruned-ssm save_to unwritable",
        "effeval-pruned-ssm",
        "pretrained={mamba},method=magnitude,sparsity=0.5,save_to={unwritable}",
        "effeval-pruned-ssm model_args 'save_to'",
    ),
    (
        "spellm pretrained is a plain LM, not a SpeLLM",
        "effeval-spellm",
        "pretrained={llama}",
        "pretrained",
    ),
    (
        "spellm pretrained missing folder",
        "effeval-spellm",
        "pretrained={root}/nowhere",
        "effeval-spellm model_args 'pretrained'",
    ),
    (
        "spellm unknown scoring",
        "effeval-spellm",
        "pretrained={llama},scoring=greedy",
        "effeval-spellm model_args 'scoring'",
    ),
    (
        "spellm max_length=0",
        "effeval-spellm",
        "pretrained={llama},max_length=0",
        "effeval-spellm model_args 'max_length'",
    ),
    (
        "spellm unknown dtype",
        "effeval-spellm",
        "pretrained={llama},dtype=int3",
        "effeval-spellm model_args 'dtype'",
    ),
]


@pytest.mark.parametrize("case", WRAPPER_CASES, ids=[c[0] for c in WRAPPER_CASES])
def test_lm_eval_wrappers(case, bad, sandbox, monkeypatch):
    """Each row through ``effeval lm`` as a user types it (lm-eval's CLI in that process, with a
    one-document run of our smoke task and an output folder that must stay unwritten); then the
    wrapper built in-process as the stock ``lm_eval`` CLI builds it (``get_model``), which must
    raise the same one-line ConfigError (its exit status under ``lm_eval`` is the excepthook's,
    tested below). An output model_arg is checked before the pruning."""
    import lm_eval.models  # noqa: F401  (registers lm-eval's models; effeval's come with the plugin)
    from lm_eval.api.registry import get_model
    from lm_eval.utils import simple_parse_args_string

    import effeval.models  # noqa: F401

    _, model, args, argument = case
    argv = ["--model", model, "--model_args", args.format(**bad), "--tasks", "effeval_smoke_mc"]
    argv += ["--device", "cpu", "--limit", "1", "--output_path", str(bad["root"] / "lm_out")]
    run_row(effeval_cmd("lm", *argv), argument, bad, sandbox, loud=True)

    if "save_to=" in args and bad_output(["--out", args.split("save_to=")[-1]]):

        def started(*a, **k):
            raise AssertionError("prune_model ran before save_to was checked")

        monkeypatch.setattr("effeval.methods.pruned_ssm.api.prune_model", started)
    kwargs = simple_parse_args_string(args.format(**bad))
    before = listing(Path(bad["root"]))
    with pytest.raises(ConfigError) as err:
        get_model(model)(**kwargs, device="cpu")
    message = str(err.value)
    assert "\n" not in message and "Fix: " in message and message.startswith(argument), message
    assert listing(Path(bad["root"])) == before


def test_stock_lm_eval_exits_2_and_runs_atexit_handlers(bad, sandbox, tmp_path):
    """#21 the excepthook ended the stock ``lm_eval`` CLI with ``os._exit(2)``: no atexit handler
    ran and a file the program had written but not flushed stayed empty. The console script's
    own lines (``from lm_eval.__main__ import cli_evaluate; sys.exit(cli_evaluate())``) run here
    after the program registered a handler and wrote to a buffered file: exit 2, one line, the
    handler ran, the buffer reached the disk."""
    marker, buffered = tmp_path / "atexit-ran", tmp_path / "buffered.txt"
    argv = ["lm_eval", "run", "--model", "effeval-short-mk", "--model_args", f"pretrained={bad['llama']},k=0"]
    argv += ["--tasks", "effeval_smoke_mc", "--include_path", str(REPO / "task_configs"), "--device", "cpu"]
    code = (
        "import atexit, pathlib, sys\n"
        f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'ran')\n"
        f"held = open({str(buffered)!r}, 'w')\n"
        "held.write('written before the error, never flushed by the program')\n"
        f"sys.argv = {argv!r}\n"
        "from lm_eval.__main__ import cli_evaluate\n"
        "sys.exit(cli_evaluate())\n"
    )
    proc = run_entry([sys.executable, "-c", code], sandbox, timeout=600)
    assert_one_line_error(proc, "effeval-short-mk model_args 'k'", loud=True)
    assert marker.read_text() == "ran"
    assert buffered.read_text() == "written before the error, never flushed by the program"
    assert not any(sandbox.cwd.iterdir())


# --------------------------------------------------------------------------- effeval lm


LM_WORK = ("lm_eval.__main__:cli_evaluate",)  # the up-front checks come before lm-eval starts

LM_CASES = [
    (
        "#17 lm-eval's own error for --limit -5 under effeval lm",
        ["--tasks", "effeval_smoke_mc", "--limit", "-5"],
        "--limit",
    ),
    ("--limit 0", ["--tasks", "effeval_smoke_mc", "--limit", "0"], "--limit"),
    ("--limit 2.5", ["--tasks", "effeval_smoke_mc", "--limit", "2.5"], "--limit"),
    ("--limit abc", ["--tasks", "effeval_smoke_mc", "--limit", "abc"], "--limit"),
    ("--limit nan", ["--tasks", "effeval_smoke_mc", "--limit", "nan"], "--limit"),
    ("--limit inf", ["--tasks", "effeval_smoke_mc", "--limit", "inf"], "--limit"),
    ("unknown --model", ["--model", "effeval-nope", "--tasks", "effeval_smoke_mc"], "--model"),
    ("model_args without =", ["--model_args", "pretrained", "--tasks", "effeval_smoke_mc"], "--model_args"),
    ("model_args empty key", ["--model_args", "=x", "--tasks", "effeval_smoke_mc"], "--model_args"),
    (
        "model_args broken JSON",
        ["--model_args", '{{"pretrained": ', "--tasks", "effeval_smoke_mc"],
        "--model_args",
    ),
    (
        "--include_path not a folder",
        ["--tasks", "effeval_smoke_mc", "--include_path", "{file}"],
        "--include_path",
    ),
    (
        "--include_path missing",
        ["--tasks", "effeval_smoke_mc", "--include_path", "{root}/nowhere"],
        "--include_path",
    ),
    (
        "#17 lm-eval's own error for an unknown task under effeval lm",
        ["--tasks", "effeval_no_such_task"],
        "--tasks",
    ),
    # effeval wrappers' model_args are checked before lm-eval starts (it logs for ~6 s first)
    (
        "#17 effeval lm's argument checks answer only after lm-eval's start-up",
        ["--model", "effeval-short-mk", "--model_args", "pretrained={llama},temprature=0.7"],
        "effeval-short-mk: unknown model_args temprature",
    ),
    (
        "pruned-ssm sparsity not a number",
        ["--model", "effeval-pruned-ssm", "--model_args", "pretrained={mamba},method=wanda,sparsity=half"],
        "effeval-pruned-ssm model_args 'sparsity'",
    ),
    (
        "hetero-spec no drafter",
        ["--model", "effeval-hetero-spec", "--model_args", "pretrained={llama}"],
        "effeval-hetero-spec: missing model_args 'drafter'",
    ),
    (
        "hetero-spec unknown model_arg",
        ["--model", "effeval-hetero-spec", "--model_args", "pretrained={llama},drafter={llama},foo=1"],
        "effeval-hetero-spec: unknown model_args foo",
    ),
    (
        "hetero-spec num_draft_tokens=0",
        [
            "--model",
            "effeval-hetero-spec",
            "--model_args",
            "pretrained={llama},drafter={llama},num_draft_tokens=0",
        ],
        "effeval-hetero-spec model_args 'num_draft_tokens'",
    ),
    (
        "spellm unknown scoring",
        ["--model", "effeval-spellm", "--model_args", "pretrained={llama},scoring=greedy"],
        "effeval-spellm model_args 'scoring'",
    ),
    (
        "short-mk unknown strategy",
        ["--model", "effeval-short-mk", "--model_args", "pretrained={llama},strategy=fastest"],
        "effeval-short-mk model_args 'strategy'",
    ),
]
LM_CASES += [
    (
        "#21 --model hf on a folder with a corrupt config.json",
        ["--model_args", "pretrained={llama_bad_config}"],
        "hf model_args 'pretrained'",
    ),
    (
        "--model hf on a folder with truncated weights",
        ["--model_args", "pretrained={llama_truncated}"],
        "hf model_args 'pretrained'",
    ),
    (
        "--model hf on a missing folder",
        ["--model_args", "pretrained={root}/nowhere"],
        "hf model_args 'pretrained'",
    ),
    (
        "#21 --gen_kwargs temperature=abc",
        ["--tasks", "effeval_smoke_gen", "--gen_kwargs", "temperature=abc"],
        "--gen_kwargs 'temperature'",
    ),
    ("--gen_kwargs temperature=nan", ["--gen_kwargs", "temperature=nan"], "--gen_kwargs 'temperature'"),
    ("--gen_kwargs temperature=-1", ["--gen_kwargs", "temperature=-1"], "--gen_kwargs 'temperature'"),
    ("--gen_kwargs top_p=2", ["--gen_kwargs", "top_p=2"], "--gen_kwargs 'top_p'"),
    ("--gen_kwargs top_k=2.5", ["--gen_kwargs", "top_k=2.5"], "--gen_kwargs 'top_k'"),
    ("--gen_kwargs max_gen_toks=0", ["--gen_kwargs", "max_gen_toks=0"], "--gen_kwargs 'max_gen_toks'"),
    ("--gen_kwargs do_sample=maybe", ["--gen_kwargs", "do_sample=maybe"], "--gen_kwargs 'do_sample'"),
    ("--gen_kwargs until=5", ["--gen_kwargs", "until=5"], "--gen_kwargs 'until'"),
    (
        "--gen_kwargs a key given twice",
        ["--gen_kwargs", ["temperature=0", "temperature=1"]],
        "--gen_kwargs",
    ),
    ("#21 --output_path an existing file", ["--output_path", "{file}"], "--output_path"),
    ("--output_path under a file", ["--output_path", "{under_file}/x"], "--output_path"),
    ("--output_path .json under a file", ["--output_path", "{under_file}/r.json"], "--output_path"),
    ("--output_path unwritable", ["--output_path", "{unwritable}"], "--output_path"),
    (
        "#21 duplicated model_args keys",
        ["--model_args", "pretrained={llama},pretrained={mamba}"],
        "--model_args",
    ),
    (
        "model_args key repeated across values",
        ["--model_args", ["pretrained={llama}", "dtype=float32", "dtype=bfloat16"]],
        "--model_args",
    ),
    (
        "model_args key repeated in JSON",
        ["--model_args", '{{"pretrained": "{llama}", "pretrained": "{mamba}"}}'],
        "--model_args",
    ),
    (
        "model_args JSON followed by more values",
        ["--model_args", ['{{"pretrained": "{llama}"}}', "dtype=float32"]],
        "--model_args",
    ),
    (
        "#21 hetero-spec generate_until top_p=abc from the task's generation_kwargs",
        [
            "--model",
            "effeval-hetero-spec",
            "--model_args",
            "pretrained={llama},drafter={llama}",
            "--tasks",
            "effeval_bad_gen_kwargs",
            "--include_path",
            "{bad_tasks}",
        ],
        "effeval-hetero-spec gen_kwargs 'top_p'",
    ),
]
# rows whose mistake only lm-eval's CLI (an unknown task) or the wrapper (the task's own
# generation settings) can see, once lm-eval has started
LM_LOUD = {
    "#17 lm-eval's own error for an unknown task under effeval lm",
    "#21 hetero-spec generate_until top_p=abc from the task's generation_kwargs",
}


@pytest.mark.parametrize("case", LM_CASES, ids=[c[0] for c in LM_CASES])
def test_effeval_lm(case, bad, sandbox):
    name, extra, argument = case
    opts = {
        "--model": "hf",
        "--model_args": "pretrained={llama}",
        "--tasks": "effeval_smoke_mc",
        "--device": "cpu",
        "--limit": "1",
        "--output_path": "{root}/lm_out",  # must stay unwritten
    }
    it = iter(extra)
    for flag in it:
        opts[flag] = next(it)
    argv = []
    for flag, value in opts.items():
        argv += [flag, *(value if isinstance(value, list) else [value])]
    loud = name in LM_LOUD
    run_row(
        effeval_cmd("lm", *fill(argv, bad)), argument, bad, sandbox, refuse=() if loud else LM_WORK, loud=loud
    )


# --------------------------------------------------------------------------- effeval pruned-ssm


PRUNE_CASES = [
    # output path problems are found before the model is loaded or pruned
    ("#17 output path that is a file for prune", ["--out", "{file}"], "--out"),
    ("#17 output path that is unwritable for prune", ["--out", "{unwritable}"], "--out"),
    ("--out under a file", ["--out", "{under_file}"], "--out"),
    ("--out is the --model folder", ["--out", "{mamba}"], "--out"),
    ("#17 corrupt config.json as prune --model", ["--model", "{mamba_bad_config}"], "--model"),
    ("#17 truncated safetensors as prune --model", ["--model", "{mamba_truncated}"], "--model"),
    ("--model missing", ["--model", "{root}/nowhere"], "--model"),
    ("--model empty folder", ["--model", "{empty}"], "--model"),
    ("--model is a file", ["--model", "{file}"], "--model"),
    (
        "#17 binary calibration text for prune",
        ["--method", "wanda", "--calibration", "{binary_txt}"],
        "--calibration",
    ),
    (
        "#17 latin-1 calibration text for prune",
        ["--method", "wanda", "--calibration", "{latin1_txt}"],
        "--calibration",
    ),
    ("--calibration missing", ["--method", "wanda", "--calibration", "{root}/none.txt"], "--calibration"),
    ("--calibration empty file", ["--method", "wanda", "--calibration", "{empty_txt}"], "--calibration"),
    ("--sparsity 1.5", ["--sparsity", "1.5"], "--sparsity"),
    ("--sparsity -0.2", ["--sparsity", "-0.2"], "--sparsity"),
    ("--sparsity nan", ["--sparsity", "nan"], "--sparsity"),
    ("--sparsity abc", ["--sparsity", "abc"], "--sparsity"),
    ("--method unknown", ["--method", "snip"], "--method"),
    ("--pattern unknown", ["--pattern", "3:2"], "--pattern"),
    ("--criterion unknown", ["--method", "flap", "--criterion", "vibes"], "--criterion"),
    ("--nsamples 0", ["--method", "wanda", "--nsamples", "0"], "--nsamples"),
    ("--seqlen -16", ["--method", "wanda", "--seqlen", "-16"], "--seqlen"),
    ("--blocksize 0", ["--method", "sparsegpt", "--blocksize", "0"], "--blocksize"),
    ("--percdamp -1", ["--method", "sparsegpt", "--percdamp", "-1"], "--percdamp"),
    ("--dtype unknown", ["--dtype", "int8"], "--dtype"),
    ("--seed not an integer", ["--seed", "1.5"], "--seed"),
    ("unknown flag", ["--sparsity", "0.5", "--prune-harder", "1"], "--prune-harder"),
]


PRUNE_WORK = (
    "transformers.models.auto.auto_factory:_BaseAutoModelClass.from_pretrained",
    "effeval.methods.pruned_ssm.api:prune_model",
)


@pytest.mark.parametrize("case", PRUNE_CASES, ids=[c[0] for c in PRUNE_CASES])
def test_pruned_ssm_cli(case, bad, sandbox):
    """Every row is refused before the model loads (the loader is a trap in the child)."""
    _, extra, argument = case
    opts = {"--model": "{mamba}", "--method": "magnitude", "--sparsity": "0.5", "--out": "{root}/pruned"}
    it = iter(extra)
    for flag in it:
        opts[flag] = next(it)
    argv = ["pruned-ssm", "--nsamples", "2", "--seqlen", "16"] + [x for kv in opts.items() for x in kv]
    run_row(effeval_cmd(*fill(argv, bad)), argument, bad, sandbox, refuse=PRUNE_WORK)


# --------------------------------------------------------------------------- effeval spellm


SPELLM_CASES = [
    (
        "#17 output path that is a file for spellm distill",
        ["distill", "--base", "{llama}", "--out", "{file}"],
        "--out",
    ),
    (
        "#17 output path that is unwritable for spellm distill",
        ["distill", "--base", "{llama}", "--out", "{unwritable}"],
        "--out",
    ),
    ("distill --out under a file", ["distill", "--base", "{llama}", "--out", "{under_file}"], "--out"),
    ("distill --out is the --base folder", ["distill", "--base", "{llama}", "--out", "{llama}"], "--out"),
    (
        "#17 binary training text for spellm distill",
        ["distill", "--base", "{llama}", "--out", "{root}/sp1", "--data", "{binary_txt}"],
        "--data",
    ),
    (
        "#17 latin-1 training text for spellm distill",
        ["distill", "--base", "{llama}", "--out", "{root}/sp2", "--data", "{latin1_txt}"],
        "--data",
    ),
    (
        "distill --data missing",
        ["distill", "--base", "{llama}", "--out", "{root}/sp5", "--data", "{root}/no.txt"],
        "--data",
    ),
    (
        "distill --base corrupt config.json",
        ["distill", "--base", "{llama_bad_config}", "--out", "{root}/sp3"],
        "--base",
    ),
    (
        "distill --base truncated safetensors",
        ["distill", "--base", "{llama_truncated}", "--out", "{root}/sp4"],
        "--base",
    ),
    ("distill --base missing", ["distill", "--base", "{root}/nowhere", "--out", "{root}/sp6"], "--base"),
    ("distill --k 0", ["distill", "--base", "{llama}", "--out", "{root}/sp7", "--k", "0"], "--k"),
    ("distill --k -3", ["distill", "--base", "{llama}", "--out", "{root}/sp7", "--k", "-3"], "--k"),
    (
        "distill --seqlen 0",
        ["distill", "--base", "{llama}", "--out", "{root}/sp7", "--seqlen", "0"],
        "--seqlen",
    ),
    (
        "distill --batch-size -1",
        ["distill", "--base", "{llama}", "--out", "{root}/sp7", "--batch-size", "-1"],
        "--batch-size",
    ),
    ("distill --lr 0", ["distill", "--base", "{llama}", "--out", "{root}/sp7", "--lr", "0"], "--lr"),
    ("distill --lr nan", ["distill", "--base", "{llama}", "--out", "{root}/sp7", "--lr", "nan"], "--lr"),
    (
        "distill --tune unknown",
        ["distill", "--base", "{llama}", "--out", "{root}/sp7", "--tune", "most"],
        "--tune",
    ),
    (
        "distill --target-temperature -1",
        ["distill", "--base", "{llama}", "--out", "{root}/sp7", "--target-temperature", "-1"],
        "--target-temperature",
    ),
    (
        "distill --scoring unknown",
        ["distill", "--base", "{llama}", "--out", "{root}/sp7", "--scoring", "best"],
        "--scoring",
    ),
    ("distill without --out", ["distill", "--base", "{llama}"], "--out"),
    (
        "#17 spellm coverage on an empty folder",
        ["coverage", "--base", "{empty}"],
        "--base",
    ),
    (
        "coverage --base missing",
        ["coverage", "--base", "{root}/nowhere"],
        "--base",
    ),
    ("coverage --k not a list", ["coverage", "--base", "{llama}", "--k", "8,x"], "--k"),
    ("coverage --k 0", ["coverage", "--base", "{llama}", "--k", "0"], "--k"),
    ("coverage --k negative", ["coverage", "--base", "{llama}", "--k", "8,-2"], "--k"),
    ("coverage --k empty", ["coverage", "--base", "{llama}", "--k", ","], "--k"),
    ("no sub-command", [], "COMMAND"),
    ("unknown sub-command", ["train"], "COMMAND"),
]


def distill_row(name: str, *extra: str, argument: str):
    return (name, ["distill", "--base", "{llama}", "--out", "{root}/sp8", *extra], argument)


SPELLM_CASES += [
    distill_row("#21 distill --lr inf", "--lr", "inf", argument="--lr"),
    distill_row("distill --lr -0.1", "--lr", "-0.1", argument="--lr"),
    distill_row("distill --body-lr inf", "--tune", "lora", "--body-lr", "inf", argument="--body-lr"),
    distill_row("#21 distill --k 10000", "--k", "10000", argument="--k"),
    distill_row("distill --k 129", "--k", "129", argument="--k"),
    distill_row("distill --seqlen 100000", "--seqlen", "100000", argument="--seqlen"),
    distill_row("distill --batch-size 100000", "--batch-size", "100000", argument="--batch-size x --seqlen"),
    distill_row(
        "distill --eval-positions 10000000", "--eval-positions", "10000000", argument="--eval-positions"
    ),
    distill_row("distill --pool 100000000", "--pool", "100000000", argument="--pool x --k"),
    distill_row(
        "distill --max-blocks 1000000000", "--max-blocks", "1000000000", argument="--max-blocks x --seqlen"
    ),
    distill_row(
        "distill --lora-rank 100000", "--tune", "lora", "--lora-rank", "100000", argument="--lora-rank"
    ),
    distill_row(
        "distill --lora-alpha inf",
        "--tune",
        "lora",
        "--lora-alpha",
        "inf",
        argument="--lora-rank/--lora-alpha",
    ),
    distill_row(
        "distill --target-temperature inf", "--target-temperature", "inf", argument="--target-temperature"
    ),
    ("coverage --k 10000", ["coverage", "--base", "{llama}", "--k", "8,10000"], "--k"),
]


@pytest.mark.parametrize("case", SPELLM_CASES, ids=[c[0] for c in SPELLM_CASES])
def test_spellm_cli(case, bad, sandbox):
    _, argv, argument = case
    extra = ["--steps", "1", "--max-blocks", "4", "--no-progress"] if argv[:1] == ["distill"] else []
    if "--max-blocks" in argv:
        extra = ["--steps", "1", "--no-progress"]
    cmd = effeval_cmd("spellm", *fill(argv, bad), *extra)
    run_row(cmd, argument, bad, sandbox, refuse=("effeval.methods.spellm.distill:distill",))


def test_spellm_distill_ctrl_c_is_one_line_exit_130(bad, tmp_path, sandbox):
    """#21 Ctrl-C in `spellm distill` ended in a KeyboardInterrupt traceback. Now: SIGINT once
    training runs -> exit 130, one line saying what is kept and how to go on, no traceback, and
    --out holds no temporary or half-written file (no checkpoint was due yet: nothing at all)."""
    out = tmp_path / "sp"
    cmd = effeval_cmd("spellm", "distill", "--base", bad["llama"], "--out", str(out), "--steps", "100000")
    cmd += ["--max-blocks", "8", "--seqlen", "16", "--pool", "0", "--eval-every", "100000"]
    cmd += ["--save-every", "100000", "--no-progress"]
    env = dict(sandbox.env, EFFEVAL_REFUSE_WORK="")
    # the child gets SIGINT's default disposition, as in a terminal, whatever the runner that
    # started pytest left (Python keeps an inherited SIG_IGN)
    proc = subprocess.Popen(
        cmd,
        cwd=sandbox.cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        # the first evaluation's log line says training is under way (steps are milliseconds apart)
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "spellm eval step 0" in line:
                break
        else:
            pytest.fail("distill ended before training started: " + "".join(lines)[-3000:])
        time.sleep(1.0)  # inside the training loop
        proc.send_signal(signal.SIGINT)
        stdout, rest = proc.communicate(timeout=120)
    finally:  # a failed wait must not leave a 100,000-step distillation running
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = "".join(lines) + rest
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr + stdout, stderr[-3000:]
    last = [line for line in stderr.splitlines() if line.strip()][-1]
    assert last.startswith("effeval: interrupted; no checkpoint was saved yet"), last
    assert "run the same command" in last
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))
    assert not any(sandbox.cwd.iterdir())


def test_saved_models_get_the_umask_mode(bad, tmp_path):
    """#21 safetensors (0.8) writes its files 0600, so a model saved by `effeval pruned-ssm`, a
    SpeLLM from `effeval spellm distill` and a zoo build were unreadable to the group and others
    under a 022 umask, against the README's "they get the usual umask mode". Each is made here
    under umask 022: every file is 0644."""
    env = {**os.environ, "EFFEVAL_ZOO_DIR": str(tmp_path / "zoo"), "HF_HUB_OFFLINE": "1"}
    env.pop("EFFEVAL_REFUSE_WORK", None)
    commands = {
        "pruned": effeval_cmd(
            "pruned-ssm", "--model", bad["mamba"], "--method", "magnitude", "--sparsity", "0.5"
        ),
        "spellm": effeval_cmd(
            "spellm", "distill", "--base", bad["llama"], "--steps", "1", "--max-blocks", "8"
        )
        + ["--seqlen", "16", "--pool", "0", "--eval-positions", "16", "--no-progress"],
    }
    for name, cmd in commands.items():
        proc = subprocess.run(
            [*cmd, "--out", str(tmp_path / name)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            preexec_fn=lambda: os.umask(0o022),
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run(
        effeval_cmd("zoo", "path", "llama-sp"),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    modes = {
        str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777)
        for p in tmp_path.rglob("*")
        if p.is_file() and not p.name.startswith(".") and "checkpoint" not in p.parts
    }
    assert any(name.endswith(".safetensors") for name in modes) and set(modes.values()) == {"0o644"}, modes


# --------------------------------------------------------------------------- effeval short-mk analyze


SHORT_MK_CASES = [
    ("SAMPLES missing", ["{root}/nowhere.jsonl"], "SAMPLES"),
    ("SAMPLES is a folder", ["{folder}"], "SAMPLES"),
    ("SAMPLES empty file", ["{empty_txt}"], "SAMPLES"),
    ("SAMPLES binary", ["{binary_txt}"], "SAMPLES"),
    ("SAMPLES latin-1", ["{pool_latin1_jsonl}"], "SAMPLES"),
    ("SAMPLES a JSON array per line", ["{pool_array_jsonl}"], "SAMPLES"),
    ("SAMPLES without a per-chain log", ["{pool_no_log_jsonl}"], "SAMPLES"),
    ("SAMPLES of an early-stopped run", ["{pool_aborted_jsonl}"], "SAMPLES"),
    ("--normalize unknown", ["{pool_jsonl}", "--normalize", "fuzzy"], "--normalize"),
    ("--answer unknown extractor", ["{pool_jsonl}", "--answer", "guess"], "--answer"),
    ("--answer regex does not compile", ["{pool_jsonl}", "--answer", "regex:("], "--answer"),
    ("--seed not an integer", ["{pool_jsonl}", "--seed", "x"], "--seed"),
    ("--k 0", ["{pool_jsonl}", "--k", "0"], "--k"),
    ("--k -2", ["{pool_jsonl}", "--k", "-2"], "--k"),
    ("--k differs from the pool", ["{pool_jsonl}", "--k", "3"], "--k"),
    ("--out names a folder", ["{pool_jsonl}", "--out", "{root}/stem"], "--out"),
    ("--out under a file", ["{pool_jsonl}", "--out", "{under_file}/table"], "--out"),
    ("--out unwritable", ["{pool_jsonl}", "--out", "{unwritable}/table"], "--out"),
    ("SAMPLES not given", [], "SAMPLES"),
]


SHORT_MK_CASES += [
    ("#21 chain log whose token counts are strings", ["{pool_string_tokens_jsonl}"], "SAMPLES"),
    ("#21 chain log with negative token counts", ["{pool_negative_tokens_jsonl}"], "SAMPLES"),
    ("chain log with negative answer tokens", ["{pool_negative_answer_tokens_jsonl}"], "SAMPLES"),
    ("chain log with a fractional token count", ["{pool_fraction_tokens_jsonl}"], "SAMPLES"),
    ("chain log whose chain is not an object", ["{pool_chain_not_object_jsonl}"], "SAMPLES"),
    ("chain log whose chains are not a list", ["{pool_chains_not_list_jsonl}"], "SAMPLES"),
]


@pytest.mark.parametrize("case", SHORT_MK_CASES, ids=[c[0] for c in SHORT_MK_CASES])
def test_short_mk_analyze_cli(case, bad, sandbox):
    _, argv, argument = case
    cmd = effeval_cmd("short-mk", "analyze", *fill(argv, bad))
    run_row(cmd, argument, bad, sandbox, refuse=("effeval.methods.short_mk.pool:analyze_pool",))


# --------------------------------------------------------------------------- effeval results


@pytest.fixture(scope="module")
def demo_result():
    return str(DATA / "result_hf_llama_sp.json")


RESULTS_WORK = (
    "effeval.results.compare:compare",
    "effeval.results.export:export",
    "effeval.results.cli:convert",
    "effeval.results.leaderboard:build_site",
)


RESULTS_CASES = [
    (
        "#17 output path that is a folder for results compare",
        ["compare", "{demo}", "{demo}", "--out", "{folder}"],
        "--out",
    ),
    (
        "#17 output path that is unwritable for results compare",
        ["compare", "{demo}", "{demo}", "--out", "{unwritable}/c.json"],
        "--out",
    ),
    ("compare --out under a file", ["compare", "{demo}", "{demo}", "--out", "{under_file}/c.json"], "--out"),
    ("compare missing run", ["compare", "{demo}", "{root}/nowhere.json"], "run"),
    ("compare run not JSON", ["compare", "{demo}", "{not_json_json}"], "run"),
    ("compare run not UTF-8", ["compare", "{demo}", "{result_latin1_json}"], "run"),
    ("compare run a JSON array", ["compare", "{demo}", "{array_json}"], "run"),
    ("compare --bootstrap 0", ["compare", "{demo}", "{demo}", "--bootstrap", "0"], "--bootstrap"),
    ("compare --bootstrap -5", ["compare", "{demo}", "{demo}", "--bootstrap", "-5"], "--bootstrap"),
    ("compare --bootstrap abc", ["compare", "{demo}", "{demo}", "--bootstrap", "abc"], "--bootstrap"),
    ("compare --confidence 1.5", ["compare", "{demo}", "{demo}", "--confidence", "1.5"], "--confidence"),
    ("compare --confidence 0", ["compare", "{demo}", "{demo}", "--confidence", "0"], "--confidence"),
    ("compare --confidence nan", ["compare", "{demo}", "{demo}", "--confidence", "nan"], "--confidence"),
    ("compare --seed abc", ["compare", "{demo}", "{demo}", "--seed", "abc"], "--seed"),
    ("compare --tasks unknown", ["compare", "{demo}", "{demo}", "--tasks", "no_such_task"], "--tasks"),
    (
        "#17 output path that is a file for results export",
        ["export", "{demo}", "--format", "eee", "--out", "{file}"],
        "--out",
    ),
    (
        "#17 output path that is unwritable for results export",
        ["export", "{demo}", "--format", "hf-leaderboard", "--out", "{unwritable}"],
        "--out",
    ),
    ("export --out under a file", ["export", "{demo}", "--format", "hub", "--out", "{under_file}"], "--out"),
    ("export --format unknown", ["export", "{demo}", "--format", "csv", "--out", "{root}/e"], "--format"),
    (
        "export missing result",
        ["export", "{root}/nowhere.json", "--format", "eee", "--out", "{root}/e"],
        "RESULT",
    ),
    (
        "export result not JSON",
        ["export", "{not_json_json}", "--format", "eee", "--out", "{root}/e"],
        "RESULT",
    ),
    (
        "export --push without --repo",
        ["export", "{demo}", "--format", "hub", "--out", "{root}/e", "--push"],
        "--push",
    ),
    ("export without --format", ["export", "{demo}", "--out", "{root}/e"], "--format"),
    ("#17 output path that is a file for results convert", ["convert", "{root}", "--out", "{file}"], "--out"),
    (
        "#17 output path that is unwritable for results convert",
        ["convert", "{root}", "--out", "{unwritable}"],
        "--out",
    ),
    ("convert --out under a file", ["convert", "{root}", "--out", "{under_file}"], "--out"),
    ("convert missing source", ["convert", "{root}/nowhere", "--out", "{root}/c"], "SOURCE"),
    ("convert source is not lm-eval output", ["convert", "{demo}", "--out", "{root}/c"], "SOURCE"),
    ("convert empty folder", ["convert", "{empty}", "--out", "{root}/c"], "SOURCE"),
    (
        "#17 output path that is a file for leaderboard",
        ["leaderboard", str(DATA), "--out", "{file}"],
        "--out",
    ),
    (
        "#17 output path that is unwritable for leaderboard",
        ["leaderboard", str(DATA), "--out", "{unwritable}"],
        "--out",
    ),
    ("leaderboard --out under a file", ["leaderboard", str(DATA), "--out", "{under_file}"], "--out"),
    ("leaderboard missing folder", ["leaderboard", "{root}/nowhere", "--out", "{root}/site"], "RESULTS_DIR"),
    ("leaderboard folder without results", ["leaderboard", "{empty}", "--out", "{root}/site"], "RESULTS_DIR"),
    ("validate missing path", ["validate", "{root}/nowhere.json"], "{root}/nowhere.json"),
    ("validate empty folder", ["validate", "{empty}"], "{empty}"),
    ("no sub-command", [], "COMMAND"),
    ("unknown sub-command", ["merge", "{demo}"], "COMMAND"),
]


@pytest.mark.parametrize("case", RESULTS_CASES, ids=[c[0] for c in RESULTS_CASES])
def test_results_cli(case, bad, sandbox, demo_result):
    _, argv, argument = case
    argv = [a.replace("{demo}", demo_result) for a in argv]
    cmd = effeval_cmd("results", *fill(argv, bad))
    # an input is read by the work itself (a run to compare is checked as it is loaded); an
    # output path is checked before it starts
    refuse = RESULTS_WORK if bad_output(argv) else ()
    run_row(cmd, argument.format(**bad), bad, sandbox, refuse=refuse)


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """In-process, for the warning tests (odd but valid input): they read the log records."""
    from effeval.cli import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err


def test_leaderboard_names_the_files_it_skips(tmp_path, capsys, caplog):
    """#17 a leaderboard folder with malformed or wrong-schema files skipped without a word. Odd
    but valid: it builds, and a warning names both files."""
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copy(DATA / "result_hf_llama_sp.json", runs / "good.json")
    (runs / "broken.json").write_text('{"schema": "effeval/result/v1", "run_id": ')
    (runs / "other.json").write_text(json.dumps({"schema": "something/else", "x": 1}))
    with caplog.at_level("WARNING", logger="effeval"):
        code, err = run_cli(["results", "leaderboard", str(runs), "--out", str(tmp_path / "site")], capsys)
    assert code == 0 and "Traceback" not in err
    warned = "\n".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "broken.json" in warned and "other.json" in warned, warned


def test_results_validate_checks_only_result_files(tmp_path, capsys):
    """A run folder like the demo's (results beside an image run_config.json and per-prompt
    JSON) validates: non-result JSON in a folder is listed as skipped. A file named on the
    command line is always checked. Able to fail: validating every JSON as a result (the old
    behaviour) reports run_config.json as invalid."""
    folder = tmp_path / "demo"
    (folder / "image").mkdir(parents=True)
    for f in DATA.glob("*.json"):
        shutil.copy(f, folder / f.name)
    config = folder / "image" / "run_config.json"
    config.write_text(json.dumps({"config_hash": "abc", "config": {"steps": 2}}))
    code, err = run_cli(["results", "validate", str(folder)], capsys)
    assert code == 0, err
    code, _ = run_cli(["results", "validate", str(config)], capsys)
    assert code == 1


# --------------------------------------------------------------------------- effeval zoo


ZOO_CASES = [
    ("no sub-command", [], "COMMAND"),
    ("unknown sub-command", ["fetch"], "COMMAND"),
    ("path unknown model", ["path", "gpt-17"], "NAME"),
    ("build unknown model", ["build", "gpt-17", "--out", "{root}/zoo"], "NAMES"),
    ("build --out is a file", ["build", "llama-sp", "--out", "{file}"], "--out"),
    ("build --out under a file", ["build", "llama-sp", "--out", "{under_file}"], "--out"),
    ("build --out unwritable", ["build", "llama-sp", "--out", "{unwritable}"], "--out"),
    ("path --out is a file", ["path", "llama-sp", "--out", "{file}"], "--out"),
    ("path without a name", ["path"], "NAME"),
]


@pytest.fixture(scope="module")
def damaged_zoo(bad, sandbox):
    """Built zoo folders in the sandbox's zoo cache, damaged after their build: a tiny model whose
    weights were truncated, and a real-tier folder (as `zoo build --real` leaves it, provenance
    record included) whose weights were overwritten in place with the same size."""
    from effeval import zoo
    from effeval.zoo.real import PROVENANCE_FILE, weights_record

    tiny = zoo.model_dir("llama-sp", root=sandbox.zoo)
    shutil.copytree(bad["llama_truncated"], tiny)
    (tiny / zoo.COMPLETE_MARKER).write_text("built\n")
    real = zoo.model_dir("smollm2-135m", root=sandbox.zoo)
    shutil.copytree(bad["llama"], real)
    (real / PROVENANCE_FILE).write_text(json.dumps({"zoo_name": "smollm2-135m", **weights_record(real)}))
    (real / zoo.COMPLETE_MARKER).write_text("built\n")
    time.sleep(0.01)  # the overwrite is newer than the record, as any later write is
    weights = real / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-4:] = b"\x00\x01\x02\x03" if data[-4:] != b"\x00\x01\x02\x03" else b"\x04\x05\x06\x07"
    weights.write_bytes(bytes(data))
    return {"tiny": tiny, "real": real}


ZOO_CASES += [
    ("#21 path of a real-tier folder whose weights were overwritten", ["path", "smollm2-135m"], "NAME"),
    ("path of a built folder whose weights were truncated", ["path", "llama-sp"], "NAME"),
]


# rows that read a cached build (zoo.get returns it at once); every other row builds nothing
ZOO_CACHED = {c[0] for c in ZOO_CASES[-2:]}


@pytest.mark.parametrize("case", ZOO_CASES, ids=[c[0] for c in ZOO_CASES])
def test_zoo_cli(case, bad, sandbox, damaged_zoo):
    name, argv, argument = case
    refuse = ("effeval.zoo:build_all",) + (() if name in ZOO_CACHED else ("effeval.zoo:get",))
    message = run_row(effeval_cmd("zoo", *fill(argv, bad)), argument, bad, sandbox, refuse=refuse)
    if "damaged" in message:  # the fix it names is a command that rebuilds the folder
        assert f"Fix: rebuild it with `effeval zoo build {argv[1]} --force`" in message, message


def test_zoo_damage_fix_works(bad, tmp_path):
    """#21 `zoo path` handed out a folder whose weights were truncated, and the fix the load error
    named (`effeval zoo build`) did nothing without --force. Now `zoo path` refuses it, naming
    `effeval zoo build NAME --force`; running exactly that command rebuilds the folder, after
    which `zoo path` answers; and a plain `effeval zoo build NAME` repairs a damaged folder too."""
    from effeval import zoo

    env = {**os.environ, "EFFEVAL_ZOO_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    env.pop("EFFEVAL_REFUSE_WORK", None)

    def run(*argv):
        return subprocess.run([EFFEVAL, *argv], env=env, capture_output=True, text=True, timeout=600)

    folder = zoo.model_dir("llama-sp", root=tmp_path)
    for repair in (None, ["zoo", "build", "llama-sp"]):
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(bad["llama_truncated"], folder)
        (folder / zoo.COMPLETE_MARKER).write_text("built\n")
        refused = run("zoo", "path", "llama-sp")
        message = refused.stderr.strip().splitlines()[-1]
        assert refused.returncode == 2 and "damaged" in message, refused.stderr[-2000:]
        fix = re.search(r"`(effeval zoo build [^`]+)`", message).group(1)
        assert fix == "effeval zoo build llama-sp --force"
        done = run(*(repair or fix.split()[1:]))
        assert done.returncode == 0, done.stderr[-2000:]
        again = run("zoo", "path", "llama-sp")
        assert again.returncode == 0 and again.stdout.strip() == str(folder), again.stderr[-2000:]


# --------------------------------------------------------------------------- effeval image run


IMAGE_CASES = [
    ("#17 non-UTF-8 GenEval file", ["--benchmark", "{geneval_latin1_jsonl}"], "--benchmark"),
    ("#17 non-UTF-8 TIFA file", ["--benchmark", "{tifa_latin1_json}"], "--benchmark"),
    ("#17 non-UTF-8 DSG file", ["--benchmark", "{dsg_latin1_csv}"], "--benchmark"),
    (
        "#17 a TIFA record whose question is null",
        ["--benchmark", "tifa:{tifa_null_question_json}"],
        "--benchmark",
    ),
    ("#17 --height 13", ["--height", "13"], "--height"),
    ("#17 --guidance nan", ["--guidance", "nan"], "--guidance"),
    ("#17 output path that is a file for image run", ["--out", "{file}"], "--out"),
    ("#17 output path that is unwritable for image run", ["--out", "{unwritable}"], "--out"),
    ("--out under a file", ["--out", "{under_file}"], "--out"),
    ("--width 36", ["--width", "36"], "--width"),
    ("--height 0", ["--height", "0"], "--height"),
    ("--width -64", ["--width", "-64"], "--width"),
    ("--guidance inf", ["--guidance", "inf"], "--guidance"),
    ("--guidance -1", ["--guidance", "-1"], "--guidance"),
    ("--steps 0", ["--steps", "0"], "--steps"),
    ("--steps abc", ["--steps", "abc"], "--steps"),
    ("--seeds not integers", ["--seeds", "a,b"], "--seeds"),
    ("--seeds repeated", ["--seeds", "1,1"], "--seeds"),
    ("--seeds empty", ["--seeds", ","], "--seeds"),
    ("--limit 0", ["--limit", "0"], "--limit"),
    ("--limit -3", ["--limit", "-3"], "--limit"),
    ("--benchmark missing file", ["--benchmark", "{root}/nowhere.jsonl"], "--benchmark"),
    ("--benchmark unknown suffix", ["--benchmark", "{bench_yaml}"], "--benchmark"),
    ("--benchmark empty file", ["--benchmark", "{bench_empty_jsonl}"], "--benchmark"),
    ("--benchmark binary", ["--benchmark", "tifa:{binary_txt}"], "--benchmark"),
    ("--intervention repeated", ["--intervention", "none", "--intervention", "none"], "--intervention"),
    ("--intervention unknown kind", ["--intervention", "blur:circle"], "--intervention"),
    ("--scorer-opt without =", ["--scorer-opt", "threshold"], "--scorer-opt"),
    ("--scorers unknown", ["--scorers", "vibes"], "--scorers"),
    ("--scorers module:Class not importable", ["--scorers", "no_such_module:Scorer"], "--scorers"),
    ("--pipeline missing folder", ["--pipeline", "{root}/nowhere"], "--pipeline"),
    ("--pipeline not a pipeline", ["--pipeline", "{llama}"], "--pipeline"),
    ("--pipeline unknown zoo name", ["--pipeline", "zoo:sd-huge"], "--pipeline"),
    ("--max-subset 0", ["--max-subset", "0"], "--max-subset"),
    ("--redundancy-threshold 2", ["--redundancy-threshold", "2"], "--redundancy-threshold"),
    ("--bootstrap -1", ["--bootstrap", "-1"], "--bootstrap"),
    ("--dtype unknown", ["--dtype", "int3"], "--dtype"),
]


IMAGE_CASES += [
    (
        "#21 two TIFA records with one id and different captions",
        ["--benchmark", "tifa:{tifa_two_texts_one_id_json}"],
        "--benchmark",
    ),
    (
        "TIFA id that comes back after another id",
        ["--benchmark", "tifa:{tifa_id_comes_back_json}"],
        "--benchmark",
    ),
    (
        "TIFA question asked twice for one id",
        ["--benchmark", "tifa:{tifa_question_twice_json}"],
        "--benchmark",
    ),
    ("TIFA text-inputs id listed twice", ["--benchmark", "tifa:{tifa_text_twice_json}"], "--benchmark"),
    ("DSG item_id with two texts", ["--benchmark", "dsg:{dsg_two_texts_one_id_csv}"], "--benchmark"),
    ("#21 intervention target not in the prompt", ["--intervention", "drop:giraffe"], "--intervention"),
]
# rows whose mistake is found with the pipeline's tokenizer, after the pipeline has loaded
IMAGE_LOUD = {"#21 intervention target not in the prompt"}


def image_argv(extra: list[str], out: str = "{root}/img") -> list[str]:
    opts = {"--pipeline": "{sd}", "--benchmark": "{bench_ok_jsonl}", "--scorers": "none", "--out": out}
    argv = ["image", "run"]
    it = iter(extra)
    for flag in it:
        if flag in opts:
            opts[flag] = next(it)
        else:
            argv += [flag, next(it)]
    return argv + [x for kv in opts.items() for x in kv]


@pytest.mark.parametrize("case", IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_image_run_cli(case, bad, sandbox):
    """Refused before any image is made (the TIFA and --height rows once wrote wrong results;
    the output rows failed only after the pipeline had loaded); all but the LOUD rows before the
    pipeline loads. #21: a refused run left run_config.json in --out (caught by "nothing written")."""
    name, extra, argument = case
    loud = name in IMAGE_LOUD
    refuse = () if loud else ("effeval.image.encoders:load_pipeline",)
    run_row(effeval_cmd(*fill(image_argv(extra), bad)), argument, bad, sandbox, refuse=refuse, loud=loud)


def test_image_corrected_command_runs_after_a_refusal(bad, tmp_path, sandbox):
    """#21 a refused image run left run_config.json in --out, and the corrected command into the
    same folder was then refused as "a run with other settings". Now the refusal leaves --out
    untouched and the corrected command runs to its results."""
    out = str(tmp_path / "img")
    refused = run_entry(effeval_cmd(*fill(image_argv(["--intervention", "drop:giraffe"], out), bad)), sandbox)
    assert_one_line_error(refused, "--intervention", loud=True)
    assert not Path(out).exists()
    corrected = run_entry(effeval_cmd(*fill(image_argv(["--intervention", "drop:red"], out), bad)), sandbox)
    assert corrected.returncode == 0, corrected.stderr[-3000:]
    assert (Path(out) / "results.json").is_file()


def test_image_prompt_longer_than_77_tokens_warns(bad, capsys, caplog):
    """#17 a prompt longer than the text encoder's 77 tokens is cut with no warning. Odd but
    valid: the warning names the record. (A bad intervention target stops the run right after
    the up-front check, so no image is needed.)"""
    argv = ["image", "run", "--pipeline", bad["sd"], "--benchmark", bad["bench_long_jsonl"]]
    argv += ["--scorers", "none", "--out", str(bad["root"] / "long"), "--intervention", "drop:giraffe"]
    with caplog.at_level(logging.WARNING):
        code, err = run_cli(argv, capsys)
    assert code == 2 and "--intervention" in err
    assert any("long1 is longer than the text encoder's 77 tokens" in r.getMessage() for r in caplog.records)
    shutil.rmtree(bad["root"] / "long", ignore_errors=True)


# --------------------------------------------------------------------------- python -m effeval.bench


BENCH_CASES = [
    ("unknown benchmark", ["fastest"], "NAME"),
    ("unknown flag", ["short-mk", "--turbo"], "--turbo"),
    ("hetero-spec --threads 0", ["hetero-spec", "--threads", "0"], "--threads"),
    ("overhead --threads -1", ["overhead", "--threads", "-1"], "--threads"),
    ("short-mk --threads abc", ["short-mk", "--threads", "abc"], "--threads"),
    ("short-mk --temperature nan", ["short-mk", "--temperature", "nan"], "--temperature"),
    ("short-mk --top-p inf", ["short-mk", "--top-p", "inf"], "--top-p"),
    ("short-mk --k -1", ["short-mk", "--k", "-1"], "--k"),
    ("hetero-spec --repeats -2", ["hetero-spec", "--repeats", "-2"], "--repeats"),
    ("hetero-spec --out is a file", ["hetero-spec", "--out", "{file}"], "--out"),
    ("overhead --out unwritable", ["overhead", "--out", "{unwritable}"], "--out"),
    ("short-mk --out under a file", ["short-mk", "--out", "{under_file}"], "--out"),
    ("pruned-ssm --part unknown", ["pruned-ssm", "--part", "mamba9"], "--part"),
    ("pruned-ssm --sparsities nan", ["pruned-ssm", "--sparsities", "0.5", "nan"], "--sparsities"),
    ("spellm --k -16", ["spellm", "--k", "-16"], "--k"),
]


BENCH_CASES += [
    ("#21 overhead --repeats 0", ["overhead", "--repeats", "0"], "--repeats"),
    ("overhead --batch-size 0", ["overhead", "--batch-size", "0"], "--batch-size"),
    ("overhead --max-gen-toks 1000000", ["overhead", "--max-gen-toks", "1000000"], "--max-gen-toks"),
    ("overhead --generate 0", ["overhead", "--generate", "0"], "--generate"),
    (
        "hetero-spec --num-draft-tokens 1000",
        ["hetero-spec", "--num-draft-tokens", "1000"],
        "--num-draft-tokens",
    ),
    ("hetero-spec --prompts-per-task 0", ["hetero-spec", "--prompts-per-task", "0"], "--prompts-per-task"),
    ("short-mk --k 100000", ["short-mk", "--k", "100000"], "--k"),
    ("short-mk --top-p 1.5", ["short-mk", "--top-p", "1.5"], "--top-p"),
    ("short-mk --temperature -1", ["short-mk", "--temperature", "-1"], "--temperature"),
    ("short-mk --questions 0", ["short-mk", "--questions", "0"], "--questions"),
    ("spellm --k 10000", ["spellm", "--k", "10000"], "--k"),
    ("spellm --tokens 1000000", ["spellm", "--tokens", "1000000"], "--tokens"),
    ("real --repeats 0", ["real", "--repeats", "0"], "--repeats"),
    ("image --repeats 0", ["image", "--repeats", "0"], "--repeats"),
    ("image-shapes --limit 0", ["image-shapes", "--limit", "0"], "--limit"),
    ("pruned-ssm --nsamples 0", ["pruned-ssm", "--nsamples", "0"], "--nsamples"),
    ("pruned-ssm --sparsities 1.5", ["pruned-ssm", "--sparsities", "1.5"], "--sparsities"),
]


@pytest.mark.parametrize("case", BENCH_CASES, ids=[c[0] for c in BENCH_CASES])
def test_bench_cli(case, bad, sandbox):
    """``python -m effeval.bench NAME ...``: refused before the benchmark's work starts."""
    _, argv, argument = case
    cmd = [sys.executable, "-m", "effeval.bench", *fill(argv, bad)]
    run_row(cmd, argument, bad, sandbox, refuse=("effeval.bench.common:start_bench",))


# --------------------------------------------------------------------------- optional sources (issue 21)


SOURCE_CASES = [
    ("sources setup: unknown source", ["effeval.sources", "setup", "bigbnech"], "names"),
    (
        "fetch-bigbench --archive missing",
        ["effeval.real_data", "fetch-bigbench", "--archive", "{root}/nope.tar.gz"],
        "--archive",
    ),
    (
        "fetch-bigbench --archive not a tar",
        ["effeval.real_data", "fetch-bigbench", "--archive", "{file}"],
        "--archive",
    ),
    # the archive is on none of pip's indexes or find-links (an empty local index here, as on an
    # index that stopped serving it)
    ("fetch-bigbench: the index lists no archive", ["effeval.real_data", "fetch-bigbench"], "bigbench"),
]


@pytest.mark.parametrize("case", SOURCE_CASES, ids=[c[0] for c in SOURCE_CASES])
def test_optional_source_cli(case, bad, sandbox, tmp_path):
    _, argv, argument = case
    index = tmp_path / "empty-index"
    index.mkdir()
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nindex-url = {index.as_uri()}\n")
    env = {k: v for k, v in sandbox.env.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=str(conf), EFFEVAL_DATA_DIR=str(tmp_path / "data"))
    row_sandbox = Sandbox(cwd=sandbox.cwd, zoo=sandbox.zoo, env=env)
    run_row([sys.executable, "-m", *fill(argv, bad)], argument, bad, row_sandbox)
    assert not (tmp_path / "data").exists()
