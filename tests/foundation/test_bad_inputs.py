"""The bad-input table (issue 17): each row is one mistake a user makes, run through the entry
point they would use, in-process. Every error is ONE line on stderr,
``effeval error: <argument>: <problem>. Fix: <fix>``, naming the argument, with exit status 2 and
no traceback, and nothing is written anywhere. A wrong output path is found before any work
starts (the work function is replaced by one that fails the test if it is reached). Inputs that
are odd but valid give a warning naming what is odd, and succeed.

One parametrised test per entry point; add a row when a new mistake is found. The rows whose id
starts with ``#17`` (and the two warning tests marked so) are the cases issue 17 found
mishandled, named as the issue words them; the others walk every argument of every entry point
(missing, wrong type, out of range, empty, non-UTF-8, an output that is a file / a folder /
unwritable, unknown choice, NaN / inf, negative counts). Able to fail: the #17 rows failed before
their fixes (traceback, exit 1, output written after the work or half-written, silently wrong
result), and so did the added rows listed in docs/decisions.md ("bad-input table"); removing a
check makes its row fail. The stock ``lm_eval`` CLI path is in tests/foundation/test_plugin.py (a
subprocess costs ~30 s of task indexing); here lm-eval's ``get_model`` is called as its CLI calls
it.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest

from effeval.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"  # effeval result JSON of two real demo runs
ONE_LINE = re.compile(r"^effeval error: [^\n]+: [^\n]+\. Fix: [^\n]+$")
# placeholders of output paths that cannot be used; a row writing to one must fail before work
BAD_OUTPUTS = ("{file}", "{under_file}", "{unwritable}", "{folder}", "{llama}", "{mamba}", "{root}/stem")

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

LATIN1 = "Grüße aus München, déjà vu, señor. "


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
    dsg = (
        "item_id,text,keywords,proposition_id,dependency,category_broad,category_detailed,tuple,"
        "question_natural_language\nx_1,a café,café,1,0,entity,whole,entity - whole (café),Is there a café?\n"
    )
    write("dsg_latin1.csv", dsg.encode("latin-1"))
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
    return paths


def files_under(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    from effeval.cli import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err


def assert_one_line_error(code: int, err: str, argument: str) -> None:
    """Exit 2 and stderr is exactly one line naming ``argument`` (its start) and the fix."""
    assert "Traceback" not in err, err[-3000:]
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, (code, err[-3000:])
    assert ONE_LINE.match(lines[0]), lines[0]
    message = lines[0][len("effeval error: ") :]
    assert message.startswith(argument), message


def fill(argv: list[str], bad: dict, **extra) -> list[str]:
    return [a.format(**bad, **extra) for a in argv]


def bad_output(argv: list[str]) -> bool:
    """The row's --out is one of the unusable output paths."""
    return any(flag == "--out" and value.startswith(BAD_OUTPUTS) for flag, value in zip(argv, argv[1:]))


def refuse_work(monkeypatch, *targets: str) -> None:
    """Replace each ``module.attr`` with a function that fails the test: the output check must
    come before it."""

    for target in targets:

        def started(*args, _target=target, **kwargs):
            raise AssertionError(f"{_target} ran before the arguments were checked")

        monkeypatch.setattr(target, started)


