"""The bad-input table (issue 17): each entry is one mistake a user makes, run through the entry
point they would use, in-process. Every error is ONE line ``<argument>: <problem>. Fix: <fix>``
with exit status 2 and no traceback; inputs that are odd but valid give a warning naming the
file and succeed. Output paths are checked before any work (a wrong --out costs nothing).

One parametrised test per entry point; add a row when a new mistake is found. Image-specific
cases live in tests/image.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from effeval.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"  # effeval result JSON of two real demo runs
ONE_LINE = r"^[^\n]+: [^\n]+\. Fix: [^\n]+$"


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def bad(tmp_path_factory, zoo_path):
    """Broken inputs, built once: corrupt / truncated model folders, non-text files, paths that
    cannot be written."""
    root = tmp_path_factory.mktemp("bad_inputs")
    llama, mamba = Path(zoo_path("llama-sp")), Path(zoo_path("mamba-sp"))
    paths = {"llama": str(llama), "mamba": str(mamba), "root": root}

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
    (root / "a_file").write_text("x")
    paths["file"] = str(root / "a_file")
    paths["under_file"] = str(root / "a_file" / "out")
    paths["unwritable"] = "/proc/effeval-out"  # not writable even for root
    (root / "folder").mkdir()
    paths["folder"] = str(root / "folder")
    (root / "empty").mkdir()
    paths["empty"] = str(root / "empty")
    (root / "binary.txt").write_bytes(bytes(range(256)) * 64)
    paths["binary"] = str(root / "binary.txt")
    (root / "latin1.txt").write_bytes(("Grüße aus München, déjà vu. " * 200).encode("latin-1"))
    paths["latin1"] = str(root / "latin1.txt")
    return paths


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    from effeval.cli import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err


def assert_one_line_error(code: int, err: str, argument: str) -> None:
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("effeval error: ")]
    assert code == 2 and len(lines) == 1, (code, err[-3000:])
    message = lines[0][len("effeval error: ") :]
    assert message.startswith(argument), message
    assert "Fix: " in message, message


# --------------------------------------------------------------------------- lm-eval wrappers


WRAPPER_CASES = [
    # (id, model name, model_args (formatted with the `bad` paths), argument the error names)
    (
        "hetero-spec unknown key",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={llama},foo=1",
        "effeval-hetero-spec",
    ),
    ("short-mk unknown key", "effeval-short-mk", "pretrained={llama},temprature=0.7", "effeval-short-mk"),
    (
        "pruned-ssm unknown key",
        "effeval-pruned-ssm",
        "pretrained={mamba},method=magnitude,sparsity=0.5,spars=1",
        "effeval-pruned-ssm",
    ),
    ("spellm unknown key", "effeval-spellm", "pretrained={llama},foo=1", "effeval-spellm"),
    (
        "drafter corrupt config.json",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={llama_bad_config}",
        "drafter",
    ),
    (
        "drafter truncated safetensors",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={llama_truncated}",
        "drafter",
    ),
    (
        "target corrupt config.json",
        "effeval-hetero-spec",
        "pretrained={llama_bad_config},drafter={llama}",
        "pretrained",
    ),
    ("short-mk truncated safetensors", "effeval-short-mk", "pretrained={llama_truncated}", "pretrained"),
    (
        "pruned-ssm corrupt config.json",
        "effeval-pruned-ssm",
        "pretrained={mamba_bad_config},method=magnitude,sparsity=0.5",
        "pretrained",
    ),
    (
        "drafter missing folder",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={root}/nowhere",
        "effeval-hetero-spec model_args 'drafter'",
    ),
    (
        "hetero-spec num_draft_tokens=0",
        "effeval-hetero-spec",
        "pretrained={llama},drafter={llama},num_draft_tokens=0",
        "effeval-hetero-spec model_args 'num_draft_tokens'",
    ),
    ("short-mk m > k", "effeval-short-mk", "pretrained={llama},k=2,m=3", ""),
]


@pytest.mark.parametrize("case", WRAPPER_CASES, ids=[c[0] for c in WRAPPER_CASES])
def test_lm_eval_wrappers(case, bad):
    """lm-eval builds the wrapper from --model_args; what it raises reaches the user."""
    import lm_eval.models  # noqa: F401  (registers lm-eval's models; effeval's come with the plugin)
    from lm_eval.api.registry import get_model
    from lm_eval.utils import simple_parse_args_string

    import effeval.models  # noqa: F401

    _, model, args, argument = case
    kwargs = simple_parse_args_string(args.format(**bad))
    with pytest.raises(ConfigError) as err:
        get_model(model)(**kwargs, device="cpu")
    message = str(err.value)
    assert "\n" not in message and "Fix: " in message and message.startswith(argument), message


# --------------------------------------------------------------------------- effeval lm


LM_CASES = [
    ("--limit -5", ["--tasks", "effeval_smoke_mc", "--limit", "-5"], "--limit"),
    ("--limit 0", ["--tasks", "effeval_smoke_mc", "--limit", "0"], "--limit"),
    ("--limit 2.5", ["--tasks", "effeval_smoke_mc", "--limit", "2.5"], "--limit"),
    ("--limit abc", ["--tasks", "effeval_smoke_mc", "--limit", "abc"], "--limit"),
    ("unknown --model", ["--model", "effeval-nope", "--tasks", "effeval_smoke_mc"], "--model"),
    ("model_args without =", ["--model_args", "pretrained", "--tasks", "effeval_smoke_mc"], "--model_args"),
    (
        "--include_path not a folder",
        ["--tasks", "effeval_smoke_mc", "--include_path", "{file}"],
        "--include_path",
    ),
    ("unknown task", ["--tasks", "effeval_no_such_task"], "--tasks"),
    # effeval wrappers' model_args are checked before lm-eval starts
    (
        "short-mk unknown model_arg",
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
]


@pytest.mark.parametrize("case", LM_CASES, ids=[c[0] for c in LM_CASES])
def test_effeval_lm(case, bad, capsys):
    _, extra, argument = case
    opts = {"--model": "hf", "--model_args": f"pretrained={bad['llama']}", "--device": "cpu"}
    it = iter(a.format(**bad) for a in extra)
    for flag in it:
        opts[flag] = next(it)
    code, err = run_cli(["lm"] + [x for kv in opts.items() for x in kv], capsys)
    assert_one_line_error(code, err, argument)


# --------------------------------------------------------------------------- effeval pruned-ssm


PRUNE_CASES = [
    # output path problems are found before the model is loaded or pruned
    ("--out is a file", ["--out", "{file}"], "--out"),
    ("--out under a file", ["--out", "{under_file}"], "--out"),
    ("--out unwritable", ["--out", "{unwritable}"], "--out"),
    ("--out is the --model folder", ["--out", "{mamba}"], "--out"),
    ("--model corrupt config.json", ["--model", "{mamba_bad_config}"], "--model"),
    ("--model truncated safetensors", ["--model", "{mamba_truncated}"], "--model"),
    ("--model missing", ["--model", "{root}/nowhere"], "effeval pruned-ssm model_args '--model'"),
    ("--calibration binary", ["--method", "wanda", "--calibration", "{binary}"], "--calibration"),
    ("--calibration latin-1", ["--method", "wanda", "--calibration", "{latin1}"], "--calibration"),
    ("--calibration missing", ["--method", "wanda", "--calibration", "{root}/none.txt"], "calibration"),
    ("--sparsity 1.5", ["--sparsity", "1.5"], "sparsity"),
    ("--method unknown", ["--method", "snip"], "method"),
]


@pytest.mark.parametrize("case", PRUNE_CASES, ids=[c[0] for c in PRUNE_CASES])
def test_pruned_ssm_cli(case, bad, capsys):
    _, extra, argument = case
    opts = {
        "--model": bad["mamba"],
        "--method": "magnitude",
        "--sparsity": "0.5",
        "--out": str(bad["root"] / "pruned"),
    }
    it = iter(a.format(**bad) for a in extra)
    for flag in it:
        opts[flag] = next(it)
    argv = ["pruned-ssm", "--nsamples", "2", "--seqlen", "16"] + [x for kv in opts.items() for x in kv]
    code, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, argument)
    assert not (bad["root"] / "pruned").exists()  # nothing half-done left behind


# --------------------------------------------------------------------------- effeval spellm


SPELLM_CASES = [
    ("distill --out is a file", ["distill", "--base", "{llama}", "--out", "{file}"], "--out"),
    ("distill --out unwritable", ["distill", "--base", "{llama}", "--out", "{unwritable}"], "--out"),
    ("distill --out is the --base folder", ["distill", "--base", "{llama}", "--out", "{llama}"], "--out"),
    (
        "distill --data binary",
        ["distill", "--base", "{llama}", "--out", "{root}/sp1", "--data", "{binary}"],
        "--data",
    ),
    (
        "distill --data latin-1",
        ["distill", "--base", "{llama}", "--out", "{root}/sp2", "--data", "{latin1}"],
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
    (
        "coverage on an empty folder",
        ["coverage", "--base", "{empty}"],
        "effeval spellm coverage model_args '--base'",
    ),
    ("coverage --k not a list", ["coverage", "--base", "{llama}", "--k", "8,x"], "--k"),
]


@pytest.mark.parametrize("case", SPELLM_CASES, ids=[c[0] for c in SPELLM_CASES])
def test_spellm_cli(case, bad, capsys):
    _, argv, argument = case
    extra = ["--steps", "1", "--max-blocks", "4", "--no-progress"] if argv[0] == "distill" else []
    code, err = run_cli(["spellm", *[a.format(**bad) for a in argv], *extra], capsys)
    assert_one_line_error(code, err, argument)


# --------------------------------------------------------------------------- effeval results


@pytest.fixture(scope="module")
def demo_result():
    return str(DATA / "result_hf_llama_sp.json")


RESULTS_CASES = [
    ("compare --out is a folder", ["compare", "{demo}", "{demo}", "--out", "{folder}"], "--out"),
    ("compare --out unwritable", ["compare", "{demo}", "{demo}", "--out", "{unwritable}/c.json"], "--out"),
    ("export --out is a file", ["export", "{demo}", "--format", "eee", "--out", "{file}"], "--out"),
    ("export --out under a file", ["export", "{demo}", "--format", "hub", "--out", "{under_file}"], "--out"),
    ("export --format unknown", ["export", "{demo}", "--format", "csv", "--out", "{root}/e"], "--format"),
    ("convert --out is a file", ["convert", "{root}", "--out", "{file}"], "--out"),
    ("convert --out unwritable", ["convert", "{root}", "--out", "{unwritable}"], "--out"),
    ("leaderboard --out is a file", ["leaderboard", str(DATA), "--out", "{file}"], "--out"),
    (
        "leaderboard --out unwritable",
        ["leaderboard", str(DATA), "--out", "{unwritable}"],
        "--out",
    ),
    ("leaderboard missing folder", ["leaderboard", "{root}/nowhere", "--out", "{root}/site"], "RESULTS_DIR"),
    ("compare missing run", ["compare", "{demo}", "{root}/nowhere.json"], "run"),
]


@pytest.mark.parametrize("case", RESULTS_CASES, ids=[c[0] for c in RESULTS_CASES])
def test_results_cli(case, bad, demo_result, capsys):
    _, argv, argument = case
    code, err = run_cli(["results", *[a.format(demo=demo_result, **bad) for a in argv]], capsys)
    assert_one_line_error(code, err, argument)


def test_leaderboard_names_the_files_it_skips(tmp_path, capsys, caplog):
    """Odd but valid: a results folder with a malformed JSON file and a JSON of another schema
    builds, and a warning names both (they used to be skipped without a word)."""
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
