"""`effeval-pruned-ssm`: the stock lm_eval CLI on the offline twins, the efficiency block, errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from effeval.errors import ConfigError


@pytest.fixture(scope="module")
def calib_file(tmp_path_factory):
    from effeval.zoo.corpus import pydoc_topics

    path = tmp_path_factory.mktemp("calib") / "calib.txt"
    path.write_text("\n\n".join(pydoc_topics()[:10]))
    return str(path)


def test_stock_lm_eval_cli_wanda_on_offline_twins(zoo_path, calib_file, tmp_path, repo_root):
    lm_eval = Path(sys.executable).with_name("lm_eval")
    model_args = (
        f"pretrained={zoo_path('mamba-sp')},method=wanda,sparsity=0.5,targets=in_proj+conv1d,"
        f"calibration={calib_file},nsamples=4,seqlen=32"
    )
    cmd = [
        str(lm_eval),
        "--model",
        "effeval-pruned-ssm",
        "--model_args",
        model_args,
        "--tasks",
        "pruned_ssm_mini_piqa,pruned_ssm_mini_lambada,pruned_ssm_mini_wikitext",
        "--include_path",
        str(repo_root / "task_configs"),
        "--batch_size",
        "4",  # default device: cuda -> cpu
        "--output_path",
        str(tmp_path / "out"),
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(next((tmp_path / "out").rglob("results_*.json")).read_text())
    assert "acc,none" in results["results"]["pruned_ssm_mini_piqa"]
    assert "word_perplexity,none" in results["results"]["pruned_ssm_mini_wikitext"]
    eff = results["config"]["effeval"]["efficiency"]
    assert results["config"]["effeval"]["method"]["args"]["method"] == "wanda"
    assert eff["target_sparsity"] == {"in_proj": 0.5, "conv1d": 0.5}
    assert eff["global_sparsity"] == 0.5
    # zoo mamba-sp has 2 layers with in_proj 256x64 and conv1d 128 channels x 4 taps: half of them go
    removed = eff["nonzero_params_before"] - eff["nonzero_params"]
    assert removed == pytest.approx(0.5 * 2 * (256 * 64 + 128 * 4), abs=4)
    assert eff["params_after"] == eff["params_before"]
    assert eff["calibration_tokens"] == 4 * 32 and eff["prune_wall_time_s"] > 0
    assert eff["requests"] > 0 and eff["prompt_tokens"] > 0


def test_structured_wrapper_shrinks_and_reports_throughput(zoo_path, tmp_path):
    from transformers import AutoModelForCausalLM

    from effeval.models.pruned_ssm import PrunedSSMLM

    lm = PrunedSSMLM(
        pretrained=zoo_path("mamba2-sp"),
        method="headdim",
        sparsity=0.5,
        criterion="magnitude",
        device="cpu",
        batch_size=2,
        save_to=str(tmp_path / "saved"),
    )
    assert lm.model.config.head_dim == 8 and lm.model.config.expand == 1
    info = lm.get_model_info()["effeval"]["efficiency"]
    assert info["params_after"] < info["params_before"]
    assert info["config_after"]["head_dim"] == 8 and info["config_before"]["head_dim"] == 16
    assert {"dense_forward_tokens_per_s", "pruned_forward_tokens_per_s"} <= set(info)
    assert info["calibration_tokens"] == 0  # magnitude needs no calibration text
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "saved")
    assert reloaded.config.head_dim == 8
    assert sum(p.numel() for p in reloaded.parameters()) == info["params_after"]


def test_task_documents_give_calibration_text():
    from effeval.models.pruned_ssm import task_documents

    docs = task_documents("pruned_ssm_mini_piqa")
    assert len(docs) == 8 and "To open a jar" in docs[0] and "hot water" in docs[0]  # prompt + gold answer


@pytest.mark.parametrize(
    "args,match",
    [
        ({"sparsity": 1.0}, "sparsity"),
        ({"sparsity": 0.5, "pattern": "4:2"}, "pattern"),
        ({"sparsity": 0.5, "targets": "in_proj+nope"}, "unknown target module"),
        ({"sparsity": 0.5, "method": "bogus"}, "method"),
    ],
)
def test_bad_model_args(zoo_path, args, match):
    from effeval.models.pruned_ssm import PrunedSSMLM

    with pytest.raises(ConfigError, match=match):
        PrunedSSMLM(pretrained=zoo_path("mamba2-sp"), calibration="x.txt", device="cpu", **args)


def _load_yaml(path: Path) -> dict:
    """A task YAML with ``include:`` resolved; tags such as ``!function`` read as None (not needed)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    cfg = yaml.load(path.read_text(), Loader=Loader)
    if "include" in cfg:
        cfg = {**_load_yaml(path.parent / cfg.pop("include")), **cfg}
    return cfg