def run_row(argv, argument, bad, capsys, monkeypatch, work=()):
    """Run one CLI row and check the error form, that nothing was written, and (for an output
    path) that the work was never reached."""
    if bad_output(argv):
        refuse_work(monkeypatch, *work)
    before = files_under(bad["root"])
    code, err = run_cli(fill(argv, bad), capsys)
    assert_one_line_error(code, err, argument)
    assert files_under(bad["root"]) == before  # nothing written, nothing half-done


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
        "drafter",
    ),
    (
        "#17 truncated safetensors as drafter",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={llama_truncated}",
        "drafter",
    ),
    (
        "hetero-spec target corrupt config.json",
        "effeval-hetero-spec",
        "pretrained={llama_bad_config},drafter={llama}",
        "pretrained",
    ),
    (
        "hetero-spec target truncated safetensors",
        "effeval-hetero-spec",
        "pretrained={llama_truncated},drafter={llama}",
        "pretrained",
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
    ("short-mk m > k", "effeval-short-mk", "pretrained={llama},k=2,m=3", ""),
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
        "pretrained",
    ),
    ("short-mk corrupt config.json", "effeval-short-mk", "pretrained={llama_bad_config}", "pretrained"),
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
        "pretrained",
    ),
    (
        "pruned-ssm truncated safetensors",
        "effeval-pruned-ssm",
        "pretrained={mamba_truncated},method=magnitude,sparsity=0.5",
        "pretrained",
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
def test_lm_eval_wrappers(case, bad, monkeypatch):
    """lm-eval builds the wrapper from --model_args; what it raises reaches the user as one line
    (the excepthook in effeval.errors). An output model_arg is checked before the pruning."""
    import lm_eval.models  # noqa: F401  (registers lm-eval's models; effeval's come with the plugin)
    from lm_eval.api.registry import get_model
    from lm_eval.utils import simple_parse_args_string

    import effeval.models  # noqa: F401

    _, model, args, argument = case
    if "save_to=" in args and bad_output(["--out", args.split("save_to=")[-1]]):
        refuse_work(monkeypatch, "effeval.methods.pruned_ssm.api.prune_model")
    kwargs = simple_parse_args_string(args.format(**bad))
    before = files_under(bad["root"])
    with pytest.raises(ConfigError) as err:
        get_model(model)(**kwargs, device="cpu")
    message = str(err.value)
    assert "\n" not in message and "Fix: " in message and message.startswith(argument), message
    assert files_under(bad["root"]) == before


# --------------------------------------------------------------------------- effeval lm


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


@pytest.mark.parametrize("case", LM_CASES, ids=[c[0] for c in LM_CASES])
def test_effeval_lm(case, bad, capsys):
    _, extra, argument = case
    opts = {"--model": "hf", "--model_args": f"pretrained={bad['llama']}", "--device": "cpu"}
    it = iter(fill(extra, bad))
    for flag in it:
        opts[flag] = next(it)
    code, err = run_cli(["lm"] + [x for kv in opts.items() for x in kv], capsys)
    assert_one_line_error(code, err, argument)


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


@pytest.mark.parametrize("case", PRUNE_CASES, ids=[c[0] for c in PRUNE_CASES])
def test_pruned_ssm_cli(case, bad, capsys, monkeypatch):
    _, extra, argument = case
    opts = {"--model": "{mamba}", "--method": "magnitude", "--sparsity": "0.5", "--out": "{root}/pruned"}
    it = iter(extra)
    for flag in it:
        opts[flag] = next(it)
    argv = ["pruned-ssm", "--nsamples", "2", "--seqlen", "16"] + [x for kv in opts.items() for x in kv]
    run_row(
        argv, argument, bad, capsys, monkeypatch, work=["transformers.AutoModelForCausalLM.from_pretrained"]
    )


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


@pytest.mark.parametrize("case", SPELLM_CASES, ids=[c[0] for c in SPELLM_CASES])
def test_spellm_cli(case, bad, capsys, monkeypatch):
    _, argv, argument = case
    extra = ["--steps", "1", "--max-blocks", "4", "--no-progress"] if argv[:1] == ["distill"] else []
    run_row(
        ["spellm", *argv, *extra],
        argument,
        bad,
        capsys,
        monkeypatch,
        work=["effeval.methods.spellm.distill.distill"],
    )


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


@pytest.mark.parametrize("case", SHORT_MK_CASES, ids=[c[0] for c in SHORT_MK_CASES])
def test_short_mk_analyze_cli(case, bad, capsys, monkeypatch):
    _, argv, argument = case
    run_row(
        ["short-mk", "analyze", *argv],
        argument,
        bad,
        capsys,
        monkeypatch,
        work=["effeval.methods.short_mk.pool.analyze_pool"],
    )


# --------------------------------------------------------------------------- effeval results


@pytest.fixture(scope="module")
def demo_result():
    return str(DATA / "result_hf_llama_sp.json")


RESULTS_WORK = [
    "effeval.results.compare.compare",
    "effeval.results.export.export",
    "effeval.results.cli.convert",
    "effeval.results.leaderboard.build_site",
]

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
def test_results_cli(case, bad, demo_result, capsys, monkeypatch):
    _, argv, argument = case
    argv = [a.replace("{demo}", demo_result) for a in argv]
    run_row(["results", *argv], argument.format(**bad), bad, capsys, monkeypatch, work=RESULTS_WORK)


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


@pytest.mark.parametrize("case", ZOO_CASES, ids=[c[0] for c in ZOO_CASES])
def test_zoo_cli(case, bad, capsys, monkeypatch):
    _, argv, argument = case
    run_row(
        ["zoo", *argv],
        argument,
        bad,
        capsys,
        monkeypatch,
        work=["effeval.zoo.build_all", "effeval.zoo.get"],
    )


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


@pytest.mark.parametrize("case", IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_image_run_cli(case, bad, capsys, monkeypatch):
    """Refused before any image is made (the TIFA and --height rows once wrote wrong results;
    the output rows failed only after the pipeline had loaded)."""
    _, extra, argument = case
    opts = {
        "--pipeline": "{sd}",
        "--benchmark": "{bench_ok_jsonl}",
        "--scorers": "none",
        "--out": "{root}/img",
    }
    argv = ["image", "run"]
    it = iter(extra)
    for flag in it:
        if flag in opts:
            opts[flag] = next(it)
        else:
            argv += [flag, next(it)]
    argv += [x for kv in opts.items() for x in kv]
    run_row(argv, argument, bad, capsys, monkeypatch, work=["effeval.image.encoders.load_pipeline"])


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


@pytest.mark.parametrize("case", BENCH_CASES, ids=[c[0] for c in BENCH_CASES])
def test_bench_cli(case, bad, capsys, monkeypatch):
    """``python -m effeval.bench NAME ...``: refused before the benchmark's work starts."""
    from effeval.bench.__main__ import main

    _, argv, argument = case
    monkeypatch.setenv("EFFEVAL_BENCH_DIR", str(bad["root"] / "bench"))
    refuse_work(monkeypatch, "effeval.bench.common.start_bench")
    before = files_under(bad["root"])
    code = main(fill(argv, bad))
    assert_one_line_error(code, capsys.readouterr().err, argument)
    assert files_under(bad["root"]) == before
