"""Self-distillation: agreement with the teacher rises, the loss curve is logged, the saved
directory reloads with identical outputs, interrupted runs resume to the same result."""

import json

import pytest
import torch

from effeval.errors import ConfigError
from effeval.methods.spellm.distill import DistillConfig, evaluate
from effeval.methods.spellm.distill import distill as distill_files
from effeval.zoo.corpus import texts_for


def distill(cfg):
    return distill_files(cfg, *texts_for(cfg.data))


def _small(base, out, **kw):
    settings = dict(
        base=base,
        out=str(out),
        k=16,
        steps=150,
        batch_size=8,
        seqlen=32,
        eval_every=75,
        eval_positions=128,
        save_every=1000,
        pool=1024,
        progress=False,
        resume=False,
    )
    settings.update(kw)
    return DistillConfig(**settings)


@pytest.fixture(scope="module")
def distilled(zoo_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("distill") / "spellm"
    # the DEFAULT recipe (target temperature 0.5). It is shown able to fail: target_temperature=1
    # (the former default) reached 0.137 here, below the 0.309 majority baseline (docs/spellm.md).
    summary = distill(_small(zoo_path("mamba2-sp", trained=True), out))
    return summary, out


def test_agreement_with_the_teacher_rises_far_above_chance(distilled):
    summary, _ = distilled
    first, last = summary["initial"], summary["final"]
    vocab = 32000
    assert first["top1_agreement"] < 0.05
    # chance (a uniform guess) is 1/V; the stronger baseline always names the teacher's most
    # frequent top-1 token. 128 positions: one standard error of a proportion is <= 0.045.
    assert last["top1_agreement"] > 1000 / vocab
    assert last["top1_agreement"] > last["majority_baseline"] + 3 * 0.045
    assert summary["losses"][-1] < summary["losses"][0] / 10


def test_loss_curve_and_evals_are_logged(distilled):
    summary, out = distilled
    lines = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(1, 151))
    evals = [json.loads(x) for x in (out / "eval_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [0, 75, 150]
    assert json.loads((out / "effeval_spellm.json").read_text())["distillation"]["final"] == summary["final"]


def test_saved_directory_reloads_with_identical_outputs(distilled, zoo_path):
    from effeval.methods.spellm.distill import MarginalTargets, make_blocks
    from effeval.methods.spellm.model import SpeLLMForCausalLM, load_causal_lm

    summary, out = distilled
    model = SpeLLMForCausalLM.from_pretrained(out)
    teacher, tok = load_causal_lm(zoo_path("mamba2-sp", trained=True))
    model.backbone = teacher.base_model  # same frozen weights: evaluate on the shared path
    cfg = _small(zoo_path("mamba2-sp", trained=True), out)
    _, eval_blocks = make_blocks(tok, cfg, *texts_for(cfg.data))
    again = evaluate(model, teacher, MarginalTargets(model.codec, 32000), eval_blocks, 128, "padded")
    # the reloaded heads score exactly what the in-memory trained heads scored at the last step
    # (saving the initial heads instead would give summary["initial"], far lower)
    assert again["top1_agreement"] == summary["final"]["top1_agreement"]
    assert again["top1_agreement"] > summary["initial"]["top1_agreement"]
    # the saved backbone is the frozen teacher's: the stand-alone reload equals the shared path
    reloaded = SpeLLMForCausalLM.from_pretrained(out)
    ids = torch.tensor([tok.encode("def f(x):\n    return x", add_special_tokens=False)])
    with torch.no_grad():
        assert torch.allclose(reloaded(ids)[0], model(ids)[0], atol=1e-5)


def test_interrupted_run_resumes_to_the_same_heads(zoo_path, tmp_path):
    base = zoo_path("llama-sp")
    quick = dict(steps=8, eval_every=100, pool=128, eval_positions=32, save_every=3)
    distill(_small(base, tmp_path / "full", **quick))
    distill(_small(base, tmp_path / "cut", stop_after=4, **quick))
    resumed = distill(_small(base, tmp_path / "cut", **{**quick, "resume": True}))
    assert resumed["steps_done"] == 8
    from safetensors.torch import load_file

    full = load_file(str(tmp_path / "full" / "spellm_heads.safetensors"))
    cut = load_file(str(tmp_path / "cut" / "spellm_heads.safetensors"))
    assert all(torch.equal(full[k], cut[k]) for k in full)
    with pytest.raises(ConfigError, match="different run"):
        distill(_small(base, tmp_path / "cut", **{**quick, "resume": True, "seed": 1}))


def test_bad_distill_input_is_a_clear_error(zoo_path, tmp_path, monkeypatch):
    from effeval.commands.spellm import main

    monkeypatch.setenv("EFFEVAL_TRACEBACK", "1")  # the command re-raises instead of printing one line

    with pytest.raises(ConfigError, match=r"^--k: "):
        main(["distill", "--base", zoo_path("llama-sp"), "--out", str(tmp_path / "o"), "--k", "0"])
    with pytest.raises(ConfigError, match=r"^--base: .*not a model directory"):
        main(["distill", "--base", str(tmp_path / "none"), "--out", str(tmp_path / "o")])
    with pytest.raises(ConfigError, match=r"^--data: "):
        main(
            [
                "distill",
                "--base",
                zoo_path("llama-sp"),
                "--out",
                str(tmp_path / "o"),
                "--data",
                str(tmp_path / "x.txt"),
            ]
        )


def test_full_tuning_trains_a_copy_of_the_body_and_saves_it(zoo_path, tmp_path):
    from effeval.methods.spellm.model import SpeLLMForCausalLM, load_causal_lm

    base = zoo_path("llama-sp")
    distill(_small(base, tmp_path / "full", steps=3, tune="full", eval_every=100, eval_positions=32, pool=0))
    tuned = SpeLLMForCausalLM.from_pretrained(tmp_path / "full")
    teacher, _ = load_causal_lm(base)
    original = dict(teacher.base_model.named_parameters())
    changed = [n for n, p in tuned.backbone.named_parameters() if not torch.equal(p, original[n])]
    assert changed  # the saved body is the tuned copy ...
    again, _ = load_causal_lm(base)  # ... and the base model on disk is untouched
    assert all(torch.equal(p, dict(again.base_model.named_parameters())[n]) for n, p in original.items())


def test_text_with_no_tokens_is_a_one_line_error(zoo_path, tmp_path):
    """Texts that tokenise to nothing stop before any model work, with one line naming --data."""
    cfg = _small(zoo_path("llama-sp"), tmp_path / "o", steps=1)
    with pytest.raises(ConfigError, match=r"^--data: 2 text\(s\) give no tokens after tokenisation") as err:
        distill_files(cfg, ["", ""], None)
    assert "\n" not in str(err.value) and "Fix:" in str(err.value)
    assert not (tmp_path / "o").exists()


def test_lora_tuning_changes_each_linear_weight_by_a_low_rank_delta(zoo_path, tmp_path):
    """--tune lora trains adapters only and merges them on save: every saved linear weight differs
    from the base by a matrix of rank <= lora_rank, and nothing else changes. Shown able to fail:
    --tune full (test above) changes weights by full-rank deltas and changes the norms too."""
    from effeval.methods.spellm.model import SpeLLMForCausalLM, load_causal_lm

    base = zoo_path("llama-sp")
    rank = 2
    summary = distill(
        _small(
            base,
            tmp_path / "lora",
            steps=3,
            tune="lora",
            lora_rank=rank,
            body_lr=1e-2,
            eval_every=100,
            eval_positions=32,
            pool=0,
        )
    )
    assert summary["steps_done"] == 3
    tuned = SpeLLMForCausalLM.from_pretrained(tmp_path / "lora")
    teacher, _ = load_causal_lm(base)
    original = dict(teacher.base_model.named_parameters())
    saved = dict(tuned.backbone.named_parameters())
    assert set(saved) == set(original)  # merged: a plain body, no adapter weights left
    changed = 0
    for name, weight in saved.items():
        delta = (weight - original[name]).double()
        if name.endswith("proj.weight") or name.endswith("_proj.weight"):
            if delta.abs().max() > 0:
                changed += 1
                assert torch.linalg.matrix_rank(delta, rtol=1e-6).item() <= rank, name
        else:
            assert torch.equal(weight, original[name]), name  # embeddings, norms: untouched
    assert changed > 0


def test_real_prose_holds_out_the_end_of_the_story_not_the_gutenberg_licence():
    """``--data real-prose`` (``story_prose_split``): training and held-out text are both the
    novella, the held-out part is its end, and none of it is trained on. The file's plain 80/20
    split (``real_prose_split`` beside it) fails the first two assertions: its held-out
    part is the licence, and the whole story is in its training text."""
    pytest.importorskip("reasoning_gym")
    from effeval.zoo.corpus import story_prose_split

    train, (heldout,) = story_prose_split()
    story_train = train[-1]
    assert "Project Gutenberg License" not in heldout and "gutenberg.org" not in heldout
    assert "Project Gutenberg License" not in story_train
    paragraphs = [p for p in heldout.split("\n\n") if p.strip()]
    assert any(p.strip() == "Jules Verne." for p in paragraphs[-2:])  # the story's signature
    assert len(paragraphs) > 10 and not any(p in story_train for p in paragraphs if len(p) > 80)
    assert len(heldout) > 0.15 * (len(heldout) + len(story_train))