def _builtin_task_configs(names: set[str]) -> dict[str, dict]:
    """lm-eval's own YAML for each named built-in task (read directly: faster than TaskManager's
    index of ~14k tasks)."""
    import re

    import lm_eval.tasks

    found = {}
    for path in Path(lm_eval.tasks.__file__).parent.rglob("*.yaml"):
        m = re.search(r"^task:\s*(\S+)\s*$", path.read_text(errors="replace"), flags=re.M)
        if m and m.group(1) in names:
            found[m.group(1)] = _load_yaml(path)
    return found


def test_mini_group_twins_the_paper_group_request_types(repo_root):
    """``pruned_ssm`` names lm-eval built-ins, and each offline twin in ``pruned_ssm_mini`` (same
    position) makes the same request type and reports the built-in's metrics, read from lm-eval's
    own YAML. A twin with another output_type (or a group member lm-eval lacks) fails."""
    group = _load_yaml(repo_root / "task_configs/pruned_ssm/_pruned_ssm.yaml")
    mini = _load_yaml(repo_root / "task_configs/pruned_ssm/_pruned_ssm_mini.yaml")
    builtin = _builtin_task_configs(set(group["task"]))
    assert sorted(builtin) == sorted(group["task"])  # every member is an lm-eval built-in
    assert len(mini["task"]) == len(group["task"])
    for paper_task, twin_task in zip(group["task"], mini["task"]):
        twin = _load_yaml(
            repo_root / "task_configs/pruned_ssm" / f"{twin_task.replace('pruned_ssm_', '')}.yaml"
        )
        assert twin["task"] == twin_task
        assert twin["output_type"] == builtin[paper_task]["output_type"], paper_task
        want = {m["metric"] for m in builtin[paper_task]["metric_list"]}
        assert want <= {m["metric"] for m in twin["metric_list"]}, paper_task


def test_wrapper_prunes_a_transformer_every_block_linear(zoo_path, calib_file):
    """The wrapper is not SSM-only: WANDA on the zoo's Llama prunes all 7 linears of both blocks
    to exactly 50% (targets default to every block linear for transformers)."""
    from effeval.models.pruned_ssm import PrunedSSMLM

    lm = PrunedSSMLM(
        pretrained=zoo_path("llama-sp"),
        method="wanda",
        sparsity=0.5,
        calibration=calib_file,
        nsamples=4,
        seqlen=32,
        device="cpu",
        batch_size=2,
    )
    info = lm.get_model_info()["effeval"]["efficiency"]
    assert info["architecture"] == "decoder"
    assert len(info["module_sparsity"]) == 2 * 7 and set(info["module_sparsity"].values()) == {0.5}
    assert info["calibration_tokens"] == 4 * 32


def test_wrapper_flap_on_a_transformer_saves_a_stock_checkpoint(zoo_path, calib_file, tmp_path):
    """FLAP through the wrapper: half the KV-head groups and MLP channels go, the saved folder
    reloads with stock from_pretrained (biases on) and scores the same as the in-memory model."""
    import torch
    from transformers import AutoModelForCausalLM

    from effeval.models.pruned_ssm import PrunedSSMLM

    lm = PrunedSSMLM(
        pretrained=zoo_path("llama-sp"),
        method="flap",
        sparsity=0.5,
        calibration=calib_file,
        nsamples=4,
        seqlen=32,
        device="cpu",
        batch_size=2,
        save_to=str(tmp_path / "saved"),
    )
    info = lm.get_model_info()["effeval"]["efficiency"]
    assert (
        info["config_after"]["num_key_value_heads"] == 1 and info["config_before"]["num_key_value_heads"] == 2
    )
    assert info["config_after"]["intermediate_size"] == info["config_before"]["intermediate_size"] // 2
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "saved").eval()
    assert reloaded.config.attention_bias and reloaded.config.mlp_bias
    ids = torch.arange(3, 19)[None]
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, lm.model(input_ids=ids).logits)
