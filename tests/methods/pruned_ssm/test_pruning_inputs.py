"""Bad input gives one clear ConfigError; calibration sources; the `effeval pruned-ssm` CLI."""

import json

import pytest
import torch

from effeval.errors import ConfigError
from effeval.methods.pruned_ssm.api import PruneSpec, prune_model
from effeval.methods.pruned_ssm.calibration import load_texts, token_windows


@pytest.mark.parametrize("sparsity", [1.0, 1.5, -0.1])
def test_sparsity_outside_unit_interval(sparsity):
    with pytest.raises(ConfigError, match=r"sparsity.*outside \[0, 1\).*Fix"):
        PruneSpec("wanda", sparsity).validated()


@pytest.mark.parametrize("pattern", ["4:4", "8:4", "0:4", "2-4"])
def test_bad_nm_pattern(pattern):
    with pytest.raises(ConfigError, match="pattern.*Fix"):
        PruneSpec("wanda", None, pattern=pattern).validated()


def test_nm_contradicting_sparsity():
    with pytest.raises(ConfigError, match="contradicts"):
        PruneSpec("wanda", 0.3, pattern="2:4").validated()


@pytest.mark.parametrize("kind,target", [("mamba", "foo_proj"), ("mamba2", "x_proj"), ("mamba2", "dt_proj")])
def test_unknown_target_module(kind, target, tiny):
    with pytest.raises(ConfigError, match=f"unknown target module '{target}'.*Fix: use one or more of"):
        prune_model(tiny(kind), spec=PruneSpec("magnitude", 0.5, targets=f"in_proj+{target}"), progress=False)


def tiny_llama():
    import transformers as tf

    cfg = tf.LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    return tf.LlamaForCausalLM(cfg).eval()


@pytest.mark.parametrize("method", ["dstate", "headdim", "heads"])
def test_non_ssm_model_for_ssm_only_method(method):
    with pytest.raises(
        ConfigError, match="needs a MambaForCausalLM or Mamba2ForCausalLM, got LlamaForCausalLM"
    ):
        prune_model(
            tiny_llama(),
            spec=PruneSpec(method, 0.5, criterion="magnitude"),
            input_ids=torch.zeros(1, 4, dtype=torch.long),
            progress=False,
        )


def test_magnitude_works_on_other_architectures_by_module_name():
    model = tiny_llama()
    res = prune_model(model, spec=PruneSpec("magnitude", 0.5, targets="q_proj+v_proj"), progress=False)
    assert res.report["global_sparsity"] == 0.5
    assert float((model.model.layers[0].self_attn.q_proj.weight == 0).float().mean()) == 0.5


@pytest.mark.parametrize("content", ["", "  \n\n "])
def test_empty_calibration_file(tmp_path, content):
    path = tmp_path / "calib.txt"
    path.write_text(content)
    with pytest.raises(ConfigError, match="calibration.*empty.*Fix"):
        load_texts(str(path))


def test_missing_calibration_for_wanda(tiny):
    with pytest.raises(ConfigError, match="calibration.*needs calibration text"):
        prune_model(tiny("mamba2"), spec=PruneSpec("wanda", 0.5), progress=False)


def test_calibration_windows_are_seeded_and_shaped(zoo_path, tmp_path):
    from transformers import AutoTokenizer

    from effeval.zoo.corpus import pydoc_topics

    tok = AutoTokenizer.from_pretrained(zoo_path("mamba2-sp"))
    texts = pydoc_topics()[:5]
    a = token_windows(tok, texts, nsamples=5, seqlen=16, seed=3)
    b = token_windows(tok, texts, nsamples=5, seqlen=16, seed=3)
    c = token_windows(tok, texts, nsamples=5, seqlen=16, seed=4)
    assert a.shape == (5, 16) and torch.equal(a, b) and not torch.equal(a, c)
    # a `datasets` dataset saved to disk is a source too
    import datasets

    datasets.Dataset.from_dict({"text": texts}).save_to_disk(str(tmp_path / "ds"))
    assert load_texts(f"dataset:{tmp_path / 'ds'}") == texts
    with pytest.raises(ConfigError, match="no column 'body'"):
        load_texts(f"dataset:{tmp_path / 'ds'}:::body")


def test_cli_prunes_and_saves_a_stock_loadable_checkpoint(zoo_path, tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    from effeval.commands.pruned_ssm import main
    from effeval.zoo.corpus import pydoc_topics

    calib = tmp_path / "calib.txt"
    calib.write_text("\n\n".join(pydoc_topics()[:10]))
    out = tmp_path / "wanda"
    assert (
        main(
            [
                "--model",
                zoo_path("mamba-sp"),
                "--method",
                "wanda",
                "--sparsity",
                "0.5",
                "--targets",
                "in_proj+dt_proj",
                "--calibration",
                str(calib),
                "--nsamples",
                "4",
                "--seqlen",
                "32",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    model = AutoModelForCausalLM.from_pretrained(out)
    mixer = model.backbone.layers[0].mixer
    assert float((mixer.in_proj.weight == 0).float().mean()) == 0.5
    assert float((mixer.dt_proj.weight == 0).float().mean()) == 0.5
    report = json.loads((out / "effeval_pruning.json").read_text())
    assert report["calibration_tokens"] == 4 * 32 and report["global_sparsity"] == 0.5

    out2 = tmp_path / "dstate"
    assert (
        main(
            [
                "--model",
                zoo_path("mamba2-sp"),
                "--method",
                "dstate",
                "--sparsity",
                "0.5",
                "--criterion",
                "magnitude",
                "--out",
                str(out2),
            ]
        )
        == 0
    )
    small = AutoModelForCausalLM.from_pretrained(out2)
    assert (
        small.config.state_size == 8 and small.backbone.layers[0].mixer.conv1d.weight.shape[0] == 128 + 2 * 8
    )

    assert (
        main(
            [
                "--model",
                zoo_path("mamba2-sp"),
                "--method",
                "wanda",
                "--sparsity",
                "1.2",
                "--out",
                str(tmp_path / "bad"),
            ]
        )
        == 2
    )
    assert "sparsity" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra,message",
    [
        (
            ["--method", "wanda", "--sparsity", "0.5", "--targets", "in_proj"],
            "targets: 'in_proj' matches no linear",
        ),
        (["--method", "flap", "--sparsity", "0.25"], "num_key_value_heads cannot express"),
        (
            ["--method", "flap", "--sparsity", "0.5", "--flap-structure", "global"],
            "flap-structure: unknown 'global'. Fix: use one of ul-um, al-am",
        ),
        (
            ["--method", "wanda", "--sparsity", "0.5", "--seqlen", "4096"],
            "fewer than one window of seqlen=4096",
        ),
    ],
)
def test_cli_bad_input_on_a_transformer_is_one_line(extra, message, zoo_path, tmp_path, capsys):
    """`effeval pruned-ssm` on the zoo Llama: targets matching no layer, a FLAP ratio its 2 KV heads
    cannot express, calibration text shorter than one window -> exit 2, one line on stderr, no
    output folder."""
    from effeval.commands.pruned_ssm import main

    calib = tmp_path / "calib.txt"
    calib.write_text("A short note about pruning, far shorter than four thousand tokens.\n" * 20)
    out = tmp_path / "out"
    code = main(["--model", zoo_path("llama-sp"), "--calibration", str(calib), "--out", str(out), *extra])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "effeval error" in line]  # other lines: load progress bars
    assert code == 2
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in err
    assert not out.exists()
